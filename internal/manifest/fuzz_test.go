package manifest

import (
	"reflect"
	"testing"
)

// FuzzParse checks that Parse never panics, and that whatever it accepts is
// self-consistent: valid paths, unique, sizes and checksums that fit, a
// manifest that renders back to itself, and that Verify and CheckWAL accept
// a backup that matches it exactly. Each input is also tried with its
// Manifest-Checksum line recomputed, so that mutations reach past the
// checksum check. Seeds are in testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	f.Add(render(sampleManifest(1, CRC32C, sampleFiles[:3]), renderOptions{}))
	f.Add(render(sampleManifest(2, SHA256, sampleFiles[5:9]), renderOptions{zeroPadLSN: true}))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, d := range [][]byte{data, resign(data)} {
			m, err := Parse(d)
			if err != nil {
				if m != nil {
					t.Fatalf("Parse returned a manifest and error %v", err)
				}
				continue
			}
			checkParsed(t, m)
		}
	})
}

func checkParsed(t *testing.T, m *Manifest) {
	t.Helper()
	if m.Version != 1 && m.Version != 2 {
		t.Fatalf("version %d", m.Version)
	}
	if m.Version == 1 && m.SystemIdentifier != 0 {
		t.Fatalf("v1 with system identifier %d", m.SystemIdentifier)
	}
	seen := make(map[string]bool)
	observed := make(map[string]Observed)
	for _, f := range m.Files {
		if err := checkPath(f.Path); err != nil {
			t.Fatalf("accepted %v", err)
		}
		if seen[f.Path] {
			t.Fatalf("accepted duplicate %q", f.Path)
		}
		seen[f.Path] = true
		if f.Size < 0 || len(f.Checksum) != f.Algorithm.Size() || (f.Algorithm == None) != (f.Checksum == nil) {
			t.Fatalf("accepted %+v", f)
		}
		observed[f.Path] = Observed{Size: f.Size, Checksum: f.Checksum}
	}
	if err := Verify(m, observed, nil); err != nil {
		t.Fatalf("Verify of a matching backup: %v", err)
	}
	if err := Verify(m, nil, func(string) bool { return true }); err != nil {
		t.Fatalf("Verify keeping everything: %v", err)
	}
	if len(m.WALRanges) == 0 {
		t.Fatal("no WAL ranges")
	}
	from, to := map[uint32]LSN{}, map[uint32]LSN{}
	for _, r := range m.WALRanges {
		if r.Timeline == 0 || r.End < r.Start {
			t.Fatalf("accepted %+v", r)
		}
		if s, ok := from[r.Timeline]; !ok || r.Start < s {
			from[r.Timeline] = r.Start
		}
		if e, ok := to[r.Timeline]; !ok || r.End > e {
			to[r.Timeline] = r.End
		}
	}
	if err := CheckWAL(m, from, to); err != nil {
		t.Fatalf("CheckWAL of matching WAL: %v", err)
	}
	again, err := Parse(render(m, renderOptions{}))
	if err != nil {
		t.Fatalf("re-rendered manifest: %v", err)
	}
	if !reflect.DeepEqual(again, m) {
		t.Fatalf("round trip: %+v\nwant %+v", again, m)
	}
}

package incremental

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/pg-standby/pg-standby/internal/manifest"
)

func TestRenderManifestParses(t *testing.T) {
	m := &Manifest{
		SystemID: 7412345678901234567,
		Files: []ManifestFile{
			{Path: "base/5/16384", Size: 8192},
			{Path: "global/pg_control", Size: 8192, ModTime: time.Unix(1700000000, 0), Algorithm: manifest.CRC32C, Checksum: []byte{1, 2, 3, 4}},
			{Path: "base/5/odd\xff", Size: 0},
			{Path: `we"ird<&>`, Size: 1},
		},
		WALRanges: []manifest.WALRange{{Timeline: 1, Start: 0x2000028, End: 0x2000028}},
	}
	data, err := RenderManifest(m)
	if err != nil {
		t.Fatal(err)
	}
	got, err := manifest.Parse(data)
	if err != nil {
		t.Fatalf("%v\n%s", err, data)
	}
	if got.Version != 2 || got.SystemIdentifier != m.SystemID || len(got.Files) != 4 || got.Files[2].Path != "base/5/odd\xff" || got.Files[3].Path != `we"ird<&>` || got.Files[1].Algorithm != manifest.CRC32C {
		t.Fatalf("parsed back %+v", got)
	}
	if !strings.Contains(string(data), `"Last-Modified": "2023-11-14 22:13:20 GMT"`) {
		t.Fatalf("no Last-Modified in\n%s", data)
	}
	m.Files = append(m.Files, m.Files[0])
	if _, err := RenderManifest(m); err == nil {
		t.Fatal("rendered a duplicate path")
	}
}

func TestStripIncrementalLabel(t *testing.T) {
	in := "START WAL LOCATION: 0/4000028 (file 000000010000000000000004)\nCHECKPOINT LOCATION: 0/4000080\n" +
		"BACKUP METHOD: streamed\nBACKUP FROM: primary\nSTART TIME: 2026-12-02 05:00:00 UTC\nLABEL: x\nSTART TIMELINE: 1\n" +
		"INCREMENTAL FROM LSN: 0/2000028\nINCREMENTAL FROM TLI: 1\n"
	got, err := StripIncrementalLabel([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Split(in, "INCREMENTAL")[0]
	if string(got) != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	if _, err := StripIncrementalLabel(make([]byte, MaxBackupLabel+1)); err == nil {
		t.Fatal("accepted an oversized backup_label")
	}
}

func TestListable(t *testing.T) {
	for p, want := range map[string]bool{
		"base/5/16384": true, "base/5/16384.3": true, "base/5/16384_init": true, "global/1262": true,
		"pg_tblspc/16400/PG_17_202406281/5/16401": true,
		"base/5/16384_vm":                         false, "base/5/16384_fsm": false, "base/5/16384_vm.1": false,
		"global/pg_control": false, "base/5/PG_VERSION": false, "base/5/pg_filenode.map": false,
		"pg_xact/0000": false, "base/5/016384": false, "base/5/16384.": false, "base/05/16384": false,
		"base/5/sub/16384": false, "backup_label": false, "base/5/INCREMENTAL.16384": false,
	} {
		if got := Listable(p); got != want {
			t.Errorf("Listable(%q) = %v, want %v", p, got, want)
		}
	}
}

// renderManifestBefore is RenderManifest as it was before ManifestWriter
// (one bytes.Buffer for the document): the streaming writer must produce
// the same bytes.
func renderManifestBefore(m *Manifest) ([]byte, error) {
	if len(m.WALRanges) == 0 {
		return nil, errors.New("render manifest: no WAL range")
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "{ \"PostgreSQL-Backup-Manifest-Version\": 2,\n\"System-Identifier\": %d,\n\"Files\": [", m.SystemID)
	seen := make(map[string]bool, len(m.Files))
	for i, f := range m.Files {
		if seen[f.Path] {
			return nil, fmt.Errorf("render manifest: %q listed twice", f.Path)
		}
		seen[f.Path] = true
		if i > 0 {
			b.WriteByte(',')
		}
		if err := renderFile(&b, &f); err != nil {
			return nil, err
		}
	}
	b.WriteString("\n],\n\"WAL-Ranges\": [")
	for i, r := range m.WALRanges {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "\n{ \"Timeline\": %d, \"Start-LSN\": \"%s\", \"End-LSN\": \"%s\" }", r.Timeline, r.Start, r.End)
	}
	b.WriteString("\n],\n")
	sum := sha256.Sum256(b.Bytes())
	fmt.Fprintf(&b, "\"Manifest-Checksum\": \"%x\"}\n", sum)
	return b.Bytes(), nil
}

func manyFiles(n int) []ManifestFile {
	files := make([]ManifestFile, n)
	for i := range files {
		files[i] = ManifestFile{Path: fmt.Sprintf("base/%d/%d", 5+i%3, 16384+i), Size: int64(i) * 8192}
		if i%2 == 0 {
			files[i].Algorithm, files[i].Checksum = manifest.CRC32C, []byte{byte(i), 2, 3, 4}
			files[i].ModTime = time.Unix(1700000000+int64(i), 0)
		}
	}
	return files
}

// TestManifestWriterSameBytes: RenderManifest, now a ManifestWriter, and a
// ManifestReader read in any chunk size give the old renderer's bytes.
func TestManifestWriterSameBytes(t *testing.T) {
	r1 := []manifest.WALRange{{Timeline: 1, Start: 0x2000028, End: 0x2000028}}
	r3 := []manifest.WALRange{{Timeline: 1, Start: 0x2000028, End: 0x3000000}, {Timeline: 2, Start: 0x3000000, End: 0x4000100}, {Timeline: 3, Start: 0x4000100, End: 0x5000000}}
	cases := map[string]*Manifest{
		"no files": {SystemID: 1, WALRanges: r1},
		"one file": {SystemID: 7412345678901234567, Files: []ManifestFile{{Path: "global/pg_control", Size: 8192}}, WALRanges: r1},
		"odd paths, checksums, three ranges": {SystemID: 18446744073709551615, WALRanges: r3, Files: []ManifestFile{
			{Path: "base/5/16384", Size: 8192},
			{Path: "global/pg_control", Size: 8192, ModTime: time.Unix(1700000000, 0), Algorithm: manifest.CRC32C, Checksum: []byte{1, 2, 3, 4}},
			{Path: "base/5/odd\xff", Size: 0},
			{Path: `we"ird<&>` + "\t\u00e9", Size: 1, Algorithm: manifest.SHA256, Checksum: make([]byte, 32)},
		}},
		"10,000 files": {SystemID: 42, Files: manyFiles(10000), WALRanges: r3},
	}
	for name, m := range cases {
		t.Run(name, func(t *testing.T) {
			want, err := renderManifestBefore(m)
			if err != nil {
				t.Fatal(err)
			}
			got, err := RenderManifest(m)
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("RenderManifest: %v\n%s\nwant\n%s", err, got, want)
			}
			for _, wrap := range []struct {
				name string
				r    func(io.Reader) io.Reader
			}{{"whole", func(r io.Reader) io.Reader { return r }}, {"one byte", iotest.OneByteReader}, {"half", iotest.HalfReader}} {
				files := m.Files
				next := func() (ManifestFile, bool) {
					if len(files) == 0 {
						return ManifestFile{}, false
					}
					f := files[0]
					files = files[1:]
					return f, true
				}
				mr := NewManifestReader(m.SystemID, m.WALRanges, next)
				got, err := io.ReadAll(wrap.r(mr))
				if err != nil || mr.Err() != nil || !bytes.Equal(got, want) {
					t.Fatalf("ManifestReader read %s: %v, %v\n%s\nwant\n%s", wrap.name, err, mr.Err(), got, want)
				}
			}
		})
	}
	for name, m := range map[string]*Manifest{
		"no WAL range": {SystemID: 1, Files: []ManifestFile{{Path: "a", Size: 1}}},
		"bad entry":    {SystemID: 1, Files: []ManifestFile{{Path: "a", Size: 1}, {Path: "/abs", Size: 1}}, WALRanges: r1},
		"duplicate":    {SystemID: 1, Files: []ManifestFile{{Path: "a", Size: 1}, {Path: "a", Size: 1}}, WALRanges: r1},
	} {
		_, werr := renderManifestBefore(m)
		_, gerr := RenderManifest(m)
		if werr == nil || gerr == nil || gerr.Error() != werr.Error() {
			t.Errorf("%s: RenderManifest error %v, the old renderer's %v", name, gerr, werr)
		}
	}
}

// TestManifestReaderBounded: reading a manifest of 60,000 files in CopyFrom's
// 64 KiB reads keeps one read's worth of text buffered, and a bad entry
// stops the reader with its error.
func TestManifestReaderBounded(t *testing.T) {
	n, i := 60000, 0
	next := func() (ManifestFile, bool) {
		if i == n {
			return ManifestFile{}, false
		}
		i++
		return ManifestFile{Path: fmt.Sprintf("base/16384/%d", 100000+i), Size: 1 << 30}, true
	}
	mr := NewManifestReader(1, []manifest.WALRange{{Timeline: 1, Start: 1, End: 1}}, next)
	buf := make([]byte, 65536-5)
	total, peak := 0, 0
	for {
		k, err := mr.Read(buf)
		total += k
		peak = max(peak, mr.out.Cap())
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if peak > 2*len(buf) {
		t.Errorf("%d bytes of manifest read in %d-byte reads buffered up to %d bytes; want at most %d", total, len(buf), peak, 2*len(buf))
	}
	t.Logf("%d files, %d bytes, buffer peak %d bytes", n, total, peak)

	bad := false
	mr = NewManifestReader(1, []manifest.WALRange{{Timeline: 1, Start: 1, End: 1}}, func() (ManifestFile, bool) {
		if bad {
			return ManifestFile{}, false
		}
		bad = true
		return ManifestFile{Path: "", Size: 1}, true
	})
	if _, err := io.ReadAll(mr); err == nil || mr.Err() == nil || err.Error() != mr.Err().Error() {
		t.Errorf("a bad entry: ReadAll %v, Err %v; want the render error from both", err, mr.Err())
	}
}

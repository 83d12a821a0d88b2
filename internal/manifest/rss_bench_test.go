package manifest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"reflect"
	"runtime"
	"testing"
)

// BenchmarkParseReader60k streams a manifest of 60,000 CRC32C files (the
// 20,000-small-tables shape of issue 13) through ParseReader, reporting the
// allocations that remain once the text is no longer held in memory.
func BenchmarkParseReader60k(b *testing.B) {
	m := &Manifest{Version: 2, SystemIdentifier: 1, WALRanges: []WALRange{{Timeline: 1, Start: 1, End: 2}}}
	for i := range 60_000 {
		m.Files = append(m.Files, File{Path: fmt.Sprintf("base/5/%d", 100000+i), Size: 8192, Algorithm: CRC32C, Checksum: []byte{1, 2, 3, byte(i)}})
	}
	data := render(m, renderOptions{})
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseReader(bytes.NewReader(data)); err != nil {
			b.Fatal(err)
		}
	}
}

// TestParseReaderSmallReads checks that reads of any size (runes and lines
// split across them) give what Parse gives.
func TestParseReaderSmallReads(t *testing.T) {
	m := &Manifest{Version: 2, SystemIdentifier: 1, WALRanges: []WALRange{{Timeline: 1, Start: 1, End: 2}}}
	m.Files = append(m.Files, File{Path: "base/5/ü€𝄞", Size: 1}, File{Path: "a", Size: 2, Algorithm: CRC32C, Checksum: []byte{1, 2, 3, 4}})
	data := render(m, renderOptions{})
	for _, n := range []int{1, 2, 3, 5, 7} {
		got, err := ParseReader(&chunked{data: data, n: n})
		if err != nil {
			t.Fatalf("reads of %d bytes: %v", n, err)
		}
		if len(got.Files) != 2 || got.Files[0].Path != "base/5/ü€𝄞" {
			t.Fatalf("reads of %d bytes: files %+v", n, got.Files)
		}
	}
	bad := bytes.Replace(data, []byte("€"), []byte{0xe2, 0x82, 'x'}, 1)
	_, want := Parse(bad)
	for _, n := range []int{1, 2, 3} {
		if _, err := ParseReader(&chunked{data: bad, n: n}); err == nil || err.Error() != want.Error() {
			t.Fatalf("reads of %d bytes: error %v, want %v", n, err, want)
		}
	}
}

type chunked struct {
	data []byte
	n    int
}

func (c *chunked) Read(b []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	k := copy(b[:min(len(b), c.n)], c.data)
	c.data = c.data[k:]
	return k, nil
}

// TestVerifyReaderAgreesWithVerify checks that verifying while parsing finds
// exactly what Parse followed by Verify finds.
func TestVerifyReaderAgreesWithVerify(t *testing.T) {
	m := sampleManifest(2, CRC32C, sampleFiles)
	data := render(m, renderOptions{})
	keepConf := func(p string) bool { return p == "postgresql.conf" }
	for name, observed := range map[string]func() map[string]Observed{
		"all match": func() map[string]Observed { return observe(CRC32C, sampleFiles) },
		"everything at once": func() map[string]Observed {
			o := observe(CRC32C, sampleFiles)
			delete(o, "backup_label")
			delete(o, "postgresql.conf")
			o["stray"] = Observed{Size: 1}
			o["base/1/1259"] = Observed{Size: 1}
			o["PG_VERSION"] = Observed{Size: 3}
			return o
		},
		"nothing written": func() map[string]Observed { return nil },
	} {
		for _, keep := range []func(string) bool{nil, keepConf} {
			parsed, err := Parse(data)
			if err != nil {
				t.Fatal(err)
			}
			want := Verify(parsed, observed(), keep)
			got, mismatch, err := VerifyReader(bytes.NewReader(data), observed(), keep)
			if err != nil {
				t.Fatalf("%s: VerifyReader: %v", name, err)
			}
			if !reflect.DeepEqual(mismatch, want) {
				t.Errorf("%s: VerifyReader mismatch %v, Verify %v", name, mismatch, want)
			}
			if got.NumFiles != len(parsed.Files) || got.Files != nil || !reflect.DeepEqual(got.WALRanges, parsed.WALRanges) {
				t.Errorf("%s: VerifyReader manifest %+v", name, got)
			}
		}
	}
	dup := sampleManifest(2, CRC32C, append(sampleFiles[:2:2], sampleFiles[0]))
	dupData := render(dup, renderOptions{})
	_, want := Parse(dupData)
	if _, _, err := VerifyReader(bytes.NewReader(dupData), nil, nil); err == nil || want == nil || err.Error() != want.Error() {
		t.Fatalf("duplicate path: VerifyReader error %v, Parse %v", err, want)
	}
}

// BenchmarkVerifyReader60k is the backup's path on the 60,000-file shape:
// parse while verifying, keeping only the set of paths.
func BenchmarkVerifyReader60k(b *testing.B) {
	m := &Manifest{Version: 2, SystemIdentifier: 1, WALRanges: []WALRange{{Timeline: 1, Start: 1, End: 2}}}
	observed := map[string]Observed{}
	for i := range 60_000 {
		f := File{Path: fmt.Sprintf("base/5/%d", 100000+i), Size: 8192, Algorithm: CRC32C, Checksum: []byte{1, 2, 3, byte(i)}}
		m.Files = append(m.Files, f)
		observed[f.Path] = Observed{Size: f.Size, Checksum: f.Checksum}
	}
	data := render(m, renderOptions{})
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, mismatch, err := VerifyReader(bytes.NewReader(data), observed, nil); err != nil || mismatch != nil {
			b.Fatal(err, mismatch)
		}
	}
}

// wholeDoc is the manifest decoded by one json.Decode with unknown fields
// refused, the design the token parser was measured against (see doc.go).
type wholeDoc struct {
	Version   json.Number   `json:"PostgreSQL-Backup-Manifest-Version"`
	SystemID  json.Number   `json:"System-Identifier"`
	Files     []rawFile     `json:"Files"`
	WALRanges []rawWALRange `json:"WAL-Ranges"`
	Checksum  string        `json:"Manifest-Checksum"`
}

// liveBytes is the heap f's result keeps alive (GC'd before and after).
func liveBytes(f func() any) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	v := f()
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(v)
	return after.HeapAlloc - before.HeapAlloc
}

func manifest60k() []byte {
	m := &Manifest{Version: 2, SystemIdentifier: 1, WALRanges: []WALRange{{Timeline: 1, Start: 1, End: 2}}}
	for i := range 60_000 {
		m.Files = append(m.Files, File{Path: fmt.Sprintf("base/5/%d", 100000+i), Size: 8192, Algorithm: CRC32C, Checksum: []byte{1, 2, 3, byte(i)}})
	}
	return render(m, renderOptions{})
}

// BenchmarkDecodeWhole60k decodes the 60,000-file manifest in one
// json.Decode (no post-checks, no conversion to File yet: a lower bound),
// for comparison with BenchmarkParseReader60k; live-MB is what the decode
// holds when it returns (json.Decoder buffers the whole document).
func BenchmarkDecodeWhole60k(b *testing.B) {
	data := manifest60k()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	live := liveBytes(func() any {
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		var doc wholeDoc
		if err := dec.Decode(&doc); err != nil {
			b.Fatal(err)
		}
		return []any{dec, &doc}
	})
	for b.Loop() {
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		var doc wholeDoc
		if err := dec.Decode(&doc); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(live)/(1<<20), "live-MB")
}

// BenchmarkParseReaderLive60k is BenchmarkParseReader60k's live-MB: what
// the streaming parser holds when it returns (the compact Files).
func BenchmarkParseReaderLive60k(b *testing.B) {
	data := manifest60k()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	live := liveBytes(func() any {
		m, err := ParseReader(bytes.NewReader(data))
		if err != nil {
			b.Fatal(err)
		}
		return m
	})
	for b.Loop() {
		if _, err := ParseReader(bytes.NewReader(data)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(live)/(1<<20), "live-MB")
}

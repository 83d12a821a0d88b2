package manifest

import (
	"fmt"
	"testing"
)

// BenchmarkParse100k parses a manifest of 100,000 CRC32C files, the size of
// a large cluster's data directory.
func BenchmarkParse100k(b *testing.B) {
	m := &Manifest{Version: 2, SystemIdentifier: 1, WALRanges: []WALRange{{Timeline: 1, Start: 1, End: 2}}}
	for i := range 100_000 {
		m.Files = append(m.Files, File{Path: fmt.Sprintf("base/16384/%d", 100000+i), Size: 8192, Algorithm: CRC32C, Checksum: []byte{1, 2, 3, byte(i)}})
	}
	data := render(m, renderOptions{})
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(data); err != nil {
			b.Fatal(err)
		}
	}
}

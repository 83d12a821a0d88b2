package tarstream

import (
	"archive/tar"
	"bytes"
	"strconv"
	"testing"
)

// BenchmarkParser feeds an archive shaped like a data directory (many 8 kB
// catalog files, a few 1 MiB segments) in 32 kB writes, the size of the
// server's CopyData messages, to a stage that only counts.
func BenchmarkParser(b *testing.B) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	add := func(name string, size int) {
		tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o600, Size: int64(size), Format: tar.FormatUSTAR})
		tw.Write(make([]byte, size))
	}
	for i := range 400 {
		add("base/1/"+strconv.Itoa(i), 8192)
	}
	for i := range 32 {
		add("base/5/16384."+strconv.Itoa(i), 1<<20)
	}
	tw.Close()
	data := buf.Bytes()
	var n int64
	count := stageFunc(func(part Part, m *Member, p []byte) error { n += int64(len(p)); return nil })
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		p := NewParser(count)
		for rest := data; len(rest) > 0; {
			c := min(32<<10, len(rest))
			if _, err := p.Write(rest[:c]); err != nil {
				b.Fatal(err)
			}
			rest = rest[c:]
		}
		if err := p.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

package directio

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// cpuTime is the user and system time of this process so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkQueue writes 64 MiB files in 32 kB pieces, as tar members arrive,
// with O_DIRECT (two writes in flight, and one: direct-1) and through the
// page cache, each followed by fsync: the whole cost of getting the bytes
// durable. It reports the process's CPU time too: on a machine where the
// network receive competes for the cores, that is where O_DIRECT wins. The
// temporary directory's filesystem decides the figures (TMPDIR to choose).
func BenchmarkQueue(b *testing.B) {
	for _, mode := range []struct {
		name     string
		buffered bool
		inflight int
	}{{"direct", false, 0}, {"direct-1", false, 1}, {"buffered", true, 0}} {
		b.Run(mode.name, func(b *testing.B) {
			dir := b.TempDir()
			piece := make([]byte, 32<<10)
			for i := range piece {
				piece[i] = byte(i * 7)
			}
			const size = 64 << 20
			b.SetBytes(size)
			sync := func(f *os.File, _ int64) {
				if err := f.Sync(); err != nil {
					b.Error(err)
				}
				f.Close()
			}
			q, err := NewQueue(Config{Buffered: mode.buffered, Inflight: mode.inflight, Finished: sync})
			if err != nil {
				b.Fatal(err)
			}
			cpu0 := cpuTime()
			for b.Loop() {
				path := filepath.Join(dir, "f")
				os.Remove(path)
				f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
				if err != nil {
					b.Fatal(err)
				}
				fl := q.OpenSized(f, path, -1, size)
				for range size / len(piece) {
					if err := fl.Write(piece); err != nil {
						b.Fatal(err)
					}
				}
				if err := fl.Finish(size); err != nil {
					b.Fatal(err)
				}
			}
			if err := q.Close(); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64((cpuTime()-cpu0).Milliseconds())/float64(b.N), "cpu-ms/op")
		})
	}
}

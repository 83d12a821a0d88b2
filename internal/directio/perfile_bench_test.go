package directio

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/pg-standby/pg-standby/internal/durable"
)

// BenchmarkSmallFiles is the per-file path of a backup of many small tables:
// create, write 8 KiB in one piece, finish, fsync, for 512 files per op,
// durable when the op ends (Syncer.Wait). "direct-each" is the old path
// (O_DIRECT, each file fsynced as it finishes); "buffered-batched" is the
// default (page cache with writeback started at finish, fsyncs in batches).
// ns/file is the figure to watch; the temporary directory's filesystem
// decides it (TMPDIR to choose).
func BenchmarkSmallFiles(b *testing.B) {
	for _, v := range []struct {
		name      string
		directMin int64
		window    int
		workers   int
	}{
		{"direct-each", -1, 1, 4},
		{"buffered-each", 0, 1, 4},
		{"buffered-batched", 0, 0, 4},
		{"buffered-batched-16", 0, 0, 16},
	} {
		b.Run(v.name, func(b *testing.B) {
			const files = 512
			piece := make([]byte, 8192)
			for i := range piece {
				piece[i] = byte(i * 7)
			}
			dir := b.TempDir()
			round := 0
			for b.Loop() {
				round++
				d := filepath.Join(dir, fmt.Sprint(round))
				if err := os.Mkdir(d, 0o700); err != nil {
					b.Fatal(err)
				}
				s := durable.NewSyncer(v.workers, v.window)
				q, err := NewQueue(Config{DirectMin: v.directMin, Finished: s.Sync})
				if err != nil {
					b.Fatal(err)
				}
				for i := range files {
					writeSmall(b, q, filepath.Join(d, fmt.Sprint(i)), piece)
				}
				if err := q.Close(); err != nil {
					b.Fatal(err)
				}
				if err := s.Wait(); err != nil {
					b.Fatal(err)
				}
				if err := durable.SyncPath(d); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*files), "ns/file")
		})
	}
}

func writeSmall(b *testing.B, q *Queue, path string, data []byte) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		b.Fatal(err)
	}
	fl := q.OpenSized(f, path, -1, int64(len(data)))
	if err := fl.Write(data); err != nil {
		b.Fatal(err)
	}
	if err := fl.Finish(int64(len(data))); err != nil {
		b.Fatal(err)
	}
}

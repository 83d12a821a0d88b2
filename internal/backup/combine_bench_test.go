package backup

import (
	"bytes"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pg-standby/pg-standby/internal/extract"
	"github.com/pg-standby/pg-standby/internal/incremental"
	"github.com/pg-standby/pg-standby/internal/manifest"
	"github.com/pg-standby/pg-standby/internal/progress"
)

// combineFixture is a resumed attempt's data directory after the stream,
// with a server manifest of n files of which rebuilt came as increments
// (their reconstructed files on disk), as finish finds it.
type combineFixture struct {
	b        *attempt
	t        *dest
	data     []byte                       // the server's manifest
	observed map[string]manifest.Observed // what the stream saw
}

func newCombineFixture(tb testing.TB, n, rebuilt int) *combineFixture {
	dir := tb.TempDir()
	root, err := os.OpenRoot(dir)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { root.Close() })
	if err := root.MkdirAll("base/5", 0o700); err != nil {
		tb.Fatal(err)
	}
	res := extract.NewResult()
	srv := &incremental.Manifest{SystemID: 7412345678901234567, WALRanges: []manifest.WALRange{{Timeline: 1, Start: 0x5000028, End: 0x5000100}}}
	add := func(p string, size int64) {
		h := manifest.CRC32C.NewHash()
		fmt.Fprint(h, p)
		f := incremental.ManifestFile{Path: p, Size: size, ModTime: time.Unix(1700000000, 0), Algorithm: manifest.CRC32C, Checksum: h.Sum(nil)}
		srv.Files = append(srv.Files, f)
		res.Files[p] = manifest.Observed{Size: size, Checksum: f.Checksum}
	}
	label := "START WAL LOCATION: 0/5000028 (file 000000010000000000000005)\nINCREMENTAL FROM LSN: 0/2000028\nINCREMENTAL FROM TLI: 1\n"
	add(labelName, int64(len(label)))
	block := bytes.Repeat([]byte{7}, 8192)
	for i := range n {
		p := fmt.Sprintf("base/5/%d", 100000+i)
		if i < rebuilt {
			if err := root.WriteFile(p, block, 0o600); err != nil {
				tb.Fatal(err)
			}
			p = "base/5/INCREMENTAL." + strconv.Itoa(100000+i)
		}
		add(p, 8192)
	}
	data, err := incremental.RenderManifest(srv)
	if err != nil {
		tb.Fatal(err)
	}
	stripped := strings.Split(label, "INCREMENTAL")[0]
	h := manifest.CRC32C.NewHash()
	h.Write([]byte(stripped))
	if err := root.WriteFile(labelName, []byte(stripped), 0o600); err != nil {
		tb.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	t := &dest{root: root, res: res, man: &spool{root: root, name: manifestSpool, mode: 0o600, log: log},
		inc: &incPlan{reused: &atomic.Int64{}, label: &incremental.ManifestFile{Path: labelName, Size: int64(len(stripped)), Algorithm: manifest.CRC32C, Checksum: h.Sum(nil)}}}
	b := &attempt{log: log, fileMode: 0o600, opt: Options{Progress: progress.NewTracker()}}
	b.sys.SystemID = strconv.FormatUint(srv.SystemID, 10)
	return &combineFixture{b: b, t: t, data: data, observed: maps.Clone(res.Files)}
}

// finishManifest is finish's manifest work: the verification pass (which
// writes the result manifest) and combine.
func (c *combineFixture) finishManifest() error {
	if _, err := c.b.verifyManifest(c.t); err != nil {
		return err
	}
	return c.b.commitManifest(c.t)
}

// respool puts the server's manifest back into the spool and the files
// seen back under their names as sent, as the stream left them.
func (c *combineFixture) respool(tb testing.TB) {
	c.t.res.Files = maps.Clone(c.observed)
	if err := c.t.man.create(); err != nil {
		tb.Fatal(err)
	}
	if _, err := c.t.man.Write(c.data); err != nil {
		tb.Fatal(err)
	}
}

// peakMemory runs f and returns the peak heap (live and not yet collected
// objects, sampled every 100 µs, above what was live before) and the
// growth of the process's peak RSS (VmHWM, reset first) while it ran.
func peakMemory(f func()) (heap, rss uint64) {
	runtime.GC()
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(sample)
	base := sample[0].Value.Uint64()
	os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) // resets VmHWM to the current RSS
	rssBefore := procStatus("VmRSS")
	stop, done := make(chan struct{}), make(chan uint64)
	go func() {
		var peak uint64
		for {
			metrics.Read(sample)
			peak = max(peak, sample[0].Value.Uint64())
			select {
			case <-stop:
				done <- peak
				return
			case <-time.After(100 * time.Microsecond):
			}
		}
	}()
	f()
	close(stop)
	peak := <-done
	if hwm := procStatus("VmHWM"); hwm > rssBefore {
		rss = hwm - rssBefore
	}
	return peak - min(peak, base), rss
}

// procStatus is a /proc/self/status field in bytes (0 if unreadable).
func procStatus(field string) uint64 {
	data, _ := os.ReadFile("/proc/self/status")
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// BenchmarkCombine60k is finish's manifest work for a resumed attempt on a
// directory of 60,000 files (100 reconstructed), under the 20 MiB soft
// memory limit of the copy: verifying the server's manifest and writing
// the result manifest.
func BenchmarkCombine60k(b *testing.B) {
	c := newCombineFixture(b, 60000, 100)
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(20 << 20))
	b.SetBytes(int64(len(c.data)))
	b.ReportAllocs()
	var heap, rss uint64
	for b.Loop() {
		b.StopTimer()
		c.respool(b)
		b.StartTimer()
		h, r := peakMemory(func() {
			if err := c.finishManifest(); err != nil {
				b.Fatal(err)
			}
		})
		heap, rss = max(heap, h), max(rss, r)
	}
	b.ReportMetric(float64(heap)/(1<<20), "peak-heap-MB")
	b.ReportMetric(float64(rss)/(1<<20), "peak-rss-growth-MB")
}

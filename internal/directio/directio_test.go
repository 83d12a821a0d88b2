package directio

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
)

type sink struct {
	t     *testing.T
	files []*os.File
}

// take also holds the Queue to its promise of the exact size on disk, which
// the resume journal records.
func (s *sink) take(f *os.File, size int64) {
	s.files = append(s.files, f)
	if fi, err := f.Stat(); err != nil {
		s.t.Errorf("stat %s: %v", f.Name(), err)
	} else if fi.Size() != size {
		s.t.Errorf("Finished(%s, %d): %d bytes on disk", f.Name(), size, fi.Size())
	}
	f.Sync()
	f.Close()
}

func newQueue(t *testing.T, buffered bool) (*Queue, *sink, *atomic.Int64, *atomic.Int64) {
	t.Helper()
	s := &sink{t: t}
	var written, unchanged atomic.Int64
	// DirectMin -1: OpenSized writes even a small file with O_DIRECT and
	// reserves its space, so the tests cover that path at every size.
	q, err := NewQueue(Config{BufferSize: 64 << 10, Buffers: 3, Buffered: buffered, DirectMin: -1, Finished: s.take, Written: &written, Unchanged: &unchanged})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	return q, s, &written, &unchanged
}

// writeChunks feeds data in random-sized pieces, the way tar members arrive:
// by Write, or by Fill as the network's messages are read.
func writeChunks(t *testing.T, fl *File, data []byte, rng *rand.Rand) {
	t.Helper()
	for len(data) > 0 {
		n := min(len(data), 1+rng.IntN(40000))
		var err error
		if rng.IntN(2) == 0 {
			err = fl.Write(data[:n])
		} else {
			err = fl.Fill(&filler{data[:n]}, n)
		}
		if err != nil {
			t.Fatal(err)
		}
		data = data[n:]
	}
}

// filler hands out its bytes in the slices it is asked to fill.
type filler struct{ b []byte }

func (f *filler) ReadFull(dst []byte) error {
	if len(dst) > len(f.b) {
		return errors.New("filler: read past the end")
	}
	f.b = f.b[copy(dst, f.b):]
	return nil
}

func open(t *testing.T, path string) (*os.File, int64) {
	t.Helper()
	fi, err := os.Stat(path)
	old := int64(-1)
	if err == nil {
		old = fi.Size()
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	return f, old
}

// openAs opens path for the queue: with its final size (OpenSized, which
// reserves the space of a direct file), or not knowing it (Open).
func openAs(q *Queue, sized bool, f *os.File, path string, old, size int64) *File {
	if sized {
		return q.OpenSized(f, path, old, size)
	}
	return q.Open(f, path, old)
}

func TestWriteSizes(t *testing.T) {
	for _, mode := range []struct{ buffered, sized bool }{{false, false}, {false, true}, {true, false}} {
		buffered := mode.buffered
		q, s, written, _ := newQueue(t, buffered)
		dir := t.TempDir()
		rng := rand.New(rand.NewPCG(1, 2))
		sizes := []int{0, 1, 511, 4096, 4097, 64 << 10, 64<<10 + 1, 200_001, 1 << 20, 20<<20 + 3} // the last passes flushAfter
		want := map[string][]byte{}
		var total int64
		for _, n := range sizes {
			data := make([]byte, n)
			for i := range data {
				data[i] = byte(rng.Uint32())
			}
			path := filepath.Join(dir, filepath.Base(t.Name())+"-"+string(rune('a'+len(want))))
			f, old := open(t, path)
			fl := openAs(q, mode.sized, f, path, old, int64(n))
			writeChunks(t, fl, data, rng)
			if err := fl.Finish(int64(n)); err != nil {
				t.Fatal(err)
			}
			want[path] = data
			total += int64(n)
		}
		if err := q.Close(); err != nil {
			t.Fatal(err)
		}
		if len(s.files) != len(sizes) {
			t.Fatalf("%+v: %d files finished, want %d", mode, len(s.files), len(sizes))
		}
		for path, data := range want {
			got, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, data) {
				t.Errorf("%+v: %s: %d bytes differ from the %d written", mode, path, len(got), len(data))
			}
		}
		if written.Load() != total {
			t.Errorf("%+v: written %d, want %d", mode, written.Load(), total)
		}
	}
}

// TestDelta rewrites files an earlier attempt left: identical parts are only
// compared, differing ones written, longer files truncated.
func TestDelta(t *testing.T) {
	for _, mode := range []struct{ buffered, sized bool }{{false, false}, {false, true}, {true, false}} {
		buffered := mode.buffered
		q, _, written, unchanged := newQueue(t, buffered)
		dir := t.TempDir()
		rng := rand.New(rand.NewPCG(3, 4))
		data := make([]byte, 300_000)
		for i := range data {
			data[i] = byte(rng.Uint32())
		}
		cases := map[string][]byte{
			"same":    data,
			"longer":  append(append([]byte{}, data...), make([]byte, 70_000)...),
			"shorter": data[:100_000],
			"changed": func() []byte { b := append([]byte{}, data...); b[150_000] ^= 1; return b }(),
		}
		for name, old := range cases {
			path := filepath.Join(dir, name)
			if err := os.WriteFile(path, old, 0o600); err != nil {
				t.Fatal(err)
			}
			f, oldSize := open(t, path)
			fl := openAs(q, mode.sized, f, path, oldSize, int64(len(data)))
			writeChunks(t, fl, data, rng)
			if err := fl.Finish(int64(len(data))); err != nil {
				t.Fatal(err)
			}
		}
		if err := q.Close(); err != nil {
			t.Fatal(err)
		}
		for name := range cases {
			got, _ := os.ReadFile(filepath.Join(dir, name))
			if !bytes.Equal(got, data) {
				t.Errorf("%+v: %s: content differs after the rewrite (%d bytes)", mode, name, len(got))
			}
		}
		// 64 KiB buffers: "same" and "longer" are unchanged, "shorter" has its
		// first buffer unchanged, "changed" all but the buffer with byte 150000.
		const buf = 64 << 10
		wantUnchanged := int64(2*len(data) + buf + len(data) - buf)
		if unchanged.Load() != wantUnchanged || written.Load() != 4*int64(len(data))-wantUnchanged {
			t.Errorf("%+v: unchanged %d written %d, want %d and %d", mode, unchanged.Load(), written.Load(), wantUnchanged, 4*int64(len(data))-wantUnchanged)
		}
	}
}

func TestAbortClosesWithoutFinishing(t *testing.T) {
	q, s, _, _ := newQueue(t, false)
	path := filepath.Join(t.TempDir(), "f")
	f, old := open(t, path)
	fl := q.Open(f, path, old)
	if err := fl.Write(make([]byte, 100_000)); err != nil {
		t.Fatal(err)
	}
	fl.Abort()
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	if len(s.files) != 0 {
		t.Fatal("an aborted file was handed on")
	}
	if err := f.Close(); err == nil {
		t.Fatal("the aborted file is still open")
	}
}

// TestWriteErrorStops: the first failure is reported by later calls and by
// Close, and the rest of the queue is dropped rather than written.
func TestWriteErrorStops(t *testing.T) {
	q, s, _, _ := newQueue(t, false)
	dir := t.TempDir()
	path := filepath.Join(dir, "ro")
	os.WriteFile(path, nil, 0o600)
	ro, err := os.Open(path) // read-only: every write fails with EBADF
	if err != nil {
		t.Fatal(err)
	}
	fl := q.Open(ro, path, 0)
	fl.Write(make([]byte, 200_000))
	fl.Finish(200_000)
	f, old := open(t, filepath.Join(dir, "next"))
	next := q.Open(f, "next", old)
	next.Write(make([]byte, 10))
	next.Finish(10)
	err = q.Close()
	if err == nil || !bytes.Contains([]byte(err.Error()), []byte("write "+path)) {
		t.Fatalf("Close = %v, want the write error naming %s", err, path)
	}
	var errno syscall.Errno
	if !errors.As(err, &errno) || errno != syscall.EBADF {
		t.Fatalf("Close = %v, want EBADF underneath", err)
	}
	if len(s.files) != 0 {
		t.Fatalf("%d files handed on after a failure", len(s.files))
	}
	if fl.Write([]byte("x")) == nil {
		t.Fatal("Write after a failure succeeded")
	}
}

func TestWriteAfterCloseRefused(t *testing.T) {
	q, _, _, _ := newQueue(t, false)
	path := filepath.Join(t.TempDir(), "f")
	f, old := open(t, path)
	fl := q.Open(f, path, old)
	fl.Write([]byte("abc"))
	fl.Abort()
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	if err := fl.Write([]byte("x")); err == nil {
		t.Fatal("Write into unmapped buffers after Close succeeded")
	}
}

// TestRefusedFallsBack writes on ramfs, which has no direct I/O: the files
// are written through the page cache and counted as refused.
func TestRefusedFallsBack(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting ramfs needs root")
	}
	dir := t.TempDir()
	if err := syscall.Mount("ramfs", dir, "ramfs", 0, ""); err != nil {
		t.Fatalf("mount ramfs: %v", err)
	}
	t.Cleanup(func() { syscall.Unmount(dir, syscall.MNT_DETACH) })
	q, _, written, _ := newQueue(t, false)
	data := bytes.Repeat([]byte("pg-standby"), 50_000)
	for _, name := range []string{"a", "b"} {
		path := filepath.Join(dir, name)
		f, old := open(t, path)
		fl := q.Open(f, path, old)
		writeChunks(t, fl, data, rand.New(rand.NewPCG(5, 6)))
		if err := fl.Finish(int64(len(data))); err != nil {
			t.Fatal(err)
		}
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"a", "b"} {
		if got, _ := os.ReadFile(filepath.Join(dir, name)); !bytes.Equal(got, data) {
			t.Errorf("%s: content differs (%d bytes)", name, len(got))
		}
	}
	if n, first := q.Refused(); n != 2 || first != filepath.Join(dir, "a") {
		t.Errorf("Refused() = %d, %q; want 2 and the first file", n, first)
	}
	if written.Load() != 2*int64(len(data)) {
		t.Errorf("written %d", written.Load())
	}
}

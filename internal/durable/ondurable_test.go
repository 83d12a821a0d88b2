package durable

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestSyncerOnDurable: every file comes back once, in window-sized batches
// and in order, with its size, both with fsync and with syncfs; OnWritten
// sees each batch the same, and before OnDurable does.
func TestSyncerOnDurable(t *testing.T) {
	for _, syncfs := range []bool{false, true} {
		dir := t.TempDir()
		s := NewSyncer(3, 4)
		if syncfs {
			if err := s.UseSyncfs(dir); err != nil {
				t.Fatal(err)
			}
		}
		var got, written [][]Synced
		var mu sync.Mutex
		s.OnDurable(func(b []Synced) error {
			mu.Lock()
			defer mu.Unlock()
			if len(written) <= len(got) {
				t.Errorf("syncfs %v: batch %d durable before OnWritten saw it", syncfs, len(got))
			}
			got = append(got, slices.Clone(b))
			return nil
		})
		s.OnWritten(0, func(b []Synced) error {
			mu.Lock()
			defer mu.Unlock()
			written = append(written, slices.Clone(b))
			return nil
		}, func(b []Synced) error {
			t.Errorf("syncfs %v: batch lost: %v", syncfs, b)
			return nil
		})
		for i := range 10 {
			f, err := os.Create(filepath.Join(dir, fmt.Sprint(i)))
			if err != nil {
				t.Fatal(err)
			}
			n, _ := f.WriteString(fmt.Sprint(i * 1000))
			s.Sync(f, int64(n))
		}
		if err := s.Wait(); err != nil {
			t.Fatalf("syncfs %v: Wait: %v", syncfs, err)
		}
		if len(got) != 3 || len(got[0]) != 4 || len(got[1]) != 4 || len(got[2]) != 2 {
			t.Fatalf("syncfs %v: batches %v; want 4, 4, 2 files", syncfs, got)
		}
		byName := func(x, y Synced) int { return strings.Compare(x.Name, y.Name) }
		for i, b := range got {
			w := slices.Clone(written[i])
			slices.SortFunc(w, byName)
			if d := slices.Clone(b); !slices.Equal(slices.SortedFunc(slices.Values(d), byName), w) {
				t.Errorf("syncfs %v: batch %d written as %v, durable as %v", syncfs, i, written[i], b)
			}
		}
		for i, b := range got {
			slices.SortFunc(b, func(x, y Synced) int { return len(x.Name) - len(y.Name) })
			for _, f := range b {
				var n int
				fmt.Sscan(filepath.Base(f.Name), &n)
				if n/4 != i || f.Size != int64(len(fmt.Sprint(n*1000))) {
					t.Errorf("syncfs %v: batch %d has %+v", syncfs, i, f)
				}
			}
		}
	}
}

// TestSyncerOnDurableError: an error from the callback fails the Syncer,
// and that batch and every later one go to OnWritten's lost.
func TestSyncerOnDurableError(t *testing.T) {
	s := NewSyncer(1, 1)
	s.OnDurable(func([]Synced) error { return fmt.Errorf("journal full") })
	var mu sync.Mutex
	var lost []string
	s.OnWritten(0, func([]Synced) error { return nil }, func(b []Synced) error {
		mu.Lock()
		defer mu.Unlock()
		for _, f := range b {
			lost = append(lost, filepath.Base(f.Name))
		}
		return nil
	})
	dir := t.TempDir()
	for _, name := range []string{"a", "b"} {
		f, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		s.Sync(f, 0)
	}
	if err := s.Wait(); err == nil {
		t.Fatal("Wait: nil error; want the callback's")
	}
	if slices.Sort(lost); !slices.Equal(lost, []string{"a", "b"}) {
		t.Errorf("lost %v; want a and b", lost)
	}
}

// TestSyncerOnDurableCost times many small files through a Syncer with and
// without completions (PGSTANDBY_SYNCER_COST=N files; the figures go to the
// log): the price of knowing mid-copy what is durable.
func TestSyncerOnDurableCost(t *testing.T) {
	var n int
	if _, err := fmt.Sscan(os.Getenv("PGSTANDBY_SYNCER_COST"), &n); err != nil || n <= 0 {
		t.Skip("set PGSTANDBY_SYNCER_COST=files to time it")
	}
	dir := os.Getenv("PGSTANDBY_SYNCER_DIR")
	if dir == "" {
		dir = t.TempDir()
	}
	data := make([]byte, 8192)
	for _, syncfs := range []bool{false, true} {
		for _, cb := range []bool{false, true} {
			sub, err := os.MkdirTemp(dir, "cost")
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			s := NewSyncer(4, 0)
			if syncfs {
				if err := s.UseSyncfs(sub); err != nil {
					t.Fatal(err)
				}
			}
			if cb {
				s.OnDurable(func([]Synced) error { return nil })
			}
			for i := range n {
				f, err := os.Create(filepath.Join(sub, fmt.Sprint(i)))
				if err != nil {
					t.Fatal(err)
				}
				f.Write(data)
				s.Sync(f, int64(len(data)))
			}
			if err := s.Wait(); err != nil {
				t.Fatal(err)
			}
			t.Logf("syncfs=%v completions=%v: %d files of 8 kB in %v", syncfs, cb, n, time.Since(start))
			os.RemoveAll(sub)
		}
	}
}

// TestSyncerOnDurableAge: a batch that waited long enough goes, not only
// when the window fills, and without waiting for the next Sync: the stream
// may be stalled or inside a large file, and a SIGKILL then must not lose
// files finished long before.
func TestSyncerOnDurableAge(t *testing.T) {
	dir := t.TempDir()
	s := NewSyncer(1, 1000)
	got := make(chan int, 4)
	s.OnDurable(func(b []Synced) error { got <- len(b); return nil })
	s.maxAge = 20 * time.Millisecond
	f, err := os.Create(filepath.Join(dir, "0"))
	if err != nil {
		t.Fatal(err)
	}
	s.Sync(f, 0)
	select {
	case n := <-got:
		if n != 1 {
			t.Errorf("first batch of %d files, want 1", n)
		}
	case <-time.After(10 * time.Second):
		t.Error("no batch reported before the next Sync or Wait")
	}
	if err := s.Wait(); err != nil {
		t.Fatal(err)
	}
}

// TestSyncerOnDurableBytes: a batch whose files hold MaxBatchBytes goes at
// once, without waiting for the age bound: a SIGKILL in a stream of large
// files then loses at most about that much. The bound and the reported
// sizes are the sizes given to Sync (no fstat): the files here stay empty.
func TestSyncerOnDurableBytes(t *testing.T) {
	dir := t.TempDir()
	s := NewSyncer(1, 1000)
	got := make(chan []Synced, 4)
	s.OnDurable(func(b []Synced) error { got <- b; return nil })
	s.maxAge = time.Hour
	sizes := []int64{MaxBatchBytes/2 - 1, MaxBatchBytes/2 + 1}
	for i, size := range sizes {
		f, err := os.Create(filepath.Join(dir, fmt.Sprint(i)))
		if err != nil {
			t.Fatal(err)
		}
		s.Sync(f, size)
	}
	select {
	case b := <-got:
		if len(b) != 2 {
			t.Errorf("first batch of %d files, want both halves: %v", len(b), b)
		}
		for _, f := range b {
			var i int
			fmt.Sscan(filepath.Base(f.Name), &i)
			if f.Size != sizes[i] {
				t.Errorf("file %s reported with size %d, want %d as given to Sync", f.Name, f.Size, sizes[i])
			}
		}
	case <-time.After(10 * time.Second):
		t.Error("no batch reported once the pending files held MaxBatchBytes")
	}
	if err := s.Wait(); err != nil {
		t.Fatal(err)
	}
}

// TestSyncerSyncAll: files handed on together stay one batch however large
// (each alone would fill one: MaxBatchBytes), and one Sync after them starts
// the next.
func TestSyncerSyncAll(t *testing.T) {
	dir := t.TempDir()
	s := NewSyncer(2, 0)
	var got [][]Synced
	s.OnDurable(func(b []Synced) error {
		got = append(got, slices.Clone(b))
		return nil
	})
	open := func(name string) *os.File {
		f, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	s.SyncAll([]*os.File{open("a"), open("b"), open("c")}, []int64{MaxBatchBytes, MaxBatchBytes, MaxBatchBytes})
	s.Sync(open("d"), MaxBatchBytes)
	if err := s.Wait(); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || len(got[0]) != 3 || len(got[1]) != 1 || filepath.Base(got[1][0].Name) != "d" {
		t.Fatalf("batches %v; want a, b, c together, then d", got)
	}
}

// TestSyncerOnWrittenMin: OnWritten reports only files of at least its min
// bytes, and no batch that has none.
func TestSyncerOnWrittenMin(t *testing.T) {
	s := NewSyncer(1, 2)
	s.OnDurable(func([]Synced) error { return nil })
	var got []string
	s.OnWritten(5, func(b []Synced) error {
		for _, f := range b {
			got = append(got, filepath.Base(f.Name))
		}
		return nil
	}, nil)
	dir := t.TempDir()
	for _, name := range []string{"a", "b", "long", "c", "d"} {
		f, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		s.Sync(f, int64(len(name)+1))
	}
	if err := s.Wait(); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, []string{"long"}) {
		t.Errorf("OnWritten saw %v; want only long", got)
	}
}

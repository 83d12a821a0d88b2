package progress

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

func TestBytes(t *testing.T) {
	for n, want := range map[int64]string{
		0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 1536: "1.5 KiB", 5 << 20: "5.0 MiB",
		3 << 30: "3.0 GiB", 2 << 40: "2.0 TiB", 1 << 50: "1.0 PiB", 1 << 60: "1024.0 PiB",
	} {
		if got := Bytes(n); got != want {
			t.Errorf("Bytes(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestLine(t *testing.T) {
	for _, tc := range []struct {
		s    Snapshot
		want string
	}{
		{Snapshot{Phase: Connecting}, "connecting"},
		{Snapshot{Phase: Connecting, Attempt: 1}, "connecting"},
		{Snapshot{Phase: Checkpoint, Attempt: 2}, "attempt 2: waiting for checkpoint on primary"},
		{Snapshot{Phase: Copying, Streamed: 1 << 20, Attempt: 2, Kind: "resuming: 412 of 980 files kept, changed blocks only"},
			"attempt 2: resuming: 412 of 980 files kept, changed blocks only; copying 1.0 MiB"},
		{Snapshot{Phase: Copying, Streamed: 1 << 20}, "copying 1.0 MiB"},
		{Snapshot{Phase: Copying, Streamed: 1 << 20, Total: 4 << 20, Elapsed: time.Second}, "copying 1.0 MiB of 4.0 MiB (25%)"},
		{Snapshot{Phase: Copying, Streamed: 1 << 20, Total: 4 << 20, Elapsed: 2 * time.Second}, "copying 1.0 MiB of 4.0 MiB (25%), 512.0 KiB/s, 6s left"},
		// An estimate the copy outgrew: 100%, no time left.
		{Snapshot{Phase: Copying, Streamed: 5 << 20, Total: 4 << 20, Elapsed: 5 * time.Second}, "copying 5.0 MiB of 4.0 MiB (100%), 1.0 MiB/s"},
	} {
		if got := tc.s.Line(); got != tc.want {
			t.Errorf("%+v.Line() = %q, want %q", tc.s, got, tc.want)
		}
	}
}

func TestTracker(t *testing.T) {
	tr := NewTracker()
	if s := tr.Snapshot(); s.Phase != Inspecting || s.Primary != "" {
		t.Errorf("new tracker: %+v", s)
	}
	if _, ok := tr.Snapshot().Fraction(); ok {
		t.Error("Fraction known without an estimate")
	}
	tr.SetPhase(Copying)
	tr.SetPrimary("db1:5432")
	tr.Total.Store(200)
	tr.Streamed.Store(50)
	tr.Attempt.Store(3)
	s := tr.Snapshot()
	if f, ok := s.Fraction(); !ok || f != 0.25 {
		t.Errorf("Fraction = %v, %v; want 0.25", f, ok)
	}
	if s.Phase != Copying || s.Primary != "db1:5432" || s.Attempt != 3 || s.Elapsed < 0 || s.At.Before(tr.Start) {
		t.Errorf("snapshot %+v", s)
	}
}

type sinkFunc func(Snapshot)

func (f sinkFunc) Report(s Snapshot) { f(s) }

// TestReport: one snapshot at once, one a tick, a last one when ctx ends,
// to every sink.
func TestReport(t *testing.T) {
	tr := NewTracker()
	var mu sync.Mutex
	var got [2][]Phase
	first := make(chan struct{}, 1)
	sinks := []Sink{}
	for i := range got {
		sinks = append(sinks, sinkFunc(func(s Snapshot) {
			mu.Lock()
			got[i] = append(got[i], s.Phase)
			mu.Unlock()
			select {
			case first <- struct{}{}:
			default:
			}
		}))
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); Report(ctx, tr, time.Hour, sinks...) }()
	<-first
	tr.SetPhase(Done)
	cancel()
	<-done
	for i, g := range got {
		if len(g) != 2 || g[0] != Inspecting || g[1] != Done {
			t.Errorf("sink %d got %v, want [%s %s]", i, g, Inspecting, Done)
		}
	}
}

// TestTerminalLines: the progress line is redrawn in place, log lines go
// above it, and Close leaves none behind.
func TestTerminalLines(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "tty"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if NewTerminal(f) != nil {
		t.Fatal("NewTerminal on a plain file: want nil")
	}
	term := &Terminal{f: f} // not a terminal: no width, lines are not cut
	term.Write([]byte("before\n"))
	term.Report(Snapshot{Phase: Connecting})
	term.Write([]byte("log line\n"))
	term.Report(Snapshot{Phase: Copying, Streamed: 1024})
	term.Close()
	term.Close()
	b, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	want := "before\n" + "\rconnecting\x1b[K" + "\r\x1b[Klog line\nconnecting\x1b[K" + "\rcopying 1.0 KiB\x1b[K" + "\r\x1b[K"
	if string(b) != want {
		t.Errorf("terminal output %q\nwant %q", b, want)
	}
}

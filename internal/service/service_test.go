package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pg-standby/pg-standby/internal/backup"
	"github.com/pg-standby/pg-standby/internal/instance"
	"github.com/pg-standby/pg-standby/internal/progress"
)

// notes records what Run tells the service manager.
type notes struct {
	mu       sync.Mutex
	log      []string
	statuses chan string
}

func newNotes() *notes { return &notes{statuses: make(chan string, 100)} }

func (n *notes) add(s string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.log = append(n.log, s)
}
func (n *notes) Status(s string)               { n.add("STATUS=" + s); n.statuses <- s }
func (n *notes) Ready(s string)                { n.add("READY " + s) }
func (n *notes) Stopping(s string)             { n.add("STOPPING " + s) }
func (n *notes) ExtendTimeout(d time.Duration) { n.add(fmt.Sprintf("EXTEND %s", d)) }
func (n *notes) all() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]string(nil), n.log...)
}
func (n *notes) String() string { return strings.Join(n.all(), "\n") }
func (n *notes) has(prefix string) (bool, []string) {
	for _, l := range n.all() {
		if strings.HasPrefix(l, prefix) {
			return true, n.all()
		}
	}
	return false, n.all()
}

// phases records the snapshots a sink is given.
type phases struct {
	mu    sync.Mutex
	snaps []progress.Snapshot
}

func (p *phases) Report(s progress.Snapshot) {
	p.mu.Lock()
	p.snaps = append(p.snaps, s)
	p.mu.Unlock()
}
func (p *phases) got() []progress.Snapshot {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]progress.Snapshot(nil), p.snaps...)
}

// pendingInstance is a minimal instance whose primary_conninfo is conf.
func pendingInstance(t *testing.T, conf string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "postgresql.conf"), []byte(conf+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, instance.BackupSignal), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

// refusingPrimary is a conninfo for a port nothing listens on.
func refusingPrimary(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return fmt.Sprintf("primary_conninfo = 'host=127.0.0.1 port=%d user=replicator connect_timeout=5'", port)
}

func config(dir string, n *notes) Config {
	return Config{
		Backup: backup.Options{DataDir: dir}, Log: slog.New(slog.DiscardHandler), Notify: n,
		ReportInterval: time.Hour, Backoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond,
	}
}

// TestRunNotTransient: a configuration error is not retried; the manager is
// told it failed.
func TestRunNotTransient(t *testing.T) {
	n := newNotes()
	cfg := config(pendingInstance(t, "# no primary_conninfo"), n)
	cfg.Retries = 3
	retries := &phases{}
	cfg.RetrySinks = []progress.Sink{retries}
	_, err := Run(context.Background(), cfg)
	if backup.KindOf(err) != backup.Config || !strings.Contains(err.Error(), "primary_conninfo is not set") {
		t.Fatalf("Run = %v, want the configuration error", err)
	}
	if got := n.all(); len(got) != 1 || !strings.HasPrefix(got[0], "STATUS=failed: ") || !strings.Contains(got[0], "primary_conninfo is not set") {
		t.Errorf("notifications %q, want one failed status", got)
	}
	if len(retries.got()) != 0 {
		t.Errorf("retry sinks told of %d back-offs, want none", len(retries.got()))
	}
}

// TestRunRetries: a transient failure is retried Retries times with a
// doubling, capped back-off, each told to the manager and the retry sinks
// with the failed attempt's number.
func TestRunRetries(t *testing.T) {
	n := newNotes()
	dir := pendingInstance(t, refusingPrimary(t))
	cfg := config(dir, n)
	cfg.Retries = 3
	retries, sink := &phases{}, &phases{}
	cfg.RetrySinks, cfg.Sinks = []progress.Sink{retries}, []progress.Sink{sink}
	_, err := Run(context.Background(), cfg)
	if backup.KindOf(err) != backup.Transient {
		t.Fatalf("Run = %v (%s), want a transient error", err, backup.KindOf(err))
	}
	var waits []string
	for _, l := range n.all() {
		if strings.HasPrefix(l, "STATUS=attempt ") {
			waits = append(waits, strings.SplitN(l, ":", 2)[0])
		}
	}
	want := []string{"STATUS=attempt 2 in 1ms", "STATUS=attempt 3 in 2ms", "STATUS=attempt 4 in 2ms"}
	if fmt.Sprint(waits) != fmt.Sprint(want) {
		t.Errorf("back-off statuses %q, want %q\n%s", waits, want, n)
	}
	if last := n.all()[len(n.all())-1]; !strings.HasPrefix(last, "STATUS=failed: ") {
		t.Errorf("last notification %q, want a failed status", last)
	}
	if ok, _ := n.has("EXTEND 1m0.001s"); !ok {
		t.Errorf("no watchdog extension for the first back-off:\n%s", n)
	}
	rs := retries.got()
	if len(rs) != 3 {
		t.Fatalf("retry sinks told of %d back-offs, want 3", len(rs))
	}
	for i, s := range rs {
		if s.Phase != progress.WaitingRetry || s.Attempt != int64(i+1) {
			t.Errorf("back-off %d: phase %q attempt %d, want %q attempt %d", i, s.Phase, s.Attempt, progress.WaitingRetry, i+1)
		}
	}
	// Each attempt's first report carries its number, from 1.
	var firsts []int64
	for _, s := range sink.got() {
		if len(firsts) == 0 || s.Attempt != firsts[len(firsts)-1] {
			firsts = append(firsts, s.Attempt)
		}
	}
	if fmt.Sprint(firsts) != "[1 2 3 4]" {
		t.Errorf("attempt numbers reported %v, want [1 2 3 4]", firsts)
	}
}

// TestRunStopDuringBackoff: a stop while waiting to retry ends Run at once,
// says so, and wraps the cause with the failure it was waiting after.
func TestRunStopDuringBackoff(t *testing.T) {
	n := newNotes()
	cfg := config(pendingInstance(t, refusingPrimary(t)), n)
	cfg.Retries, cfg.Backoff, cfg.MaxBackoff = 5, time.Hour, time.Hour
	ctx, cancel := context.WithCancelCause(context.Background())
	stop := errors.New("SIGTERM")
	go func() {
		for s := range n.statuses {
			if strings.HasPrefix(s, "attempt 2 in 1h0m0s") {
				cancel(stop)
				return
			}
		}
	}()
	_, err := Run(ctx, cfg)
	if !errors.Is(err, stop) || !strings.Contains(err.Error(), "while waiting to retry after") {
		t.Fatalf("Run = %v, want the stop's cause, waiting to retry", err)
	}
	if got := n.all(); got[len(got)-1] != "STOPPING stopped; the instance resumes at the next start" {
		t.Errorf("last notification %q", got[len(got)-1])
	}
}

// TestRunAlreadyStandby: a finished standby is ready with nothing to do.
func TestRunAlreadyStandby(t *testing.T) {
	n := newNotes()
	dir := t.TempDir()
	for _, f := range []string{instance.PgControl, instance.StandbySignal} {
		os.MkdirAll(filepath.Dir(filepath.Join(dir, f)), 0o700)
		if err := os.WriteFile(filepath.Join(dir, f), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	_, err := Run(context.Background(), config(dir, n))
	if !errors.Is(err, backup.ErrAlreadyStandby) {
		t.Fatalf("Run = %v, want ErrAlreadyStandby", err)
	}
	if got := n.all(); len(got) != 1 || got[0] != "READY already a standby: nothing to do" {
		t.Errorf("notifications %q", got)
	}
}

// TestWatch: counters that do not move for the stall time end the attempt
// with ErrStalled; moving ones do not, until they stop.
func TestWatch(t *testing.T) {
	tr := progress.NewTracker()
	tr.SetPhase(progress.Copying)
	ctx, cancel := context.WithCancelCause(context.Background())
	done := make(chan struct{})
	start := time.Now()
	go func() { defer close(done); watch(ctx, tr, 300*time.Millisecond, cancel) }()
	for time.Since(start) < 400*time.Millisecond {
		tr.Streamed.Add(1) // moving: no stall
		if ctx.Err() != nil {
			t.Fatalf("stalled after %s while the counter moved", time.Since(start))
		}
		time.Sleep(5 * time.Millisecond)
	}
	<-done
	if !errors.Is(context.Cause(ctx), ErrStalled) {
		t.Fatalf("cause %v, want ErrStalled", context.Cause(ctx))
	}
	// At least the stall time after the last move (less a tick of 75ms).
	if took := time.Since(start); took < 600*time.Millisecond {
		t.Errorf("stalled %s after start, want at least 600ms", took)
	}
	watch(context.Background(), tr, 0, func(error) { t.Error("stall 0 cancelled") }) // returns at once
}

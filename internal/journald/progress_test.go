package journald_test

import (
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/pg-standby/pg-standby/internal/journald"
	"github.com/pg-standby/pg-standby/internal/progress"
)

func TestProgressSink(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(sec int) time.Time { return t0.Add(time.Duration(sec) * time.Second) }
	copying := func(sec int, done, total, attempt int64) progress.Snapshot {
		return progress.Snapshot{Phase: progress.Copying, At: at(sec), Elapsed: at(sec).Sub(t0),
			Streamed: done, Total: total, Attempt: attempt}
	}
	phase := func(sec int, p progress.Phase) progress.Snapshot {
		return progress.Snapshot{Phase: p, At: at(sec), Elapsed: at(sec).Sub(t0), Attempt: 1}
	}

	reports := []struct {
		s    progress.Snapshot
		want bool // logged
	}{
		{phase(0, progress.Connecting), true},
		{phase(1, progress.Connecting), false},
		{phase(2, progress.Checkpoint), true},
		{phase(3, progress.Checkpoint), false},
		{copying(4, 0, 1000, 1), true}, // phase change
		{copying(5, 50, 1000, 1), false},
		{copying(6, 99, 1000, 1), false},
		{copying(7, 100, 1000, 1), true}, // 10 %
		{copying(8, 120, 1000, 1), false},
		{copying(66, 150, 1000, 1), false},
		{copying(67, 160, 1000, 1), true}, // a minute since the last line
		{copying(68, 170, 1000, 1), false},
		{copying(69, 450, 1000, 1), true}, // 10 % → 40 % at once: one line
		{copying(70, 0, 1000, 2), true},   // a new attempt
		{copying(71, 90, 1000, 2), false},
		{copying(72, 1000, 1000, 2), true}, // 100 %
		{phase(73, progress.Syncing), true},
		{phase(74, progress.Done), true},
		{phase(75, progress.Done), false}, // the reporter's last report
	}

	var rec recorder
	k := journald.ProgressSink(slog.New(journald.NewJournalHandler("main", nil, rec.send, io.Discard)))
	for i, r := range reports {
		k.Report(r.s)
		got := rec.take()
		if !r.want {
			if len(got) != 0 {
				t.Errorf("report %d (%s, %d of %d B at %s): logged %q, want nothing",
					i, r.s.Phase, r.s.Streamed, r.s.Total, r.s.At.Sub(t0), got[0].msg)
			}
			continue
		}
		if len(got) != 1 {
			t.Errorf("report %d (%s, %d of %d B at %s): logged %d lines, want 1",
				i, r.s.Phase, r.s.Streamed, r.s.Total, r.s.At.Sub(t0), len(got))
			continue
		}
		e := got[0]
		if e.msg != r.s.Line() {
			t.Errorf("report %d: message %q, want %q", i, e.msg, r.s.Line())
		}
		for name, want := range map[string]string{
			"PG_STANDBY_PHASE":       string(r.s.Phase),
			"PG_STANDBY_BYTES_DONE":  itoa(r.s.Streamed),
			"PG_STANDBY_BYTES_TOTAL": itoa(r.s.Total),
			"PG_STANDBY_ATTEMPT":     itoa(r.s.Attempt),
			"PG_STANDBY_INSTANCE":    "main",
		} {
			if got := e.vars[name]; got != want {
				t.Errorf("report %d: %s=%q, want %q", i, name, got, want)
			}
		}
	}
}

func TestProgressSinkUnknownTotal(t *testing.T) {
	var rec recorder
	k := journald.ProgressSink(slog.New(journald.NewJournalHandler("main", nil, rec.send, io.Discard)))
	t0 := time.Now()
	var lines int
	for sec := range 181 { // three minutes, a report per second, no estimate
		k.Report(progress.Snapshot{Phase: progress.Copying, At: t0.Add(time.Duration(sec) * time.Second),
			Streamed: int64(sec) << 20})
		lines += len(rec.take())
	}
	if lines != 4 { // 0 s, 60 s, 120 s, 180 s
		t.Errorf("3 minutes of copying without an estimate: %d lines, want 4", lines)
	}
}

func TestProgressSinkIsNoFlood(t *testing.T) {
	var rec recorder
	k := journald.ProgressSink(slog.New(journald.NewJournalHandler("main", nil, rec.send, io.Discard)))
	t0 := time.Now()
	const total = 40 << 30
	var lines int
	for sec := range 1201 { // 20 minutes at a steady rate, a report per second
		k.Report(progress.Snapshot{Phase: progress.Copying, At: t0.Add(time.Duration(sec) * time.Second),
			Streamed: total * int64(sec) / 1200, Total: total})
		lines += len(rec.take())
	}
	// One line at the start, then one per 10 % (every 2 minutes), and one in
	// each minute between: 1 + 10 + 10.
	if lines != 21 {
		t.Errorf("20 minutes of copying: %d lines, want 21", lines)
	}
}

func itoa(n int64) string { return slog.Int64Value(n).String() }

package progress

import (
	"context"
	"time"
)

// Sink receives snapshots. It must not block for long and must not fail the
// backup: a sink that cannot reach its peer logs once and carries on.
type Sink interface {
	Report(Snapshot)
}

// CopyOnly returns sinks that see Done as CopyDone: the backup says
// "standby ready" at its end, which a copy-only caller must not repeat.
func CopyOnly(sinks ...Sink) []Sink {
	out := make([]Sink, len(sinks))
	for i, s := range sinks {
		out[i] = copyOnlySink{s}
	}
	return out
}

type copyOnlySink struct{ s Sink }

func (k copyOnlySink) Report(s Snapshot) {
	if s.Phase == Done {
		s.Phase = CopyDone
	}
	k.s.Report(s)
}

// Report samples t every interval and hands each snapshot to every sink, until
// ctx ends: one snapshot at once, then one a tick, then a last one. Run it in its own goroutine.
func Report(ctx context.Context, t *Tracker, interval time.Duration, sinks ...Sink) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	report := func() {
		s := t.Snapshot()
		for _, k := range sinks {
			k.Report(s)
		}
	}
	report()
	for {
		select {
		case <-ctx.Done():
			report()
			return
		case <-tick.C:
			report()
		}
	}
}

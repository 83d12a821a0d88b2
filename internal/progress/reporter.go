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

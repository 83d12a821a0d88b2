package journald

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/pg-standby/pg-standby/internal/progress"
)

// While copying, ProgressSink logs whenever another tenth of the estimate is
// done or copyEvery has passed since its last line, whichever comes first.
const (
	copySteps = 10
	copyEvery = time.Minute
)

// ProgressSink returns a progress.Sink that logs to log at Info level: on
// every phase change (the first report included), and while copying each time
// another 10 % of the estimated size is done or a minute has passed since the
// last line, whichever comes first. Reports between those are dropped, so the
// log holds tens of lines per backup, not one per reporter tick.
//
// Each line has Snapshot.Line() as message and the attributes phase,
// bytes_done (Snapshot.Streamed), bytes_total (the estimate, 0 while unknown)
// and attempt; through NewHandler they become the journal fields
// PG_STANDBY_PHASE, PG_STANDBY_BYTES_DONE, PG_STANDBY_BYTES_TOTAL and
// PG_STANDBY_ATTEMPT. A new attempt counts as a phase change. log nil means
// slog.Default(). Entering a phase in told logs nothing: another line of the
// caller's says it (with more detail), and the journal should not say it twice.
func ProgressSink(log *slog.Logger, told ...progress.Phase) progress.Sink {
	if log == nil {
		log = slog.Default()
	}
	return &progressSink{log: log, told: told}
}

type progressSink struct {
	log  *slog.Logger
	told []progress.Phase

	mu      sync.Mutex // Report is called from one goroutine; this keeps a misuse safe
	started bool
	phase   progress.Phase
	attempt int64
	step    int       // tenths done at the last line, -1 while unknown
	at      time.Time // time of the last line, by the snapshots' clock
}

// Report implements progress.Sink.
func (k *progressSink) Report(s progress.Snapshot) {
	now := s.At
	if now.IsZero() {
		now = time.Now()
	}
	step := -1
	if f, ok := s.Fraction(); ok {
		step = int(f * copySteps)
	}

	k.mu.Lock()
	changed := !k.started || s.Phase != k.phase || s.Attempt != k.attempt
	due := s.Phase == progress.Copying && (step > k.step || now.Sub(k.at) >= copyEvery)
	if changed || due {
		k.started, k.phase, k.attempt, k.step, k.at = true, s.Phase, s.Attempt, step, now
	}
	k.mu.Unlock()
	if !changed && !due || changed && slices.Contains(k.told, s.Phase) {
		return
	}

	k.log.LogAttrs(context.Background(), slog.LevelInfo, s.Line(),
		slog.String("phase", string(s.Phase)),
		slog.Int64("bytes_done", s.Streamed),
		slog.Int64("bytes_total", s.Total),
		slog.Int64("attempt", s.Attempt),
	)
}

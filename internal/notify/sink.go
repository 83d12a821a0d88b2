package notify

import (
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"

	"github.com/pg-standby/pg-standby/internal/progress"
)

// statusEvery is the least time between two STATUS= updates from a Sink, less
// a tenth for ticker jitter: a reporter ticking every second must not have
// every other update dropped because two ticks came 999 ms apart.
const (
	statusEvery  = time.Second
	statusJitter = statusEvery / 10
)

// Sink returns a progress.Sink that turns each report into at most one
// notification datagram, combining:
//
//   - STATUS=<Snapshot.Line()> when the line differs from the last one sent,
//     at most about once per second; a line held back by that limit goes out
//     with a later report.
//   - EXTEND_TIMEOUT_USEC=<stall> when the phase changed or a byte counter
//     (Streamed, Written, Unchanged, WALTo) grew since the previous report,
//     and on the first report. The unit can thus keep a finite
//     TimeoutStartSec=: a backup that moves is never timed out, and one that
//     stalls for longer than stall is. A stall ≤ 0 sends no extensions.
//   - WATCHDOG=1 on every report while the watchdog is enabled for this
//     process: it proves the reporter runs, not that the backup moves; that
//     is EXTEND_TIMEOUT_USEC's job.
//
// Without a notification socket the Sink does nothing.
func (n *Notifier) Sink(stall time.Duration) progress.Sink {
	return &sink{n: n, stall: stall}
}

type sink struct {
	n     *Notifier
	stall time.Duration

	mu       sync.Mutex // Report is called from one goroutine; this keeps a misuse safe
	started  bool
	last     progress.Snapshot // previous report
	line     string            // last STATUS= sent
	lineSent time.Time         // when it was sent, by the snapshots' clock
}

// Report implements progress.Sink.
func (k *sink) Report(s progress.Snapshot) {
	if !k.n.Enabled() {
		return
	}
	now := s.At
	if now.IsZero() {
		now = time.Now()
	}

	k.mu.Lock()
	var states []string
	if line := s.Line(); line != k.line && (k.lineSent.IsZero() || now.Sub(k.lineSent) >= statusEvery-statusJitter) {
		states = append(states, status(line))
		k.line, k.lineSent = line, now
	}
	if k.stall > 0 && (!k.started || moved(k.last, s)) {
		if a := extendTimeout(k.stall); a != "" {
			states = append(states, a)
		}
	}
	if k.n.watchdog > 0 {
		states = append(states, daemon.SdNotifyWatchdog)
	}
	k.started, k.last = true, s
	k.mu.Unlock()

	if len(states) > 0 {
		k.n.send(strings.Join(states, "\n"))
	}
}

// moved reports whether the backup made progress from a to b. A checkpoint
// on the primary moves no bytes for up to checkpoint_timeout (spread) but is
// work under way, so it counts as progress too.
func moved(a, b progress.Snapshot) bool {
	return a.Phase != b.Phase || b.Phase == progress.Checkpoint ||
		b.Streamed > a.Streamed || b.Written > a.Written ||
		b.Unchanged > a.Unchanged || b.WALTo > a.WALTo
}

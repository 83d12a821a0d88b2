package progress

import (
	"sync/atomic"
	"time"
)

// Phase names a step of the backup, as shown to people.
type Phase string

const (
	Inspecting Phase = "checking the instance"
	Connecting Phase = "connecting"
	Checkpoint Phase = "waiting for checkpoint on primary"
	Copying    Phase = "copying"
	WaitingWAL Phase = "streaming WAL"
	Verifying  Phase = "verifying manifest"
	Syncing    Phase = "syncing to disk"
	Handover   Phase = "writing standby configuration"
	Done       Phase = "standby ready"
	// CopyDone ends a copy-only backup (patroni-replica): a bare copy with
	// no standby configuration is no ready standby.
	CopyDone Phase = "copy complete"
	// WaitingRetry is the back-off between a failed attempt and the next.
	WaitingRetry Phase = "waiting to retry"
)

// Tracker holds the live counters of one backup attempt.
type Tracker struct {
	phase   atomic.Pointer[Phase]
	primary atomic.Pointer[string]
	Start   time.Time

	Total     atomic.Int64 // estimated archive bytes (the server's tablespace sizes)
	Streamed  atomic.Int64 // member bytes received
	Written   atomic.Int64 // bytes written to disk
	Unchanged atomic.Int64 // bytes an earlier attempt had already written identically
	WALTo     atomic.Uint64
	StartLSN  atomic.Uint64
	EndLSN    atomic.Uint64
	Attempt   atomic.Int64
	Reused    atomic.Int64 // bytes of files kept from an earlier attempt, not received (resume by changed blocks)
	kind      atomic.Pointer[string]
}

// SetKind says what kind of attempt runs ("resuming: 412 of 980 files
// kept, changed blocks only"); "" for a plain full copy.
func (t *Tracker) SetKind(k string) { t.kind.Store(&k) }

// NewTracker returns a Tracker in phase Inspecting.
func NewTracker() *Tracker {
	t := &Tracker{Start: time.Now()}
	t.SetPhase(Inspecting)
	return t
}

// SetPhase moves the backup to phase p.
func (t *Tracker) SetPhase(p Phase) { t.phase.Store(&p) }

// SetPrimary records the primary's host:port (never credentials).
func (t *Tracker) SetPrimary(addr string) { t.primary.Store(&addr) }

// Snapshot is a consistent-enough copy of the counters at one instant.
type Snapshot struct {
	Phase     Phase
	At        time.Time
	Elapsed   time.Duration
	Total     int64
	Streamed  int64
	Written   int64
	Unchanged int64
	WALTo     uint64
	StartLSN  uint64
	EndLSN    uint64
	Attempt   int64
	Reused    int64
	Kind      string
	Primary   string
}

// Snapshot samples the counters.
func (t *Tracker) Snapshot() Snapshot {
	now := time.Now()
	s := Snapshot{
		Phase: *t.phase.Load(), At: now, Elapsed: now.Sub(t.Start),
		Total: t.Total.Load(), Streamed: t.Streamed.Load(), Written: t.Written.Load(),
		Unchanged: t.Unchanged.Load(), WALTo: t.WALTo.Load(), StartLSN: t.StartLSN.Load(), EndLSN: t.EndLSN.Load(),
		Attempt: t.Attempt.Load(), Reused: t.Reused.Load(),
	}
	if k := t.kind.Load(); k != nil {
		s.Kind = *k
	}
	if p := t.primary.Load(); p != nil {
		s.Primary = *p
	}
	return s
}

// Fraction is the copied share of the estimate, 0..1; ok is false while unknown.
func (s Snapshot) Fraction() (f float64, ok bool) {
	if s.Total <= 0 {
		return 0, false
	}
	return min(float64(s.Streamed)/float64(s.Total), 1), true
}

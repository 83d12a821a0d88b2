package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/pg-standby/pg-standby/internal/backup"
	"github.com/pg-standby/pg-standby/internal/instance"
	"github.com/pg-standby/pg-standby/internal/printable"
	"github.com/pg-standby/pg-standby/internal/progress"
)

// Notifier is what the service tells the service manager.
type Notifier interface {
	Status(text string)
	Ready(status string)
	Stopping(status string)
	ExtendTimeout(d time.Duration)
}

// Config configures Run.
type Config struct {
	Backup backup.Options
	Log    *slog.Logger
	Notify Notifier
	// Sinks observe each attempt's progress (sampled every ReportInterval).
	Sinks []progress.Sink
	// RetrySinks are told of each back-off (phase WaitingRetry, the failed
	// attempt's number): the bus, whose LastError then says why.
	RetrySinks     []progress.Sink
	ReportInterval time.Duration
	// Retries is how many transient failures are retried in-process before
	// the worker exits 1 and leaves the next try to systemd's Restart=.
	Retries int
	// Backoff is the first wait between attempts; it doubles up to MaxBackoff.
	Backoff, MaxBackoff time.Duration
	// Stall fails an attempt whose byte counters did not move for this long
	// (the checkpoint phase excepted: the primary is working then).
	Stall time.Duration
}

// ErrStalled is the cause of an attempt the watchdog ended.
var ErrStalled = errors.New("backup stalled")

// Run takes backups until one succeeds, a failure is not transient, the
// retries are used up, or ctx ends.
func Run(ctx context.Context, cfg Config) (*backup.Result, error) {
	if cfg.ReportInterval == 0 {
		cfg.ReportInterval = time.Second
	}
	backoff := cfg.Backoff
	for try := 1; ; try++ {
		res, err := attempt(ctx, cfg)
		switch {
		case err == nil:
			cfg.Notify.Ready(fmt.Sprintf("standby ready (%s copied, WAL up to %s)", progress.Bytes(res.Bytes), res.End))
			return res, nil
		case errors.Is(err, backup.ErrAlreadyStandby):
			cfg.Notify.Ready("already a standby: nothing to do")
			return nil, err
		case ctx.Err() != nil:
			cfg.Notify.Stopping("stopped; the instance resumes at the next start")
			return nil, err
		case backup.KindOf(err) != backup.Transient || try > cfg.Retries:
			cfg.Notify.Status("failed: " + oneLine(err))
			return nil, err
		}
		n := recordedAttempts(cfg.Backup)
		cfg.Log.Warn(fmt.Sprintf("attempt %d failed: %s; attempt %d in %s (retry %d of %d)", n, oneLine(err), n+1, backoff, try, cfg.Retries),
			"error", err, "retry_in", backoff.String(), "try", try, "attempt", n)
		cfg.Notify.Status(fmt.Sprintf("attempt %d in %s: %s", n+1, backoff, oneLine(err)))
		cfg.Notify.ExtendTimeout(backoff + time.Minute)
		waiting(cfg.RetrySinks, n)
		select {
		case <-ctx.Done():
			cfg.Notify.Stopping("stopped; the instance resumes at the next start")
			return nil, fmt.Errorf("%w (while waiting to retry after: %v)", context.Cause(ctx), err)
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, cfg.MaxBackoff)
	}
}

// attempt runs one backup with its own tracker, reporter and watchdog.
func attempt(ctx context.Context, cfg Config) (*backup.Result, error) {
	tracker := progress.NewTracker()
	opt := cfg.Backup
	// The first report already carries this attempt's number (from 1).
	tracker.Attempt.Store(int64(recordedAttempts(opt) + 1))
	opt.Progress = tracker
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	repCtx, stopReports := context.WithCancel(context.Background())
	reported := make(chan struct{})
	go func() {
		defer close(reported)
		progress.Report(repCtx, tracker, cfg.ReportInterval, cfg.Sinks...)
	}()
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		watch(repCtx, tracker, cfg.Stall, cancel)
	}()
	res, err := backup.Run(ctx, opt)
	stopReports()
	<-reported
	<-watched
	if err != nil && errors.Is(context.Cause(ctx), ErrStalled) {
		err = &backup.Error{Kind: backup.Transient, Err: fmt.Errorf("%w: no data from the primary for %s (%s phase)", ErrStalled, cfg.Stall, tracker.Snapshot().Phase)}
	}
	return res, err
}

// watch cancels the attempt when nothing moved for stall.
func watch(ctx context.Context, t *progress.Tracker, stall time.Duration, cancel context.CancelCauseFunc) {
	if stall <= 0 {
		return
	}
	tick := time.NewTicker(min(stall/4, time.Second))
	defer tick.Stop()
	last, lastMove := t.Snapshot(), time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			s := t.Snapshot()
			if s.Phase != last.Phase || s.Streamed != last.Streamed || s.WALTo != last.WALTo || s.Phase == progress.Checkpoint {
				last, lastMove = s, now
				continue
			}
			if now.Sub(lastMove) >= stall {
				cancel(ErrStalled)
				return
			}
		}
	}
}

func oneLine(err error) string { return printable.OneLine(err.Error(), 200) }

// recordedAttempts is the attempt count basebackup.signal holds (0 when
// unreadable: backup.Run reports why).
func recordedAttempts(opt backup.Options) int {
	dir := opt.DataDir
	if opt.Instance != nil {
		dir = opt.Instance.DataDir
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return 0
	}
	defer root.Close()
	p, err := instance.ReadPending(root)
	if err != nil {
		return 0
	}
	return p.Attempts
}

// waiting tells sinks that attempt n failed and the next one waits.
func waiting(sinks []progress.Sink, n int) {
	t := progress.NewTracker()
	t.Attempt.Store(int64(n))
	t.SetPhase(progress.WaitingRetry)
	s := t.Snapshot()
	for _, k := range sinks {
		k.Report(s)
	}
}

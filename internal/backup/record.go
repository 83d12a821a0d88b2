package backup

import (
	"context"
	"errors"
	"os"
	"time"

	"github.com/pg-standby/pg-standby/internal/instance"
)

// numberAttempt makes this attempt's number (from 1) known before anything
// is logged or published, and returns the count recorded before it.
func (b *attempt) numberAttempt() int {
	b.opt.Progress.Attempt.Store(int64(b.pending.Attempts + 1))
	return b.pending.Attempts
}

// recordUnwritten records in basebackup.signal an attempt that failed
// before its first write (the pipeline records those that wrote): status
// then says "attempt N failed: REASON" with no worker running. A stop is
// not a failure and is not counted. The signal file must exist and be a
// regular file: nothing is created in a directory that has none. A refusal
// (the directory must not be written) is not recorded either.
func (b *attempt) recordUnwritten(ctx context.Context, before int, err error) {
	if ctx.Err() != nil || b.pending.Attempts != before || KindOf(err) == Refused {
		return // a stop, recorded by the pipeline, or a directory not to be written
	}
	root, oerr := os.OpenRoot(b.in.DataDir)
	if oerr != nil {
		return
	}
	defer root.Close()
	fi, serr := root.Lstat(instance.BackupSignal)
	if serr != nil || !fi.Mode().IsRegular() {
		return
	}
	b.pending.Attempts++
	b.pending.LastError, b.pending.LastFailure = failureText(err), time.Now()
	if werr := instance.WritePending(root, b.pending, fi.Mode().Perm()); werr != nil {
		b.log.Warn("could not record the failure in "+instance.BackupSignal, "error", werr)
	}
}

// Stopped is what basebackup.signal records for an attempt that was
// stopped (SIGTERM, SIGINT, Cancel()): not a failure.
const Stopped = "stopped"

func failureText(err error) string {
	if errors.Is(err, context.Canceled) {
		return Stopped
	}
	return err.Error()
}

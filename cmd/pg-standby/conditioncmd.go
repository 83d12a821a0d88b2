package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/pg-standby/pg-standby/internal/instance"
)

// stoppedDir holds the note pg-standby@.service's ExecStopPost= leaves when
// the worker was stopped (died by SIGTERM). systemd 252 fires OnSuccess=
// for such a stop too, and passes no MONITOR_* variables to ExecCondition=,
// so the note is how the guard tells "stopped by the admin" from "start me".
const stoppedDir = "/run/pg-standby"

// systemctl is run by absolute path: the guard runs as root, and a PATH
// lookup could find a program the postgres user planted.
const systemctl = "/usr/bin/systemctl"

// conditionTimeout bounds the guard: Debian's postgresql@.service has
// TimeoutStartSec=0, so a guard stuck on a file (a hung mount) would keep
// postgres from starting for ever.
const conditionTimeout = 10 * time.Second

// conditionCmd is postgres' ExecCondition=: exit 0 lets postgres start,
// 1 skips it (a skipped unit is not a failed one). It must be harmless for
// clusters that were never pg-standby instances: a stat and exit 0. It runs
// as root on files the postgres user controls: every read is bounded
// (pgconf.Load), it ends at SIGTERM and after conditionTimeout.
func conditionCmd(ctx context.Context, args []string) int {
	if len(args) != 1 {
		fmt.Fprintln(os.Stderr, "pg-standby condition: want one INSTANCE")
		return exitOK
	}
	name := args[0]
	type answer struct {
		pending bool
		err     error
	}
	done := make(chan answer, 1)
	go func() {
		in, err := instance.Resolve(name, false)
		if err != nil {
			done <- answer{err: err}
			return
		}
		_, err = os.Lstat(filepath.Join(in.DataDir, instance.BackupSignal))
		done <- answer{pending: err == nil}
	}()
	ctx, cancel := context.WithTimeout(ctx, conditionTimeout)
	defer cancel()
	var a answer
	select {
	case a = <-done:
	case <-ctx.Done():
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			fmt.Fprintf(os.Stderr, "pg-standby condition: %s: reading its configuration took over %s (a file on a hung mount?); letting postgres start\n", name, conditionTimeout)
			return exitOK
		}
		return exitCancelled
	}
	if a.err != nil {
		fmt.Fprintf(os.Stderr, "pg-standby condition: %v; letting postgres start\n", a.err)
		return exitOK
	}
	if !a.pending {
		return exitOK
	}
	backupUnit := "pg-standby@" + name + ".service"
	if err := os.Remove(filepath.Join(stoppedDir, name+".stopped")); err == nil {
		fmt.Printf("base backup of %s was stopped; postgres not started (systemctl start %s resumes it)\n", name, backupUnit)
		return 1
	} else if !errors.Is(err, fs.ErrNotExist) {
		fmt.Fprintf(os.Stderr, "pg-standby condition: %v\n", err)
	}
	fmt.Printf("base backup pending for %s: starting %s instead; postgres follows when it succeeds\n", name, backupUnit)
	if out, err := exec.CommandContext(ctx, systemctl, "start", "--no-block", backupUnit).CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "could not start %s: %v: %s\n", backupUnit, err, out)
	}
	return 1
}

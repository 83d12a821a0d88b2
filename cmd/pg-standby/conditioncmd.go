package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/pg-standby/pg-standby/internal/instance"
)

// stoppedDir holds the note pg-standby@.service's ExecStopPost= leaves when
// the worker was stopped (died by SIGTERM). systemd 252 fires OnSuccess=
// for such a stop too, and passes no MONITOR_* variables to ExecCondition=,
// so the note is how the guard tells "stopped by the admin" from "start me".
const stoppedDir = "/run/pg-standby"

// conditionCmd is postgres' ExecCondition=: exit 0 lets postgres start,
// 1 skips it (a skipped unit is not a failed one). It must be harmless for
// clusters that were never pg-standby instances: a stat and exit 0.
func conditionCmd(args []string) int {
	if len(args) != 1 {
		fmt.Fprintln(os.Stderr, "pg-standby condition: want one INSTANCE")
		return exitOK
	}
	name := args[0]
	in, err := instance.Resolve(name, false)
	if err != nil {
		return exitOK
	}
	if _, err := os.Lstat(filepath.Join(in.DataDir, instance.BackupSignal)); err != nil {
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
	if out, err := exec.Command("systemctl", "start", "--no-block", backupUnit).CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "could not start %s: %v: %s\n", backupUnit, err, out)
	}
	return 1
}

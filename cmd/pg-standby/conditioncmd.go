package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/pg-standby/pg-standby/internal/instance"
)

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
	// Started by the backup unit's OnSuccess= (systemd passes MONITOR_UNIT):
	// that unit is restarting or was stopped; enqueuing it again would undo a stop.
	if os.Getenv("MONITOR_UNIT") == backupUnit {
		fmt.Printf("base backup of %s not finished (%s ended with %s); postgres not started\n", name, backupUnit, os.Getenv("MONITOR_SERVICE_RESULT"))
		return 1
	}
	fmt.Printf("base backup pending for %s: starting %s instead; postgres follows when it succeeds\n", name, backupUnit)
	if out, err := exec.Command("systemctl", "start", "--no-block", backupUnit).CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "could not start %s: %v: %s\n", backupUnit, err, out)
	}
	return 1
}

package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coreos/go-systemd/v22/unit"
)

// runCondition runs "pg-standby condition NAME" as the drop-in's
// ExecCondition=+ does (as this user), with a Debian configuration root.
func runCondition(t *testing.T, confRoot, name string) (int, string, time.Duration) {
	t.Helper()
	cmd := exec.Command(binary, "condition", name)
	cmd.Env = append(os.Environ(), "PG_CLUSTER_CONF_ROOT="+confRoot, "GORACE=atexit_sleep_ms=0", "PATH=/nonexistent")
	start := time.Now()
	out, _ := cmd.CombinedOutput()
	return cmd.ProcessState.Sys().(syscall.WaitStatus).ExitStatus(), string(out), time.Since(start)
}

// TestConditionGuard: the postgres guard never blocks or fails a cluster
// that is not a pending pg-standby instance, and skips postgres on one.
func TestConditionGuard(t *testing.T) {
	root := t.TempDir()
	data := t.TempDir()
	os.MkdirAll(filepath.Join(root, "15", "main"), 0o755)
	os.WriteFile(filepath.Join(root, "15", "main", "postgresql.conf"), []byte("data_directory = '"+data+"'  # comment\n"), 0o644)
	pending := t.TempDir()
	os.WriteFile(filepath.Join(pending, "basebackup.signal"), nil, 0o600)

	for _, name := range []string{"15-main", "not-a-cluster", "16-absent", `srv-no\x2dsuch-dir`} {
		code, out, took := runCondition(t, root, name)
		if code != 0 {
			t.Errorf("condition %s: status %d, want 0\n%s", name, code, out)
		}
		if took > 500*time.Millisecond {
			t.Errorf("condition %s took %s", name, took)
		}
		t.Logf("condition %s: %d in %s", name, code, took)
	}
	code, out, _ := runCondition(t, root, pending)
	if code != 1 || !strings.Contains(out, "base backup pending") {
		t.Errorf("condition on a pending instance: status %d, want 1 (skip postgres)\n%s", code, out)
	}
	if os.Geteuid() != 0 {
		return
	}
	// As the unit's ExecStopPost= leaves it: named by %i, the escaped path.
	name := unit.UnitNamePathEscape(pending)
	note := filepath.Join(stoppedDir, name+".stopped")
	os.MkdirAll(stoppedDir, 0o755)
	os.WriteFile(note, nil, 0o644)
	t.Cleanup(func() { os.Remove(note) })
	code, out, _ = runCondition(t, root, name)
	if code != 1 || !strings.Contains(out, "was stopped") {
		t.Errorf("condition after a stop: status %d\n%s", code, out)
	}
	if _, err := os.Stat(note); err == nil {
		t.Errorf("the stop note was not consumed")
	}
}

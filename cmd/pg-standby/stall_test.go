package main

import (
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/pg-standby/pg-standby/internal/testpg"
)

// TestStallIsDetected freezes the primary's WAL senders mid-copy: the
// worker must notice no data arrives and fail, not hang.
func TestStallIsDetected(t *testing.T) {
	testpg.ForEachVersion(t, func(t *testing.T, v testpg.Version) {
		testpg.Require(t)
		p := testpg.Start(t, testpg.Options{})
		p.Pgbench(t, "-i", "-s", "2", "-q")
		dir := initInstance(t, p, "--max-rate", "4096")
		l := listenNotify(t)
		w := startWorker(t, []string{"NOTIFY_SOCKET=" + l.path}, "run", "--pgdata", dir, "--stall-timeout", "3s", "--retries", "0")
		waitCopying(t, l, w, 10)
		pids := strings.Fields(p.SQL(t, "SELECT pid FROM pg_stat_activity WHERE backend_type = 'walsender'"))
		if len(pids) == 0 {
			t.Fatal("no walsender on the primary")
		}
		signal := func(sig string) {
			for _, pid := range pids {
				exec.Command("kill", "-"+sig, pid).Run()
			}
		}
		signal("STOP")
		defer signal("CONT")
		start := time.Now()
		code := w.wait(t)
		took := time.Since(start)
		signal("CONT")
		out := w.output.String()
		if code != exitTransient || !strings.Contains(out, "stalled") {
			t.Fatalf("frozen primary: status %d after %s, want %d with a stall error\n%s", code, took, exitTransient, out)
		}
		if took > 30*time.Second {
			t.Errorf("stall noticed after %s with --stall-timeout 3s", took)
		}
		t.Logf("stall noticed after %s", took)
	})
}

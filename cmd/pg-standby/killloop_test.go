package main

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pg-standby/pg-standby/internal/oracle"
	"github.com/pg-standby/pg-standby/internal/testpg"
)

var (
	pctRe   = regexp.MustCompile(`STATUS=copying .*\((\d+)%\)`)
	bytesRe = regexp.MustCompile(`standby ready.* written=(\d+) unchanged=(\d+)`)
)

// TestKillLoop SIGKILLs the worker at many moments of a backup taken under
// pgbench load, reruns it on the half-written directory each time, and
// checks the result as after a clean run: pg_verifybackup passes and the
// standby replays a row written after the last attempt.
func TestKillLoop(t *testing.T) {
	waiting(t)
	testpg.ForEachVersion(t, func(t *testing.T, v testpg.Version) {
		// The versions in parallel: each copy is throttled (--max-rate), so
		// the loop mostly waits.
		waiting(t)
		testpg.Require(t) // skips under -short
		p := testpg.Start(t, testpg.Options{})
		p.Pgbench(t, "-i", "-s", "2", "-q")
		stopWrites := p.StartWrites(t)
		defer stopWrites()

		// Moments: before connecting, then at growing shares of the copy. A
		// STATUS comes once a second, about 7 % of this throttled copy, so
		// 85 % is the last share a status is sure to report before the end.
		moments := []int{-1, 5, 15, 25, 35, 45, 55, 65, 75, 85}
		var cleanWritten int64
		for i, at := range moments {
			name := fmt.Sprintf("kill at %d%%", at)
			if at < 0 {
				name = "kill before connecting"
			}
			dir := initInstance(t, p, "--max-rate", "4096")
			l := listenNotify(t)
			w := startWorker(t, []string{"NOTIFY_SOCKET=" + l.path}, "run", "--pgdata", dir)
			if at < 0 {
				// The first STATUS: the worker is up and has not connected
				// yet (service reports once before the attempt starts).
				waitStatus(t, l, w, "STATUS=")
			} else {
				waitCopying(t, l, w, at)
			}
			w.cmd.Process.Signal(syscall.SIGKILL)
			if code := w.wait(t); code != -int(syscall.SIGKILL) {
				t.Fatalf("%s: the worker ended with %d before the kill\n%s", name, code, w.output.String())
			}
			// The rerun at full speed (run --max-rate 0): the throttle is
			// there to give the kill its moments; what the rerun proves
			// (bytes found right, pg_verifybackup, the standby) does not
			// depend on its speed. Throttled, each rerun was a whole copy of
			// about 13 s: some 135 s of the loop's 235 s on PostgreSQL 17.
			code, out := runWorker(t, "run", "--pgdata", dir, "--max-rate", "0")
			if code != 0 {
				t.Fatalf("%s: rerun status %d\n%s", name, code, out)
			}
			written, unchanged := retryBytes(out)
			t.Logf("%s: rerun wrote %d bytes, found %d already right (clean run: %d)", name, written, unchanged, cleanWritten)
			switch {
			case i == 0:
				// Killed before the copy: the rerun is a clean run.
				if written == 0 {
					t.Fatalf("%s: rerun wrote nothing; want a whole copy\n%s", name, out)
				}
				cleanWritten = written + unchanged
			case at >= 25 && (unchanged == 0 || written >= cleanWritten):
				// The writes under load go to one small table: what the killed
				// attempt wrote is mostly still right, and is not written again.
				t.Fatalf("%s: rerun wrote %d bytes and found %d already right; want less than the clean run's %d, some found\n%s", name, written, unchanged, cleanWritten, out)
			}
			oracle.VerifyBackup(t, dir)
			marker := fmt.Sprintf("k%d", i)
			p.SQL(t, "CREATE TABLE "+marker+" AS SELECT "+strconv.Itoa(i)+" AS x")
			s := testpg.StartStandby(t, dir)
			s.WaitFor(t, "SELECT x FROM "+marker, strconv.Itoa(i), time.Minute)
			s.Stop(t)
		}
	})
}

// waitCopying waits for a STATUS that reports at least pct of the copy.
func waitCopying(t *testing.T, l *notifyListener, w *worker, pct int) {
	t.Helper()
	waitNotify(t, l, w, fmt.Sprintf("%d%% of the copy", pct), func(m string) bool {
		sm := pctRe.FindStringSubmatch(m)
		if sm == nil {
			return false
		}
		n, _ := strconv.Atoi(sm[1])
		return n >= pct
	})
}

// waitStatus waits for a notify message that holds want.
func waitStatus(t *testing.T, l *notifyListener, w *worker, want string) {
	t.Helper()
	waitNotify(t, l, w, strconv.Quote(want), func(m string) bool { return strings.Contains(m, want) })
}

// waitNotify waits for a notify message that matches (what says what it
// is); the worker finishing (READY=1) first, or two minutes, fail the test.
func waitNotify(t *testing.T, l *notifyListener, w *worker, what string, match func(string) bool) {
	t.Helper()
	deadline := time.After(2 * time.Minute)
	for {
		select {
		case m, ok := <-l.got:
			if !ok {
				t.Fatalf("notify socket closed\n%s", w.output.String())
			}
			if match(m) {
				return
			}
			if strings.Contains(m, "READY=1") {
				t.Fatalf("the worker finished before %s was reported\n%s", what, w.output.String())
			}
		case <-deadline:
			t.Fatalf("no notify message reported %s\n%s", what, w.output.String())
		}
	}
}

func retryBytes(out string) (written, unchanged int64) {
	if m := bytesRe.FindStringSubmatch(out); m != nil {
		written, _ = strconv.ParseInt(m[1], 10, 64)
		unchanged, _ = strconv.ParseInt(m[2], 10, 64)
	}
	return written, unchanged
}

package main

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

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
	testpg.ForEachVersion(t, func(t *testing.T, v testpg.Version) {
		// The versions in parallel: each copy is throttled (--max-rate), so
		// the loop mostly waits, about 5 minutes per version.
		t.Parallel()
		if testing.Short() {
			t.Skip("kill loop: long")
		}
		testpg.Require(t)
		p := testpg.Start(t, testpg.Options{})
		p.Pgbench(t, "-i", "-s", "2", "-q")
		stopWrites := p.StartWrites(t)
		defer stopWrites()

		// Moments: while connecting, then at growing shares of the copy.
		moments := []int{-1, 5, 15, 25, 35, 45, 55, 65, 75, 85, 95}
		var cleanWritten int64
		for i, at := range moments {
			name := fmt.Sprintf("kill at %d%%", at)
			if at < 0 {
				name = "kill while connecting"
			}
			dir := initInstance(t, p, "--max-rate", "4096")
			l := listenNotify(t)
			w := startWorker(t, []string{"NOTIFY_SOCKET=" + l.path}, "run", "--pgdata", dir)
			if at < 0 {
				time.Sleep(50 * time.Millisecond)
			} else {
				waitCopying(t, l, w, at)
			}
			w.cmd.Process.Signal(syscall.SIGKILL)
			if code := w.wait(t); code != -int(syscall.SIGKILL) {
				t.Logf("%s: the worker ended with %d before the kill", name, code)
			}
			code, out := runWorker(t, "run", "--pgdata", dir)
			if code != 0 {
				t.Fatalf("%s: rerun status %d\n%s", name, code, out)
			}
			written, unchanged := retryBytes(out)
			if i == 0 {
				cleanWritten = written + unchanged
			}
			t.Logf("%s: rerun wrote %d bytes, found %d already right (clean run: %d)", name, written, unchanged, cleanWritten)
			verifyBackup(t, dir)
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
	deadline := time.After(2 * time.Minute)
	for {
		select {
		case m, ok := <-l.got:
			if !ok {
				t.Fatalf("notify socket closed\n%s", w.output.String())
			}
			if strings.Contains(m, "READY=1") {
				return // finished before the moment: the kill hits a done worker
			}
			if sm := pctRe.FindStringSubmatch(m); sm != nil {
				if n, _ := strconv.Atoi(sm[1]); n >= pct {
					return
				}
			}
		case <-deadline:
			t.Fatalf("no copying status reached %d%%\n%s", pct, w.output.String())
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

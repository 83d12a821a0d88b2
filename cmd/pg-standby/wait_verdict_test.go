package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/pg-standby/pg-standby/internal/instance"
)

// TestWaitVerdict: the systemd side of wait's judgement, which the tests
// with a real backup (no systemd there) do not reach.
func TestWaitVerdict(t *testing.T) {
	unit := func(active string) *unitState { return &unitState{Name: "pg-standby@x.service", ActiveState: active} }
	cases := []struct {
		name      string
		st        instanceStatus
		streaming bool
		want      int
	}{
		{"streaming standby", instanceStatus{State: stateStandby}, true, waitDone},
		{"copied, postgres not running, for ready", instanceStatus{State: stateNotRunning}, false, waitDone},
		{"copied, postgres not running, for streaming", instanceStatus{State: stateNotRunning}, true, waitOn},
		{"promoted", instanceStatus{State: statePromoted}, false, waitNever},
		{"fell behind", instanceStatus{State: stateFellBehind}, true, waitNever},
		{"running", instanceStatus{State: stateRunning}, false, waitOn},
		{"not started, start queued", instanceStatus{State: stateNotStarted, Unit: unit("inactive")}, false, waitOn},
		{"not started, unit failed", instanceStatus{State: stateNotStarted, Unit: unit("failed")}, false, waitFailed},
		{"failed, systemd restarting it", instanceStatus{State: stateFailed, LastError: "x", Unit: unit("activating")}, false, waitOn},
		{"failed, unit failed", instanceStatus{State: stateFailed, LastError: "x", Unit: unit("failed")}, false, waitFailed},
		{"failed, no unit", instanceStatus{State: stateFailed, LastError: "x"}, false, waitFailed},
		{"interrupted by a failure", instanceStatus{State: stateInterrupted, LastError: "x", Unit: unit("failed")}, false, waitFailed},
		{"interrupted by a stop", instanceStatus{State: stateInterrupted, LastError: stoppedError, Unit: unit("inactive")}, false, waitOn},
		{"missing", instanceStatus{State: stateMissing}, false, waitOn},
		{"patroni-replica's bare copy", instanceStatus{State: stateOther, Copy: &instance.Copy{Patroni: true}}, false, waitNever},
		{"another cluster", instanceStatus{State: stateOther}, false, waitFailed},
	}
	for _, c := range cases {
		if got := waitVerdict(c.st, c.streaming); got != c.want {
			t.Errorf("%s: verdict %d, want %d", c.name, got, c.want)
		}
	}
}

// TestWaker: a signal file created in the data directory, pg_control
// renamed into global/ (made after the watch began) and the lock holder's
// exit each wake wait; its own reads of the directory do not.
func TestWaker(t *testing.T) {
	dir := t.TempDir()
	w := newWaker(dir, false)
	defer w.close()
	w.watchDirs()
	if !w.ok() {
		t.Fatal("the data directory is not watched")
	}
	woken := func(what string) {
		t.Helper()
		select {
		case <-w.c:
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: no wake-up", what)
		}
	}
	quiet := func(what string) {
		t.Helper()
		select {
		case <-w.c:
			t.Fatalf("%s: woken", what)
		case <-time.After(200 * time.Millisecond):
		}
	}
	quiet("nothing happened")
	os.ReadDir(dir)
	os.ReadFile(filepath.Join(dir, "x"))
	quiet("wait's own look")
	os.WriteFile(filepath.Join(dir, "standby.signal"), nil, 0o600)
	woken("standby.signal created")
	os.Mkdir(filepath.Join(dir, "global"), 0o700)
	woken("global/ created")
	w.watchDirs()
	os.WriteFile(filepath.Join(dir, "global", "pg_control.tmp"), nil, 0o600)
	woken("global/pg_control.tmp written")
	os.Rename(filepath.Join(dir, "global", "pg_control.tmp"), filepath.Join(dir, "global", "pg_control"))
	woken("pg_control renamed into place")

	cmd := exec.Command("sleep", "1")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.watchPID(cmd.Process.Pid)
	quiet("holder still running")
	woken("holder exited")
	cmd.Wait()
	w.watchPID(cmd.Process.Pid) // the same pid again: nothing new
	w.watchPID(0)
	w.watchPID(cmd.Process.Pid) // gone already
	woken("holder gone before it was watched")
}

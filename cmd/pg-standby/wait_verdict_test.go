package main

import "testing"

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
	}
	for _, c := range cases {
		if got := waitVerdict(c.st, c.streaming); got != c.want {
			t.Errorf("%s: verdict %d, want %d", c.name, got, c.want)
		}
	}
}

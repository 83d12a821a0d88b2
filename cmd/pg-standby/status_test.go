package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/pg-standby/pg-standby/internal/busapi"
	"github.com/pg-standby/pg-standby/internal/oracle"
	"github.com/pg-standby/pg-standby/internal/testbus"
	"github.com/pg-standby/pg-standby/internal/testpg"
)

// No test of this package may reach the machine's system bus: workers that
// a test does not give a private bus get one that does not exist (and log
// once that status is not published).
func init() {
	os.Setenv("DBUS_SYSTEM_BUS_ADDRESS", "unix:path=/nonexistent/pg-standby-tests/system_bus_socket")
}

// startBus starts a private system bus with the shipped policy.
func startBus(t *testing.T) *testbus.Bus {
	t.Helper()
	_, err := exec.LookPath("busctl")
	var b *testbus.Bus
	if err == nil {
		b, err = testbus.Start(testbus.Options{Policies: []string{"../../packaging/dbus/pg-standby.conf"}})
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%v [CI=true: not skipping]", err)
		}
		t.Skip(err)
	}
	t.Cleanup(b.Stop)
	return b
}

// watcher is a client of the bus (root) that records one instance's signals.
type watcher struct {
	conn *dbus.Conn
	dir  string
	mu   sync.Mutex
	sigs []*dbus.Signal
	at   []time.Time
}

func watch(t *testing.T, b *testbus.Bus, dir string) *watcher {
	t.Helper()
	c, err := dbus.Connect(b.Address)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	w := &watcher{conn: c, dir: dir}
	ch := make(chan *dbus.Signal, 1000)
	c.Signal(ch)
	if err := c.AddMatchSignal(dbus.WithMatchObjectPath(busapi.Path(dir))); err != nil {
		t.Fatal(err)
	}
	go func() {
		for s := range ch {
			w.mu.Lock()
			w.sigs, w.at = append(w.sigs, s), append(w.at, time.Now())
			w.mu.Unlock()
		}
	}()
	return w
}

func (w *watcher) signals() ([]*dbus.Signal, []time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]*dbus.Signal(nil), w.sigs...), append([]time.Time(nil), w.at...)
}

// job reads the instance's job; ok is false while no worker is on the bus.
func (w *watcher) job(t *testing.T) (busapi.Job, bool) {
	t.Helper()
	j, ok, err := busapi.Lookup(w.conn, w.dir)
	if err != nil {
		return busapi.Job{}, false // the worker just left
	}
	return j, ok
}

func (w *watcher) waitPhase(t *testing.T, wk *worker, phase string) busapi.Job {
	t.Helper()
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if j, ok := w.job(t); ok && j.Phase == phase {
			return j
		}
		if wk.cmd.ProcessState != nil {
			break
		}
	}
	t.Fatalf("worker never in phase %s on the bus\n%s", phase, wk.output.String())
	return busapi.Job{}
}

// completed returns the body of the Completed signal, waiting a moment.
func (w *watcher) completed(t *testing.T) []any {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		sigs, _ := w.signals()
		for _, s := range sigs {
			if s.Name == busapi.Interface+".Completed" {
				return s.Body
			}
		}
	}
	t.Fatal("no Completed signal")
	return nil
}

// status runs pg-standby status as root with the bus, decoding --json.
func status(t *testing.T, b *testbus.Bus, args ...string) instanceStatus {
	t.Helper()
	out := pgStandby(t, b, append([]string{"status", "--json"}, args...)...)
	var st instanceStatus
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("status --json %v: %v\n%s", args, err, out)
	}
	return st
}

func pgStandby(t *testing.T, b *testbus.Bus, args ...string) string {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), b.Env())
	out, err := cmd.Output()
	// status exits 3 for a state that needs the admin (a copied standby whose
	// postgres these tests do not start): the output is still the answer.
	if err != nil && !(args[0] == "status" && cmd.ProcessState.ExitCode() == exitFailedState) {
		t.Fatalf("pg-standby %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// TestBusDuringBackup: a real backup seen over D-Bus: the interface, growing
// properties, batched PropertiesChanged, Completed(true), and status --json
// during and after.
func TestBusDuringBackup(t *testing.T) {
	testpg.ForEachVersion(t, func(t *testing.T, v testpg.Version) {
		testpg.Require(t)
		b := startBus(t)
		p := testpg.Start(t, testpg.Options{})
		p.Pgbench(t, "-i", "-s", "3", "-q")
		dir := initInstance(t, p, "--max-rate", "8192")
		w := watch(t, b, dir)
		wk := startWorker(t, []string{b.Env()}, "run", "--pgdata", dir)
		w.waitPhase(t, wk, busapi.PhaseCopying)

		out, err := exec.Command("busctl", "--address="+b.Address, "introspect", busapi.Name(dir), string(busapi.Path(dir))).CombinedOutput()
		if err != nil {
			t.Fatalf("busctl introspect: %v\n%s", err, out)
		}
		for _, want := range []string{busapi.Interface, ".Cancel", ".Completed", ".BytesDone", ".Progress", ".ExpectedEndTime"} {
			if !strings.Contains(string(out), want) {
				t.Errorf("busctl introspect has no %q:\n%s", want, out)
			}
		}

		st := status(t, b, "--pgdata", dir)
		t.Logf("status --json during the copy: %+v %+v", st, st.Job)
		if st.State != stateRunning || !st.Running || st.Job == nil || st.Job.Phase != busapi.PhaseCopying ||
			st.Job.Primary == "" || strings.Contains(st.Job.Primary, "password") || st.Job.StartLSN == "" || st.PID == 0 {
			t.Errorf("status --json during the copy: %+v job %+v, want running, copying, primary, start LSN, pid", st, st.Job)
		}
		if line := pgStandby(t, b, "status", "--pgdata", dir); !strings.Contains(line, "running, attempt 1: copying") || strings.Count(line, "\n") != 1 {
			t.Errorf("status: %q, want one line, running, attempt 1: copying", line)
		}

		var last busapi.Job
		polls := 0
		for wk.cmd.ProcessState == nil {
			j, ok := w.job(t)
			if !ok {
				break
			}
			polls++
			if j.BytesDone < last.BytesDone || j.Attempt < last.Attempt || (last.ProgressValid && j.Progress < last.Progress) {
				t.Errorf("properties went back: %+v after %+v", j, last)
			}
			last = j
			time.Sleep(200 * time.Millisecond)
		}
		if code := wk.wait(t); code != 0 {
			t.Fatalf("run: status %d\n%s", code, wk.output.String())
		}
		t.Logf("%d polls, last %+v", polls, last)
		if body := w.completed(t); len(body) != 2 || body[0] != true || !strings.Contains(body[1].(string), "standby ready") {
			t.Errorf("Completed%v, want (true, standby ready …)", body)
		}

		// PropertiesChanged: one signal per update holding only changed values,
		// several properties in one signal, byte counters about once a second.
		sigs, at := w.signals()
		state := map[string]string{}
		var changes, batched int
		var lastBytes time.Time
		for i, s := range sigs {
			if s.Name != "org.freedesktop.DBus.Properties.PropertiesChanged" {
				continue
			}
			changes++
			props := s.Body[1].(map[string]dbus.Variant)
			if len(props) > 1 {
				batched++
			}
			onlyBytes := true
			for k, v := range props {
				if state[k] == v.String() {
					t.Errorf("PropertiesChanged %d repeats %s = %s, which did not change", i, k, v)
				}
				state[k] = v.String()
				onlyBytes = onlyBytes && (k == "BytesDone" || k == "Progress" || k == "Rate" || k == "ExpectedEndTime" || k == "BytesTotal" || k == "ProgressValid")
			}
			if onlyBytes {
				if !lastBytes.IsZero() && at[i].Sub(lastBytes) < 800*time.Millisecond {
					t.Errorf("PropertiesChanged %d with only byte counters %s after the previous one", i, at[i].Sub(lastBytes))
				}
				lastBytes = at[i]
			}
		}
		t.Logf("%d PropertiesChanged, %d with several properties", changes, batched)
		if changes < 4 || batched < changes/2 {
			t.Errorf("%d PropertiesChanged, %d batched: want several, most with several properties", changes, batched)
		}
		if state["Phase"] != `"done"` || state["Cancelable"] != "false" {
			t.Errorf("last announced Phase %s Cancelable %s, want done, false", state["Phase"], state["Cancelable"])
		}

		st = status(t, b, "--pgdata", dir)
		if st.State != stateNotRunning || st.Running || st.Job != nil {
			t.Errorf("status --json after the backup: %+v, want not-running (copied, postgres not started)", st)
		}
		if line := pgStandby(t, b, "status", "--pgdata", dir); !strings.Contains(line, "copied but not starting: postgres is not running") {
			t.Errorf("status after the backup: %q", line)
		}
	})
}

// TestBusCancel: Cancel() from nobody is refused by the policy; from root it
// stops the backup like SIGTERM; status shows the interrupted instance; the
// next run resumes.
func TestBusCancel(t *testing.T) {
	waiting(t)
	testpg.ForEachVersion(t, func(t *testing.T, v testpg.Version) {
		waiting(t)
		testpg.Require(t)
		if os.Geteuid() != 0 {
			t.Skip("running a caller as nobody needs root")
		}
		uid, gid, err := testbus.User("nobody")
		if err != nil {
			t.Skip(err)
		}
		b := startBus(t)
		p := testpg.Start(t, testpg.Options{})
		p.Pgbench(t, "-i", "-s", "3", "-q")
		dir := initInstance(t, p, "--max-rate", "4096")
		w := watch(t, b, dir)
		st := status(t, b, "--pgdata", dir)
		if st.State != stateNotStarted || st.Running {
			t.Errorf("status --json before the first run: %+v, want not-started", st)
		}
		wk := startWorker(t, []string{b.Env()}, "run", "--pgdata", dir)
		w.waitPhase(t, wk, busapi.PhaseCopying)

		call := []string{"--address=" + b.Address, "call", busapi.Name(dir), string(busapi.Path(dir)), busapi.Interface, "Cancel"}
		nobody := exec.Command("busctl", call...)
		nobody.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: gid}}
		if out, err := nobody.CombinedOutput(); err == nil || !strings.Contains(string(out), "Access denied") {
			t.Errorf("Cancel as nobody: %v %s, want access denied", err, out)
		}
		// The worker refuses before it replies, so the job is looked at now;
		// the one cancel log line (uid 0) below shows nobody's did nothing.
		if j, ok := w.job(t); !ok || j.Phase != busapi.PhaseCopying {
			t.Fatalf("after nobody's Cancel: %+v on bus %v, want still copying\n%s", j, ok, wk.output.String())
		}

		if out, err := exec.Command("busctl", call...).CombinedOutput(); err != nil {
			t.Fatalf("Cancel as root: %v\n%s", err, out)
		}
		if code := wk.wait(t); code != exitBusCancel {
			t.Errorf("after Cancel: status %d, want %d (a stop the unit does not restart)\n%s", code, exitBusCancel, wk.output.String())
		}
		if out := wk.output.String(); !strings.Contains(out, `msg="stopped; the instance resumes at the next start"`) || strings.Contains(out, "backup failed") {
			t.Errorf("after Cancel: want the stop said as such, no failure:\n%s", out)
		}
		if out := wk.output.String(); strings.Count(out, "backup cancelled over D-Bus") != 1 || !strings.Contains(out, "uid=0 ") {
			t.Errorf("after Cancel: want one cancel, root's (uid=0):\n%s", out)
		}
		if body := w.completed(t); len(body) != 2 || body[0] != false {
			t.Errorf("Completed%v, want (false, …)", body)
		}
		st = status(t, b, "--pgdata", dir)
		t.Logf("status --json after Cancel: %+v", st)
		if st.State != stateInterrupted || st.Running || st.Attempt != 1 || st.LastError != "stopped" || st.LastFailure == "" || st.exitStatus() != 0 {
			t.Errorf("status --json after Cancel: %+v, want interrupted, attempt 1, stopped and when, exit 0", st)
		}
		if line := pgStandby(t, b, "status", "--pgdata", dir); line != dir+": backup in progress, not running: attempt 1 stopped\n" {
			t.Errorf("status after Cancel: %q", line)
		}
		if code, out := runWorker(t, "run", "--pgdata", dir); code != 0 {
			t.Fatalf("resumed run: status %d\n%s", code, out)
		}
		if st := status(t, b, "--pgdata", dir); st.State != stateNotRunning {
			t.Errorf("status --json after the resumed run: %+v, want not-running (copied, postgres not started)", st)
		}
		oracle.VerifyBackup(t, dir)
	})
}

// TestBusTwoInstances: two backups at once are two distinct objects, and
// list and status show each.
func TestBusTwoInstances(t *testing.T) {
	testpg.ForEachVersion(t, func(t *testing.T, v testpg.Version) {
		testpg.Require(t)
		b := startBus(t)
		p := testpg.Start(t, testpg.Options{})
		p.Pgbench(t, "-i", "-s", "2", "-q")
		dirs := []string{initInstance(t, p, "--max-rate", "4096"), initInstance(t, p, "--max-rate", "4096")}
		var workers []*worker
		for _, dir := range dirs {
			w := watch(t, b, dir)
			wk := startWorker(t, []string{b.Env()}, "run", "--pgdata", dir)
			w.waitPhase(t, wk, busapi.PhaseCopying)
			workers = append(workers, wk)
		}
		list := pgStandby(t, b, "list")
		t.Logf("list:\n%s", list)
		for _, dir := range dirs {
			if !strings.Contains(list, dir+": running, attempt 1: copying") {
				t.Errorf("list has no running line for %s", dir)
			}
		}
		a, c := status(t, b, "--pgdata", dirs[0]), status(t, b, "--pgdata", dirs[1])
		if a.Job == nil || c.Job == nil || a.Job.BusName == c.Job.BusName || a.DataDirectory == c.DataDirectory || a.PID == c.PID {
			t.Errorf("status of the two instances not distinct: %+v %+v", a, c)
		}
		var all []instanceStatus
		if err := json.Unmarshal([]byte(pgStandby(t, b, "list", "--json")), &all); err != nil || len(all) < 2 {
			t.Errorf("list --json: %v, %d instances, want 2", err, len(all))
		}
		for _, wk := range workers {
			wk.cmd.Process.Signal(syscall.SIGTERM)
			wk.wait(t)
		}
	})
}

// TestStatusAfterFailure: a backup that fails (primary gone, no retries)
// publishes Completed(false, reason); status shows the recorded failure.
func TestStatusAfterFailure(t *testing.T) {
	testpg.ForEachVersion(t, func(t *testing.T, v testpg.Version) {
		testpg.Require(t)
		b := startBus(t)
		p := testpg.Start(t, testpg.Options{})
		p.Pgbench(t, "-i", "-s", "2", "-q")
		dir := initInstance(t, p, "--max-rate", "4096")
		w := watch(t, b, dir)
		wk := startWorker(t, []string{b.Env()}, "run", "--pgdata", dir, "--retries", "0")
		w.waitPhase(t, wk, busapi.PhaseCopying)
		p.Stop(t)
		if code := wk.wait(t); code != exitTransient {
			t.Fatalf("run with the primary stopped: status %d, want %d\n%s", code, exitTransient, wk.output.String())
		}
		body := w.completed(t)
		if len(body) != 2 || body[0] != false || body[1] == "" {
			t.Errorf("Completed%v, want (false, reason)", body)
		}
		st := status(t, b, "--pgdata", dir)
		t.Logf("status --json after the failure: %+v", st)
		if st.State != stateInterrupted || st.Running || st.Attempt != 1 || st.LastError == "" || st.Job != nil {
			t.Errorf("status --json after the failure: %+v, want interrupted, attempt 1, the error", st)
		}
		if _, err := time.Parse(time.RFC3339, st.LastFailure); err != nil {
			t.Errorf("last_failure %q: %v", st.LastFailure, err)
		}
	})
}

package main

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pg-standby/pg-standby/internal/busapi"
	"github.com/pg-standby/pg-standby/internal/testpg"
)

// statusOf runs pg-standby status (text and --json) without a bus, as
// root when the test is root: the health probe then runs as postgres.
func statusOf(t *testing.T, args ...string) (instanceStatus, string, int) {
	t.Helper()
	var st instanceStatus
	out, err := exec.Command(binary, append([]string{"status", "--json"}, args...)...).Output()
	if jerr := json.Unmarshal(out, &st); jerr != nil {
		t.Fatalf("status --json %v: %v %v\n%s", args, err, jerr, out)
	}
	cmd := exec.Command(binary, append([]string{"status"}, args...)...)
	line, _ := cmd.Output()
	return st, strings.TrimSpace(string(line)), cmd.ProcessState.ExitCode()
}

// waitState polls status until the state is want.
func waitState(t *testing.T, dir, want string) (instanceStatus, string, int) {
	t.Helper()
	var st instanceStatus
	var line string
	var code int
	for deadline := time.Now().Add(90 * time.Second); time.Now().Before(deadline); time.Sleep(time.Second) {
		if st, line, code = statusOf(t, "--pgdata", dir); st.State == want {
			return st, line, code
		}
	}
	t.Fatalf("status never %s; last: %q %+v health %+v", want, line, st, st.Health)
	return st, line, code
}

// TestStandbyHealth: status of a standby pg-standby made, against the real
// thing: not started; streaming; the walreceiver refused by the primary's
// pg_hba.conf; postgres stopped; the WAL it needs removed on the primary.
func TestStandbyHealth(t *testing.T) {
	testpg.ForEachVersion(t, func(t *testing.T, _ testpg.Version) {
		testpg.Require(t)
		p := testpg.Start(t, testpg.Options{})
		p.Pgbench(t, "-i", "-s", "1", "-q")
		dir := initInstance(t, p)
		if code, out := runWorker(t, "run", "--pgdata", dir); code != 0 {
			t.Fatalf("run: %d\n%s", code, out)
		}

		st, line, code := statusOf(t, "--pgdata", dir)
		t.Logf("copied, postgres not started: %q exit %d", line, code)
		if st.State != stateNotRunning || code != exitFailedState ||
			line != dir+": copied but not starting: postgres is not running (no postmaster.pid)" {
			t.Errorf("before postgres: %q exit %d %+v", line, code, st)
		}

		s := testpg.StartStandby(t, dir)
		st, line, code = waitState(t, dir, stateStandby)
		t.Logf("streaming: %q exit %d; health %+v", line, code, *st.Health)
		h := st.Health
		if code != 0 || !h.Streaming || h.WALReceiver != "streaming" || h.ReplayLSN == "" || h.LagBytes == nil ||
			!strings.HasPrefix(line, dir+": complete standby, streaming from 127.0.0.1:") {
			t.Errorf("streaming: %q exit %d %+v", line, code, h)
		}

		// The primary now refuses the replication role: the walreceiver is
		// thrown out and cannot come back.
		hba := filepath.Join(p.DataDir, "pg_hba.conf")
		orig, err := os.ReadFile(hba)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(hba, append([]byte("host replication replicator 127.0.0.1/32 reject\n"), orig...), 0o600); err != nil {
			t.Fatal(err)
		}
		p.SQL(t, "SELECT pg_reload_conf()")
		time.Sleep(500 * time.Millisecond)
		p.SQL(t, "SELECT pg_terminate_backend(pid) FROM pg_stat_replication")
		st, line, code = waitState(t, dir, stateNotStream)
		t.Logf("refused by pg_hba.conf: %q exit %d; health %+v", line, code, *st.Health)
		if code != exitFailedState || !strings.HasPrefix(line, dir+": not streaming: ") || !strings.Contains(line, "pg_hba.conf rejects replication connection") {
			t.Errorf("refused by pg_hba.conf: %q exit %d", line, code)
		}
		if err := os.WriteFile(hba, orig, 0o600); err != nil {
			t.Fatal(err)
		}
		p.SQL(t, "SELECT pg_reload_conf()")
		waitState(t, dir, stateStandby)

		s.Stop(t)
		st, line, code = statusOf(t, "--pgdata", dir)
		t.Logf("postgres stopped: %q exit %d", line, code)
		if st.State != stateNotRunning || code != exitFailedState {
			t.Errorf("postgres stopped: %q exit %d", line, code)
		}

		// No slot, no wal_keep_size: a few segments and checkpoints later the
		// primary has recycled what the standby needs.
		for i := 0; i < 4; i++ {
			p.SQL(t, "CREATE TABLE IF NOT EXISTS churn(x int); INSERT INTO churn SELECT generate_series(1, 1000); SELECT pg_switch_wal(); CHECKPOINT")
		}
		s = testpg.StartStandby(t, dir)
		st, line, code = waitState(t, dir, stateFellBehind)
		t.Logf("WAL removed: %q exit %d; health %+v", line, code, *st.Health)
		if code != exitFailedState || line != dir+": fell behind: WAL removed on the primary (resync: the standby cannot catch up by streaming)" ||
			!strings.Contains(st.Health.Reason, "has already been removed") {
			t.Errorf("WAL removed: %q exit %d %+v", line, code, st.Health)
		}

		// The resync README.md describes: stop postgres, basebackup.signal as
		// the owner, run again (it reuses what is unchanged), start postgres.
		s.Stop(t)
		if err := os.WriteFile(filepath.Join(dir, "basebackup.signal"), nil, 0o600); err != nil {
			t.Fatal(err)
		}
		testpg.Chown(t, dir)
		if code, out := runWorker(t, "run", "--pgdata", dir); code != 0 {
			t.Fatalf("re-seed run: %d\n%s", code, out)
		}
		testpg.StartStandby(t, dir)
		_, line, _ = waitState(t, dir, stateStandby)
		t.Logf("re-seeded: %q", line)
	})
}

// TestStatusFailedBeforeWrite: an authentication failure before anything
// was written is recorded: status says "attempt N failed: REASON", exits 3,
// and attempts count from 1 (journal field, JSON).
func TestStatusFailedBeforeWrite(t *testing.T) {
	testpg.Require(t)
	p := testpg.Start(t, testpg.Options{Auth: "scram-sha-256"})
	dir := filepath.Join(testpg.TempDir(t), "standby")
	conninfo := strings.Replace(p.ConnString(), "password="+p.Password, "password=wrong", 1)
	if code, out := runWorker(t, "init", "--pgdata", dir, "--primary-conninfo", conninfo, "--port", "1"); code != 0 {
		t.Fatalf("init: %d\n%s", code, out)
	}
	st, line, code := statusOf(t, "--pgdata", dir)
	if st.State != stateNotStarted || code != 0 || line != dir+": backup not started" {
		t.Errorf("before the first run: %q exit %d %+v", line, code, st)
	}
	for n := 1; n <= 2; n++ {
		code, out := runWorker(t, "run", "--pgdata", dir, "--retries", "0")
		if code != exitConfig {
			t.Fatalf("run %d: exit %d, want %d\n%s", n, code, exitConfig, out)
		}
		if n == 1 {
			t.Logf("run output:\n%s", out)
			if !regexp.MustCompile(`msg="backup failed: [^\n]* attempt=1 `).MatchString(out) {
				t.Errorf("run output has no attempt 1:\n%s", out)
			}
		}
		st, line, code = statusOf(t, "--pgdata", dir)
		want := fmt.Sprintf(`%s: backup not started: attempt %d failed: cannot connect to the primary 127.0.0.1:%d: FATAL: password authentication failed for user "replicator" (SQLSTATE 28P01)`, dir, n, p.Port)
		t.Logf("after run %d: %q exit %d", n, line, code)
		if !strings.HasPrefix(line, want) || code != exitFailedState || st.State != stateFailed || st.Attempt != n || st.LastError == "" || st.LastFailure == "" {
			t.Errorf("after run %d: %q exit %d %+v\nwant %q, exit 3", n, line, code, st, want)
		}
	}
}

// TestBackoffVisible: a primary that refuses connections: the back-off says
// why in the journal message, in STATUS= and in status (D-Bus phase
// waiting-retry and LastError), and the count of retries is bounded.
func TestBackoffVisible(t *testing.T) {
	testpg.Require(t)
	b := startBus(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	dir := filepath.Join(testpg.TempDir(t), "standby")
	if code, out := runWorker(t, "init", "--pgdata", dir, "--primary-conninfo", fmt.Sprintf("host=127.0.0.1 port=%d user=replicator", port), "--port", "1"); code != 0 {
		t.Fatalf("init: %d\n%s", code, out)
	}
	reason := fmt.Sprintf("cannot connect to the primary 127.0.0.1:%d: connection refused", port)
	nl := listenNotify(t)
	w := watch(t, b, dir)
	wk := startWorker(t, []string{b.Env(), "NOTIFY_SOCKET=" + nl.path}, "run", "--pgdata", dir, "--retries", "1")
	w.waitPhase(t, wk, busapi.PhaseRetry)
	line := strings.TrimSpace(pgStandby(t, b, "status", "--pgdata", dir))
	if want := dir + ": running, attempt 1 failed, waiting to retry: " + reason; line != want {
		t.Errorf("status while backing off:\n%q\nwant\n%q", line, want)
	}
	if code := wk.wait(t); code != exitTransient {
		t.Fatalf("run: exit %d, want %d\n%s", code, exitTransient, wk.output.String())
	}
	out := wk.output.String()
	if want := fmt.Sprintf(`msg="attempt 1 failed: %s; attempt 2 in 5s (retry 1 of 1)"`, reason); !strings.Contains(out, want) {
		t.Errorf("log has no %s:\n%s", want, out)
	}
	msgs := strings.Join(nl.drain(), "\n")
	if want := "STATUS=attempt 2 in 5s: " + reason; !strings.Contains(msgs, want) {
		t.Errorf("no %q in the notifications:\n%s", want, msgs)
	}
	if _, line, code := statusOf(t, "--pgdata", dir); line != dir+": backup not started: attempt 2 failed: "+reason || code != exitFailedState {
		t.Errorf("status after the retries: %q exit %d", line, code)
	}
}

// TestRunOnStandbyQuiet: run on a finished standby, with the bus up, says
// one line and nothing about D-Bus.
func TestRunOnStandbyQuiet(t *testing.T) {
	b := startBus(t)
	dir := filepath.Join(testpg.TempDir(t), "standby")
	for _, f := range []string{"global/pg_control", "standby.signal", "postgresql.conf"} {
		os.MkdirAll(filepath.Dir(filepath.Join(dir, f)), 0o700)
		if err := os.WriteFile(filepath.Join(dir, f), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	testpg.Chown(t, dir)
	wk := startWorker(t, []string{b.Env()}, "run", "--pgdata", dir)
	if code := wk.wait(t); code != 0 {
		t.Fatalf("run: %d\n%s", code, wk.output.String())
	}
	out := strings.TrimSpace(wk.output.String())
	if strings.Count(out, "\n") != 0 || !strings.Contains(out, `msg="already a standby: nothing to do"`) || strings.Contains(out, "D-Bus") {
		t.Errorf("run on a standby said:\n%s\nwant one line, already a standby, nothing about D-Bus", out)
	}
}

// TestTypoInstance: a cluster name that is no cluster says so.
func TestTypoInstance(t *testing.T) {
	root := t.TempDir()
	for _, args := range [][]string{{"status", "15-nope"}, {"run", "15-nope"}} {
		cmd := exec.Command(binary, args...)
		cmd.Env = append(os.Environ(), "PG_CLUSTER_CONF_ROOT="+root)
		out, _ := cmd.CombinedOutput()
		want := fmt.Sprintf("pg-standby %s: no Debian cluster 15-nope (%s/15/nope) and not a path (no directory /15/nope)\n", args[0], root)
		if string(out) != want || cmd.ProcessState.ExitCode() != exitUsage {
			t.Errorf("%v: %q exit %d, want %q exit %d", args, out, cmd.ProcessState.ExitCode(), want, exitUsage)
		}
	}
}

// TestInitHelp: init -h names the command's arguments.
func TestInitHelp(t *testing.T) {
	cmd := exec.Command(binary, "init", "-h")
	out, _ := cmd.CombinedOutput()
	want := "Usage:\n  pg-standby init INSTANCE --primary-conninfo CONNINFO [options]\n  pg-standby init --pgdata DIR --primary-conninfo CONNINFO [options]\n\nOptions:\n"
	if !strings.HasPrefix(string(out), want) || cmd.ProcessState.ExitCode() != 0 {
		t.Errorf("init -h: exit %d\n%s\nwant it to begin with\n%s", cmd.ProcessState.ExitCode(), out, want)
	}
}

// TestMaxRateZeroLiftsLimit: run --max-rate 0 copies at full speed although
// the instance stores 32 kB/s (which would take minutes); the journal says
// connecting and standby ready once each.
func TestMaxRateZeroLiftsLimit(t *testing.T) {
	testpg.Require(t)
	p := testpg.Start(t, testpg.Options{})
	p.Pgbench(t, "-i", "-s", "1", "-q")
	dir := initInstance(t, p, "--max-rate", "32")
	began := time.Now()
	code, out := runWorker(t, "run", "--pgdata", dir, "--max-rate", "0")
	took := time.Since(began)
	t.Logf("run --max-rate 0 over a stored 32 kB/s: exit %d in %v", code, took.Round(time.Millisecond))
	if code != 0 || took > time.Minute {
		t.Fatalf("run --max-rate 0: exit %d in %v\n%s", code, took, out)
	}
	for _, msg := range []string{`msg="standby ready"`, `msg="connecting to primary"`} {
		if n := strings.Count(out, msg); n != 1 {
			t.Errorf("%d lines with %s, want 1:\n%s", n, msg, out)
		}
	}
	if n := strings.Count(out, "msg=connecting "); n != 0 {
		t.Errorf("the progress sink repeats connecting:\n%s", out)
	}
}

// openPTY opens a pseudo-terminal pair of 100 columns (the master is read).
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skip(err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.IoctlSetWinsize(int(s.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 40, Col: 100}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close(); s.Close() })
	return m, s
}

// TestTerminalProgress: on a terminal, run redraws one progress line with
// \r (phase, bytes, %, rate, time left), cut to the terminal's width; log
// lines go above it.
func TestTerminalProgress(t *testing.T) {
	waiting(t)
	testpg.Require(t)
	p := testpg.Start(t, testpg.Options{})
	p.Pgbench(t, "-i", "-s", "2", "-q")
	dir := initInstance(t, p, "--max-rate", "8192")
	m, s := openPTY(t)
	var out strings.Builder
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 4096)
		for {
			n, err := m.Read(buf)
			out.Write(buf[:n])
			if err != nil {
				return
			}
		}
	}()
	wk := &worker{cmd: exec.Command(binary, "run", "--pgdata", dir)}
	wk.cmd.Stdout, wk.cmd.Stderr = s, s
	wk.cmd.Env = append(os.Environ(), "JOURNAL_STREAM=")
	if os.Geteuid() == 0 {
		wk.cmd.SysProcAttr = postgresCred(t)
	}
	if err := wk.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if code := wk.wait(t); code != 0 {
		t.Fatalf("run on a terminal: exit %d", code)
	}
	s.Close()
	m.SetReadDeadline(time.Now().Add(2 * time.Second))
	<-done
	got := out.String()
	redraws := regexp.MustCompile(`\r(attempt \d+: )?copying [0-9.]+ [KMG]?i?B of [0-9.]+ [KMG]iB \(\d+%\), [0-9.]+ [KMG]iB/s, \d+s left\x1b\[K`).FindAllString(got, -1)
	t.Logf("%d redraws of the progress line, e.g. %q", len(redraws), redraws[len(redraws)/2:][0])
	if len(redraws) < 2 {
		t.Errorf("want the progress line redrawn with \\r several times:\n%q", got)
	}
	for _, l := range strings.Split(strings.ReplaceAll(got, "\r\n", "\n"), "\r") {
		if line := strings.TrimSuffix(strings.SplitN(l, "\n", 2)[0], "\x1b[K"); len([]rune(line)) >= 100 && strings.HasPrefix(line, "copying") {
			t.Errorf("progress line wider than the terminal: %q", line)
		}
	}
	if !strings.Contains(got, `msg="standby ready"`) {
		t.Errorf("no log lines on the terminal:\n%q", got)
	}
}

// postgresCred runs a child as postgres (the instance's owner under root).
func postgresCred(t *testing.T) *syscall.SysProcAttr {
	t.Helper()
	u, err := user.Lookup("postgres")
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
}

// TestStatusPatroniCopy: status and wait on the bare copy a real
// patroni-replica run leaves (as TestPatroniReplicaCopyOnly makes it) say
// what it is, from its backup_label, checked against the copy's own
// backup_manifest (the WAL range's start), and point at Patroni; wait gives
// up at once (3). Once postgres has run on it (as Patroni's leader would),
// they say that.
func TestStatusPatroniCopy(t *testing.T) {
	testpg.ForEachVersion(t, func(t *testing.T, v testpg.Version) {
		testpg.Require(t)
		p := testpg.Start(t, testpg.Options{Auth: "scram-sha-256"})
		base := testpg.TempDir(t)
		passfile := filepath.Join(base, "pgpass")
		if err := os.WriteFile(passfile, []byte(fmt.Sprintf("127.0.0.1:%d:*:replicator:%s\n", p.Port, p.Password)), 0o600); err != nil {
			t.Fatal(err)
		}
		asPostgres(t, passfile)
		dir := filepath.Join(base, "data")
		began := time.Now()
		w := startWorker(t, []string{"PGPASSFILE=" + passfile}, "patroni-replica", "--keep_data=True", "--scope=s", "--role=replica",
			"--datadir="+dir, fmt.Sprintf("--connstring=dbname=postgres user=replicator host=127.0.0.1 port=%d", p.Port))
		if code := w.wait(t); code != exitOK {
			t.Fatalf("patroni-replica: status %d\n%s", code, w.output.String())
		}
		var man struct {
			WALRanges []struct {
				Timeline int    `json:"Timeline"`
				Start    string `json:"Start-LSN"`
			} `json:"WAL-Ranges"`
		}
		b, err := os.ReadFile(filepath.Join(dir, "backup_manifest"))
		if err != nil || json.Unmarshal(b, &man) != nil || len(man.WALRanges) != 1 {
			t.Fatalf("backup_manifest: %v %+v", err, man)
		}
		want := fmt.Sprintf("%s: not a pg-standby instance: a bare copy made by pg-standby patroni-replica (a Patroni replica method), backup started ", dir)
		wantEnd := fmt.Sprintf(", at WAL %s, timeline %d; no standby.signal, no primary_conninfo of pg-standby's; Patroni configures and runs it: ask Patroni (patronictl list)",
			man.WALRanges[0].Start, man.WALRanges[0].Timeline)

		st, line, code := statusOf(t, "--pgdata", dir)
		t.Logf("status: exit %d: %s", code, line)
		if code != exitOK || st.State != stateOther || !strings.HasPrefix(line, want) || !strings.HasSuffix(line, wantEnd) {
			t.Errorf("status of the bare copy: exit %d\n%q\nwant %q…%q", code, line, want, wantEnd)
		}
		c := st.Copy
		if c == nil || !c.Patroni || c.File != "backup_label" || c.Label != "pg-standby patroni-replica "+dir || c.StartLSN != man.WALRanges[0].Start {
			t.Fatalf("status --json copy: %+v", c)
		}
		// START TIME is the primary's clock, to the second, in its zone.
		if at, err := time.Parse("2006-01-02 15:04:05 MST", c.StartTime); err != nil || at.Before(began.Add(-2*time.Second)) || at.After(time.Now()) {
			t.Errorf("start time %q (%v), want between %v and now", c.StartTime, err, began)
		}

		start := time.Now()
		code, out := runWait(t, "--pgdata", dir, "--timeout", "1m")
		t.Logf("wait: exit %d after %v: %s", code, time.Since(start).Round(time.Millisecond), out)
		if code != exitFailedState || !strings.Contains(out, "pg-standby wait: gave up: "+want) || !strings.Contains(out, "patronictl list") ||
			strings.Contains(out, "ready") || time.Since(start) > 5*time.Second {
			t.Errorf("wait on the bare copy: exit %d after %v: %s", code, time.Since(start), out)
		}

		// Postgres started on it without standby.signal (a leader, to
		// Patroni) renames backup_label to backup_label.old.
		s := testpg.StartStandby(t, dir)
		s.Stop(t)
		st, line, code = statusOf(t, "--pgdata", dir)
		t.Logf("status after postgres ran: exit %d: %s", code, line)
		if st.Copy == nil || st.Copy.File != "backup_label.old" || !strings.Contains(line, "; postgres has run on it since; no standby.signal; Patroni configures and runs it: ask Patroni (patronictl list)") {
			t.Errorf("status after postgres ran on the copy: %q %+v", line, st.Copy)
		}
	})
}

// TestHealthInUserNamespace: the health probe run as the owner inside a
// user namespace mapping only root and postgres, as pg-standby@ and
// pg-standby-metrics@ run it (PrivateUsers=yes), where /proc/PID/cwd of the
// postmaster is denied: a real streaming standby is still seen running
// and streaming (its own data_directory vouches for it).
func TestHealthInUserNamespace(t *testing.T) {
	testpg.ForEachVersion(t, func(t *testing.T, _ testpg.Version) {
		testpg.Require(t)
		p := testpg.Start(t, testpg.Options{})
		dir, _ := makeStandby(t, p)
		waitState(t, dir, stateStandby)
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Fatal(err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		cmd := exec.Command(binary, "health-probe", dir, "")
		cmd.Dir = "/"
		cmd.SysProcAttr = &syscall.SysProcAttr{
			Cloneflags:  syscall.CLONE_NEWUSER,
			UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: 0, Size: 1}, {ContainerID: uid, HostID: uid, Size: 1}},
			GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: 0, Size: 1}, {ContainerID: gid, HostID: gid, Size: 1}},
			Credential:  &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}},
		}
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("health-probe in a user namespace: %v\n%s", err, out)
		}
		check := exec.Command("stat", "-L", fmt.Sprintf("/proc/%d/cwd", postmasterPID(t, dir)))
		check.SysProcAttr = cmd.SysProcAttr
		denied, _ := check.CombinedOutput()
		t.Logf("stat of the postmaster's cwd there: %s", strings.TrimSpace(string(denied)))
		var r struct {
			Postmaster string `json:"postmaster"`
			Streaming  bool   `json:"streaming"`
		}
		if err := json.Unmarshal(out, &r); err != nil || r.Postmaster != "running" || !r.Streaming {
			t.Errorf("health-probe in a user namespace: %v %s; want running and streaming", err, out)
		}
		// A postmaster.pid naming another live server (the primary's, its
		// pid and socket) is not taken for this directory's.
		fake := testpg.TempDir(t)
		pid, err := os.ReadFile(filepath.Join(p.DataDir, "postmaster.pid"))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(fake, "postmaster.pid"), pid, 0o600); err != nil {
			t.Fatal(err)
		}
		testpg.Chown(t, fake)
		cmd = exec.Command(binary, "health-probe", fake, "")
		cmd.Dir, cmd.SysProcAttr = "/", check.SysProcAttr
		out, err = cmd.Output()
		t.Logf("another server's postmaster.pid: %s", out)
		if err != nil || json.Unmarshal(out, &r) != nil || r.Postmaster != "not-running" || !strings.Contains(string(out), "stale postmaster.pid") {
			t.Errorf("health-probe on another server's postmaster.pid in a user namespace: %v %s; want not-running", err, out)
		}
	})
}

func postmasterPID(t *testing.T, dir string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "postmaster.pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.SplitN(string(b), "\n", 2)[0])
	return pid
}

package testpg

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

var testBase string

func TestMain(m *testing.M) {
	// Hold the base directory for the whole run so that the leftover check
	// below knows where every server of this process lived.
	var err error
	if Available() {
		testBase, err = acquireBase()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	code := m.Run()
	if testBase != "" {
		if pids := procsUnder(testBase); len(pids) > 0 {
			fmt.Fprintf(os.Stderr, "testpg: processes left running under %s: %v\n", testBase, pids)
			code = 1
		}
		releaseBase()
		if _, err := os.Stat(testBase); err == nil {
			fmt.Fprintf(os.Stderr, "testpg: base directory %s left behind\n", testBase)
			code = 1
		}
	}
	os.Exit(code)
}

// procsUnder lists processes whose working directory (postgres processes
// chdir into their data directory) or command line is dir or below it.
func procsUnder(dir string) []int {
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		cwd, _ := os.Readlink(fmt.Sprintf("/proc/%d/cwd", pid))
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if cwd == dir || strings.HasPrefix(cwd, dir+"/") || strings.Contains(string(cmdline), dir) {
			if stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
				if i := strings.LastIndexByte(string(stat), ')'); i > 0 && i+2 < len(stat) && stat[i+2] == 'Z' {
					continue // zombie: already dead
				}
			}
			pids = append(pids, pid)
		}
	}
	return pids
}

func connect(t *testing.T, conninfo string) *pgconn.PgConn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	cfg, err := pgconn.ParseConfig(conninfo)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

func exec1(t *testing.T, conn *pgconn.PgConn, sql string) [][][]byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	res, err := conn.Exec(ctx, sql).ReadAll()
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return res[len(res)-1].Rows
}

// checkReplicator connects as replicator, normally and for replication, and
// checks IDENTIFY_SYSTEM against the server's system identifier.
func checkReplicator(t *testing.T, s *Server) {
	t.Helper()
	conn := connect(t, s.ConnString())
	if got := string(exec1(t, conn, "SELECT current_user")[0][0]); got != "replicator" {
		t.Errorf("current_user = %q", got)
	}
	repl := connect(t, s.ConnString()+" replication=true")
	rows := exec1(t, repl, "IDENTIFY_SYSTEM")
	if len(rows) != 1 || len(rows[0]) != 4 {
		t.Fatalf("IDENTIFY_SYSTEM returned %q", rows)
	}
	sysid := s.SQL(t, "SELECT system_identifier FROM pg_control_system()")
	if string(rows[0][0]) != sysid {
		t.Errorf("IDENTIFY_SYSTEM systemid %s, pg_control_system %s", rows[0][0], sysid)
	}
}

func TestStartTrust(t *testing.T) {
	t.Parallel()
	ForEachVersion(t, func(t *testing.T, v Version) {
		began := time.Now()
		s := Start(t, Options{Conf: map[string]string{"application_name": "it's quoted"}})
		t.Logf("Start took %v", time.Since(began))

		checkReplicator(t, s)
		for q, want := range map[string]string{
			"SHOW wal_level":                       "replica",
			"SHOW max_wal_senders":                 "10",
			"SHOW max_replication_slots":           "10",
			"SHOW data_checksums":                  "on",
			"SHOW listen_addresses":                "127.0.0.1",
			"SHOW shared_buffers":                  "32MB",
			"SHOW fsync":                           "on",
			"SHOW port":                            strconv.Itoa(s.Port),
			"SHOW unix_socket_directories":         s.SocketDir,
			"SHOW application_name":                "it's quoted",
			"SELECT 1; SELECT 2, NULL, 'a b'":      "2||a b",
			"SELECT g FROM generate_series(1,3) g": "1\n2\n3",
			"CREATE TABLE t1(a int)":               "",
			"SELECT rolreplication FROM pg_roles WHERE rolname='replicator'": "t",
		} {
			if got := s.SQL(t, q); got != want {
				t.Errorf("%s = %q, want %q", q, got, want)
			}
		}
		if _, err := s.SQLErr("SELECT * FROM nonexistent"); err == nil {
			t.Error("SQLErr: no error for a missing table")
		}
		if !strings.Contains(s.LogTail(5), "nonexistent") {
			t.Errorf("log tail does not show the error:\n%s", s.LogTail(5))
		}
		if os.Geteuid() == 0 {
			u, err := runAsUser()
			if err != nil {
				t.Fatal(err)
			}
			fi, err := os.Stat(s.DataDir)
			if err != nil {
				t.Fatal(err)
			}
			if st := fi.Sys().(*syscall.Stat_t); st.Uid != u.uid || fi.Mode().Perm() != 0o700 {
				t.Errorf("data dir owned by %d mode %v", st.Uid, fi.Mode().Perm())
			}
		}
		s.Pgbench(t, "-i", "-s", "1", "-q")
		if got := s.SQL(t, "SELECT count(*) FROM pgbench_branches"); got != "1" {
			t.Errorf("pgbench_branches has %s rows", got)
		}
	})
}

func TestStartScram(t *testing.T) {
	t.Parallel()
	ForEachVersion(t, func(t *testing.T, v Version) {
		s := Start(t, Options{Auth: "scram-sha-256", HBA: []string{"host all nobody 127.0.0.1/32 reject"}})
		checkReplicator(t, s)
		if got := s.SQL(t, "SELECT rolpassword LIKE 'SCRAM-SHA-256$%' FROM pg_authid WHERE rolname='replicator'"); got != "t" {
			t.Errorf("replicator password is not a SCRAM verifier")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		for _, bad := range []string{
			strings.Replace(s.ConnString(), s.Password, "wrong", 1),
			strings.Replace(s.ConnString(), s.Password, "wrong", 1) + " replication=true",
			strings.Replace(s.ConnString(), "user=replicator", "user=postgres", 1),
		} {
			conn, err := pgconn.Connect(ctx, bad)
			if err == nil {
				_ = conn.Close(ctx)
				t.Errorf("connected with %q", bad)
				continue
			}
			var pgErr *pgconn.PgError
			if !errors.As(err, &pgErr) || pgErr.Code != "28P01" {
				t.Errorf("%q: want password authentication failure, got %v", bad, err)
			}
		}
	})
}

func TestTablespace(t *testing.T) {
	t.Parallel()
	ForEachVersion(t, func(t *testing.T, v Version) {
		s := Start(t, Options{})
		loc := s.CreateTablespace(t, "ts1")
		s.SQL(t, "CREATE TABLE tst (a int) TABLESPACE ts1; INSERT INTO tst VALUES (1)")
		if got := s.SQL(t, "SELECT pg_tablespace_location(oid) FROM pg_tablespace WHERE spcname='ts1'"); got != loc {
			t.Errorf("location %q, want %q", got, loc)
		}
		entries, err := os.ReadDir(loc)
		if err != nil || len(entries) == 0 {
			t.Errorf("tablespace directory %s is empty: %v", loc, err)
		}
	})
}

func TestWritesAndRestart(t *testing.T) {
	t.Parallel()
	ForEachVersion(t, func(t *testing.T, v Version) {
		s := Start(t, Options{})
		began := time.Now()
		stop := s.StartWrites(t)
		s.WaitFor(t, "SELECT count(*) >= 10 FROM writes", "t", time.Minute)
		n := stop()
		t.Logf("%d rows in %v", n, time.Since(began))
		if again := stop(); again != n {
			t.Errorf("second stop returned %d, first %d", again, n)
		}
		if got := s.SQL(t, "SELECT count(*) FROM writes"); got != strconv.Itoa(n) {
			t.Errorf("writes has %s rows, stop reported %d", got, n)
		}

		pid := s.pid
		s.Restart(t, "immediate")
		if s.pid == pid {
			t.Errorf("postmaster pid unchanged after restart")
		}
		if got := s.SQL(t, "SELECT count(*) FROM writes"); got != strconv.Itoa(n) {
			t.Errorf("after immediate restart writes has %s rows, want %d", got, n)
		}
		s.Restart(t, "fast")
		checkReplicator(t, s)

		// Writes are still counted when started again; Stop is idempotent.
		stop2 := s.StartWrites(t)
		s.WaitFor(t, fmt.Sprintf("SELECT count(*) > %d FROM writes", n), "t", time.Minute)
		if n2 := stop2(); n2 == 0 {
			t.Error("second writer reports no rows")
		}
		s.Stop(t)
		s.Stop(t)
		if _, err := s.SQLErr("SELECT 1"); err == nil {
			t.Error("server still answers after Stop")
		}
		if pids := procsUnder(s.DataDir); len(pids) > 0 {
			t.Errorf("processes left after Stop: %v", pids)
		}
	})
}

// TestStandby takes a base backup with pg_basebackup — as root when the tests
// run as root, so that StartStandby's Chown, including of a tablespace mapped
// outside the data directory, is exercised — and starts a standby on it.
func TestStandby(t *testing.T) {
	t.Parallel()
	ForEachVersion(t, func(t *testing.T, v Version) {
		p := Start(t, Options{})
		tsLoc := p.CreateTablespace(t, "tsb")
		p.SQL(t, "CREATE TABLE r (a int) TABLESPACE tsb; INSERT INTO r VALUES (1)")
		stop := p.StartWrites(t)

		// A root-owned t.TempDir (mode 0700) as parent: StartStandby must make it
		// traversable for postgres.
		target, tsTarget := filepath.Join(t.TempDir(), "standby"), TempDir(t)
		cmd, err := v.Command(context.Background(), "pg_basebackup", "-D", target, "-R", "-X", "stream",
			"-c", "fast", "-T", tsLoc+"="+tsTarget, "-d", p.ConnString())
		if err != nil {
			t.Fatal(err)
		}
		cmd.Env = append(cmd.Env, "PGAPPNAME=testpg")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("pg_basebackup: %v\n%s", err, out)
		}
		began := time.Now()
		sb := StartStandby(t, target)
		t.Logf("StartStandby took %v", time.Since(began))
		n := stop()

		sb.WaitFor(t, "SELECT pg_is_in_recovery()", "t", time.Minute)
		sb.WaitFor(t, "SELECT count(*) FROM writes", strconv.Itoa(n), time.Minute)
		p.SQL(t, "INSERT INTO r VALUES (2)")
		sb.WaitFor(t, "SELECT sum(a) FROM r", "3", time.Minute)
		if got := p.SQL(t, "SELECT count(*) FROM pg_stat_replication WHERE state='streaming'"); got != "1" {
			t.Errorf("%s streaming standbys", got)
		}
		if got := sb.SQL(t, "SHOW listen_addresses"); got != "" {
			t.Errorf("standby listen_addresses = %q", got)
		}
		if conf, err := os.ReadFile(filepath.Join(target, "postgresql.conf")); err != nil ||
			!strings.Contains(string(conf), fmt.Sprintf("port = '%d'", p.Port)) {
			t.Errorf("standby postgresql.conf was modified: %v", err)
		}
		sb.Restart(t, "fast")
		sb.WaitFor(t, "SELECT sum(a) FROM r", "3", time.Minute)
	})
}

// TestRequire: skip without PostgreSQL, but fail when CI=true. Not parallel:
// it sets environment variables.
func TestRequire(t *testing.T) {
	defer func(f func() bool) { fastTier = f }(fastTier)
	fastTier = func() bool { return false } // the messages below are the point, -short or not
	t.Setenv("PG_BINDIR", "/nonexistent/bin")
	for _, ci := range []string{"", "true"} {
		t.Setenv("CI", ci)
		ft := &fakeTB{TB: t}
		done := make(chan struct{})
		go func() {
			defer close(done)
			Require(ft)
		}()
		<-done
		if ci == "true" && !ft.failed || ci == "" && !ft.skipped {
			t.Errorf("CI=%q: failed=%v skipped=%v", ci, ft.failed, ft.skipped)
		}
		if !strings.Contains(ft.msg, "PG_BINDIR") || !strings.Contains(ft.msg, "postgresql-15") || !strings.Contains(ft.msg, "/nonexistent/bin") {
			t.Errorf("message does not name PG_BINDIR, the package and the directory: %s", ft.msg)
		}
	}
}

// TestRequireIncremental: where PostgreSQL runs, a version before 17 skips
// saying it has no incremental backup, and 17 goes on.
func TestRequireIncremental(t *testing.T) {
	Require(t)
	for _, major := range []int{15, 17} {
		ft := &fakeTB{TB: t}
		done := make(chan struct{})
		go func() {
			defer close(done)
			RequireIncremental(ft, Version{Major: major})
		}()
		<-done
		if ft.failed || ft.skipped != (major < 17) {
			t.Errorf("PostgreSQL %d: failed=%v skipped=%v (%s), want skipped=%v", major, ft.failed, ft.skipped, ft.msg, major < 17)
		}
		if major < 17 && !strings.Contains(ft.msg, "no incremental backup") {
			t.Errorf("PostgreSQL %d: skip message %q does not say why", major, ft.msg)
		}
	}
}

// TestStopKills makes pg_ctl stop useless (no postmaster.pid): Stop must
// still end the server, by signalling the postmaster.
func TestStopKills(t *testing.T) {
	t.Parallel()
	s := Start(t, Options{})
	if err := os.Rename(filepath.Join(s.DataDir, "postmaster.pid"), filepath.Join(s.DataDir, "pid.moved")); err != nil {
		t.Fatal(err)
	}
	s.Stop(t)
	if pids := procsUnder(s.DataDir); len(pids) > 0 {
		t.Errorf("processes left after Stop: %v", pids)
	}
}

// TestPortCollision hands Start a port that is taken: it must retry. Not
// parallel: it replaces pickPort.
func TestPortCollision(t *testing.T) {
	Require(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	taken := l.Addr().(*net.TCPAddr).Port
	calls := 0
	pickPort = func(t testing.TB) int {
		calls++
		if calls == 1 {
			return taken
		}
		return freePort(t)
	}
	defer func() { pickPort = freePort }()
	s := Start(t, Options{})
	if calls != 2 || s.Port == taken {
		t.Errorf("port %d after %d picks; taken was %d", s.Port, calls, taken)
	}
	s.SQL(t, "SELECT 1")
}

func TestWaitForTimeout(t *testing.T) {
	t.Parallel()
	s := Start(t, Options{})
	ft := &fakeTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.WaitFor(ft, "SELECT 1", "2", 300*time.Millisecond)
	}()
	<-done
	if !ft.failed || !strings.Contains(ft.msg, `returns "1", want "2"`) {
		t.Errorf("WaitFor did not fail as expected: %v %q", ft.failed, ft.msg)
	}
}

// fakeTB records a Fatal instead of failing the test.
type fakeTB struct {
	testing.TB
	failed, skipped bool
	msg             string
}

func (f *fakeTB) Helper() {}
func (f *fakeTB) Fatal(args ...any) {
	f.failed, f.msg = true, fmt.Sprint(args...)
	runtime.Goexit()
}
func (f *fakeTB) Skip(args ...any) {
	f.skipped, f.msg = true, fmt.Sprint(args...)
	runtime.Goexit()
}
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.failed, f.msg = true, fmt.Sprintf(format, args...)
	runtime.Goexit()
}
func (f *fakeTB) Skipf(format string, args ...any) {
	f.skipped, f.msg = true, fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// TestHelperProcess is run in a child process by TestServerStoppedOnAbort.
func TestHelperProcess(t *testing.T) {
	mode := os.Getenv("TESTPG_HELPER")
	if mode == "" {
		t.Skip("helper process only")
	}
	s := Start(t, Options{})
	fmt.Printf("DATADIR=%s\n", s.DataDir)
	switch mode {
	case "panic":
		panic("testpg: deliberate panic")
	case "exit": // no cleanups at all: the watchdog must stop the server
		os.Exit(3)
	}
}

// TestServerStoppedOnAbort checks that a server is stopped when its test panics
// (t.Cleanup) and when the test binary exits without cleanups (watchdog).
func TestServerStoppedOnAbort(t *testing.T) {
	t.Parallel()
	Require(t)
	for _, mode := range []string{"panic", "exit"} {
		t.Run(mode, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
			cmd.Env = append(os.Environ(), "TESTPG_HELPER="+mode)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("helper succeeded:\n%s", out)
			}
			var dataDir string
			for _, line := range strings.Split(string(out), "\n") {
				if d, ok := strings.CutPrefix(line, "DATADIR="); ok {
					dataDir = d
				}
			}
			if dataDir == "" {
				t.Fatalf("no DATADIR in helper output:\n%s", out)
			}
			base := filepath.Dir(dataDir)
			t.Cleanup(func() { _ = os.RemoveAll(base) })
			deadline := time.Now().Add(time.Minute)
			for len(procsUnder(base)) > 0 {
				if time.Now().After(deadline) {
					t.Fatalf("server processes %v still running after %s helper:\n%s", procsUnder(base), mode, out)
				}
				time.Sleep(100 * time.Millisecond)
			}
			if mode == "panic" {
				if _, err := os.Stat(dataDir); err == nil {
					t.Errorf("data directory %s not removed after panic", dataDir)
				}
			}
		})
	}
}

func TestParseVersions(t *testing.T) {
	for sel, want := range map[string]string{
		"":             "pg15 pg17 pg18",
		"18, 15":       "pg15 pg18",
		"pg17,17":      "pg17",
		"15":           "pg15",
		" 15 , 18 ,17": "pg15 pg17 pg18",
	} {
		vs, err := parseVersions(sel)
		if err != nil {
			t.Errorf("%q: %v", sel, err)
			continue
		}
		var names []string
		for _, v := range vs {
			names = append(names, v.Name())
		}
		if got := strings.Join(names, " "); got != want {
			t.Errorf("%q: %s, want %s", sel, got, want)
		}
	}
	for _, bad := range []string{"16", "15,x", "14"} {
		if _, err := parseVersions(bad); err == nil || !strings.Contains(err.Error(), "not one of 15, 17, 18") {
			t.Errorf("%q: want an error naming 15, 17, 18, got %v", bad, err)
		}
	}
}

// TestVersionUnavailable: a version that cannot run skips with its reason,
// and fails under CI=true. Not parallel: it sets CI.
func TestVersionUnavailable(t *testing.T) {
	defer func(f func() bool) { fastTier = f }(fastTier)
	fastTier = func() bool { return false } // the messages below are the point, -short or not
	v := Version{Major: 17, reason: "no PostgreSQL 17 rootfs at /x: build it"}
	for _, ci := range []string{"", "true"} {
		t.Setenv("CI", ci)
		ft := &fakeTB{TB: t}
		done := make(chan struct{})
		go func() {
			defer close(done)
			v.Skip(ft)
		}()
		<-done
		if ci == "true" && !ft.failed || ci == "" && !ft.skipped {
			t.Errorf("CI=%q: failed=%v skipped=%v", ci, ft.failed, ft.skipped)
		}
		if !strings.Contains(ft.msg, v.reason) {
			t.Errorf("message does not give the reason: %s", ft.msg)
		}
	}
}

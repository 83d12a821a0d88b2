package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pg-standby/pg-standby/internal/instance"
	"github.com/pg-standby/pg-standby/internal/oracle"
	"github.com/pg-standby/pg-standby/internal/pgconf"
	"github.com/pg-standby/pg-standby/internal/testpg"
)

// runAsRoot runs pg-standby as this process's user (root in CI), as an
// admin runs resync on a Debian instance.
func runAsRoot(t *testing.T, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), string(out)
	} else if err != nil {
		t.Fatalf("pg-standby %v: %v", args, err)
	}
	return 0, string(out)
}

// makeStandby makes a standby of p with pg-standby init and run, and starts it.
func makeStandby(t *testing.T, p *testpg.Server) (string, *testpg.Server) {
	t.Helper()
	dir := initInstance(t, p)
	// Replication over the socket too: the promotion test streams from it.
	if err := os.WriteFile(filepath.Join(dir, "pg_hba.conf"), []byte("local all all trust\nlocal replication all trust\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out := runWorker(t, "run", "--pgdata", dir); code != 0 {
		t.Fatalf("run: status %d\n%s", code, out)
	}
	return dir, testpg.StartStandby(t, dir)
}

// readRecord reads the resync record resync left in dir.
func readRecord(t *testing.T, dir string) *instance.Resync {
	t.Helper()
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	r, ok, err := instance.ReadResync(root)
	if err != nil || !ok {
		t.Fatalf("resync record in %s: %v (present %v)", dir, err, ok)
	}
	return r
}

// checkResynced: resync left both files, owned by the data directory's owner,
// and a record equal to what pg_control said before.
func checkResynced(t *testing.T, dir string, before *instance.Control, mode instance.ResyncMode) {
	t.Helper()
	var dst syscall.Stat_t
	syscall.Stat(dir, &dst)
	for _, name := range []string{instance.BackupSignal, instance.ResyncFile} {
		var st syscall.Stat_t
		if err := syscall.Lstat(filepath.Join(dir, name), &st); err != nil {
			t.Fatalf("after resync: %v", err)
		}
		if st.Uid != dst.Uid || st.Mode&0o077 != 0 {
			t.Errorf("%s: uid %d mode %o; want the data directory's owner %d, no group/other access", name, st.Uid, st.Mode&0o777, dst.Uid)
		}
	}
	r := readRecord(t, dir)
	if r.Mode != mode || r.Prior != before.Redo || r.PriorTLI != before.TLI || r.SystemID != before.SystemID || r.Checkpoint != before.Checkpoint {
		t.Errorf("record %+v; want mode %s, prior %s on timeline %d (pg_controldata's REDO location), system %d", *r, mode, before.Redo, before.TLI, before.SystemID)
	}
}

// controlRedo is pg_controldata's "Latest checkpoint's REDO location": the oracle.
func controlRedo(t *testing.T, v testpg.Version, dir string) string {
	t.Helper()
	out, err := v.Output(context.Background(), "pg_controldata", dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(out, "\n") {
		if k, val, ok := strings.Cut(line, ":"); ok && k == "Latest checkpoint's REDO location" {
			return strings.TrimSpace(val)
		}
	}
	t.Fatalf("pg_controldata: no REDO location\n%s", out)
	return ""
}

// undoResync is what an admin does to cancel a resync before any run.
func undoResync(t *testing.T, dir string) {
	t.Helper()
	for _, name := range []string{instance.BackupSignal, instance.ResyncFile} {
		if err := os.Remove(filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
}

// TestResync: a pg-standby standby, stopped, rows written on the primary:
// refused while it runs; block mode refused on 15 and with summarize_wal
// off, accepted on 17/18 with it on, recording pg_control's REDO location;
// resync --full, then run: a full backup over the directory, verified, and
// the standby starts with the rows.
func TestResync(t *testing.T) {
	testpg.ForEachVersion(t, func(t *testing.T, v testpg.Version) {
		testpg.Require(t)
		conf := map[string]string{}
		if v.Major >= 17 {
			conf["summarize_wal"] = "on"
		}
		p := testpg.Start(t, testpg.Options{Conf: conf})
		p.Pgbench(t, "-i", "-s", "2", "-q")
		dir, s := makeStandby(t, p)

		code, out := runAsRoot(t, "resync", "--pgdata", dir)
		if code != exitRefused || !strings.Contains(out, "stop that server first") {
			t.Fatalf("resync of a running standby: status %d\n%s\nwant %d, refused with the advice to stop it", code, out, exitRefused)
		}
		s.Stop(t)
		p.SQL(t, "CREATE TABLE after_stop AS SELECT g FROM generate_series(1, 5000) g; UPDATE pgbench_accounts SET abalance = 7 WHERE aid % 10 = 0")
		before, err := instance.ReadControl(dir)
		if err != nil {
			t.Fatal(err)
		}
		if got := controlRedo(t, v, dir); got != before.Redo.String() {
			t.Fatalf("REDO location: ReadControl %s, pg_controldata %s", before.Redo, got)
		}

		if v.Major < 17 {
			code, out = runAsRoot(t, "resync", "--pgdata", dir)
			if code != exitConfig || !strings.Contains(out, "older than 17") || !strings.Contains(out, "resync --full") {
				t.Fatalf("block resync against PostgreSQL %d: status %d\n%s\nwant %d, refused, offering --full", v.Major, code, out, exitConfig)
			}
		} else {
			p.SQL(t, "ALTER SYSTEM SET summarize_wal = off")
			p.SQL(t, "SELECT pg_reload_conf()")
			p.WaitFor(t, "SHOW summarize_wal", "off", time.Minute)
			code, out = runAsRoot(t, "resync", "--pgdata", dir)
			if code != exitConfig || !strings.Contains(out, "summarize_wal is off") || !strings.Contains(out, "resync --full") {
				t.Fatalf("block resync with summarize_wal off: status %d\n%s\nwant %d, refused, offering --full", code, out, exitConfig)
			}
			p.SQL(t, "ALTER SYSTEM SET summarize_wal = on")
			p.SQL(t, "SELECT pg_reload_conf()")
			p.WaitFor(t, "SHOW summarize_wal", "on", time.Minute)
			code, out = runAsRoot(t, "resync", "--pgdata", dir)
			if code != 0 || !strings.Contains(out, "the next run receives only the blocks changed since then") {
				t.Fatalf("block resync with summarize_wal on: status %d\n%s\nwant 0, saying the next run receives changed blocks", code, out)
			}
			t.Logf("block resync: %s", out)
			checkResynced(t, dir, before, instance.ResyncBlock)
			code, out = runAsRoot(t, "resync", "--pgdata", dir)
			if code != exitRefused || !strings.Contains(out, "already a pending instance") {
				t.Fatalf("second resync: status %d\n%s\nwant %d, already pending", code, out, exitRefused)
			}
			undoResync(t, dir)
		}

		code, out = runAsRoot(t, "resync", "--full", "--pgdata", dir)
		if code != 0 {
			t.Fatalf("resync --full: status %d\n%s", code, out)
		}
		checkResynced(t, dir, before, instance.ResyncFull)
		code, out = runWorker(t, "run", "--pgdata", dir)
		if code != 0 {
			t.Fatalf("run after resync --full: status %d\n%s", code, out)
		}
		t.Logf("run after resync --full: %s", lastLine(out))
		oracle.VerifyBackup(t, dir)
		s2 := v.StartStandby(t, dir)
		if got := s2.SQL(t, "SELECT count(*) FROM after_stop"); got != "5000" {
			t.Errorf("rows written while the standby was stopped: %s, want 5000", got)
		}
		p.SQL(t, "INSERT INTO after_stop VALUES (0)")
		s2.WaitFor(t, "SELECT count(*) FROM after_stop", "5001", time.Minute)
	})
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// setConninfo points the instance at another server: a later line wins.
func setConninfo(t *testing.T, confFile, conninfo string) {
	t.Helper()
	f, err := os.OpenFile(confFile, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fmt.Fprintf(f, "\nprimary_conninfo = %s\n", pgconf.Quote(conninfo))
}

// TestResyncRefused: no pg_control, another system, a diverged former
// primary; each refused with its reason and advice, nothing written.
func TestResyncRefused(t *testing.T) {
	testpg.ForEachVersion(t, func(t *testing.T, v testpg.Version) {
		testpg.Require(t)
		p := testpg.Start(t, testpg.Options{})

		minimal := initInstance(t, p)
		code, out := runAsRoot(t, "resync", "--full", "--pgdata", minimal)
		if code != exitRefused || !strings.Contains(out, "already a pending instance") {
			t.Errorf("resync of a minimal instance: status %d\n%s\nwant %d, already pending", code, out, exitRefused)
		}
		os.Remove(filepath.Join(minimal, instance.BackupSignal))
		code, out = runAsRoot(t, "resync", "--full", "--pgdata", minimal)
		if code != exitRefused || !strings.Contains(out, "has no global/pg_control") || !strings.Contains(out, "pg-standby init") {
			t.Errorf("resync without pg_control: status %d\n%s\nwant %d, refused, pointing at init", code, out, exitRefused)
		}

		dir, s := makeStandby(t, p)
		p.SQL(t, "CREATE TABLE t(x int)")
		other := testpg.Start(t, testpg.Options{})
		s.Stop(t)
		if v.Major >= 17 {
			// summarize_wal enabled after the standby stopped and the
			// WAL from its prior start was removed: the summaries start
			// after its prior start.
			for range 3 {
				p.SQL(t, "INSERT INTO t VALUES (1)")
				p.SQL(t, "SELECT pg_switch_wal()")
				p.SQL(t, "CHECKPOINT")
			}
			p.SQL(t, "ALTER SYSTEM SET summarize_wal = on")
			p.SQL(t, "SELECT pg_reload_conf()")
			p.SQL(t, "INSERT INTO t VALUES (1)")
			p.SQL(t, "CHECKPOINT")
			p.WaitFor(t, "SELECT count(*) > 0 FROM pg_available_wal_summaries()", "t", time.Minute)
			code, out = runAsRoot(t, "resync", "--pgdata", dir)
			if code != exitConfig || !strings.Contains(out, "WAL summaries on timeline 1 start at") || !strings.Contains(out, "resync --full") {
				t.Errorf("block resync, summaries younger than the standby: status %d\n%s\nwant %d, refused, offering --full; summaries:\n%s", code, out, exitConfig,
					p.SQL(t, "SELECT tli, start_lsn, end_lsn FROM pg_available_wal_summaries()"))
			}
			assertUntouched(t, dir)
		}
		setConninfo(t, filepath.Join(dir, "postgresql.conf"), other.ConnString())
		code, out = runAsRoot(t, "resync", "--full", "--pgdata", dir)
		if code != exitRefused || !strings.Contains(out, "system identifier") || !strings.Contains(out, "another cluster") {
			t.Errorf("resync against another system: status %d\n%s\nwant %d, refused for the system identifier", code, out, exitRefused)
		}
		assertUntouched(t, dir)

		// The standby is promoted; the old primary goes on writing, then
		// stops: resync of the old primary against the new one is pg_rewind's job.
		setConninfo(t, filepath.Join(dir, "postgresql.conf"), p.ConnString())
		s = testpg.StartStandby(t, dir)
		s.SQL(t, "SELECT pg_promote()")
		s.WaitFor(t, "SELECT pg_is_in_recovery()", "f", time.Minute)
		s.SQL(t, "INSERT INTO t VALUES (1)")
		p.SQL(t, "INSERT INTO t SELECT generate_series(1, 1000)")
		p.Stop(t)
		setConninfo(t, filepath.Join(p.DataDir, "postgresql.conf"), fmt.Sprintf("host=%s port=%d user=postgres", s.SocketDir, s.Port))
		code, out = runAsRoot(t, "resync", "--pgdata", p.DataDir)
		if code != exitRefused || !strings.Contains(out, "pg_rewind") || !strings.Contains(out, "switched from timeline 1") {
			t.Errorf("resync of a diverged former primary: status %d\n%s\nwant %d, refused with pg_rewind advice", code, out, exitRefused)
		}
		assertUntouched(t, p.DataDir)
	})
}

func assertUntouched(t *testing.T, dir string) {
	t.Helper()
	for _, name := range []string{instance.BackupSignal, instance.ResyncFile} {
		if _, err := os.Lstat(filepath.Join(dir, name)); err == nil {
			t.Errorf("a refused resync left %s in %s", name, dir)
		}
	}
}

package backup_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/pg-standby/pg-standby/internal/backup"
	"github.com/pg-standby/pg-standby/internal/instance"
	"github.com/pg-standby/pg-standby/internal/progress"
	"github.com/pg-standby/pg-standby/internal/testpg"
)

// startPgbench runs pgbench against p for up to d; stop ends it early.
func startPgbench(t *testing.T, p *testpg.Server, d time.Duration) (stop func()) {
	t.Helper()
	args := []string{"-h", p.SocketDir, "-p", itoa(p.Port), "-n", "-c", "2", "-T", itoa(int(d.Seconds())), "postgres"}
	// As postgres, in pgbench's own process group (testpg.PGCommand).
	cmd, err := testpg.VersionOf(t).PGCommand(context.Background(), "pgbench", append([]string{"-U", "postgres"}, args...)...)
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start pgbench: %v", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	stop = func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		<-done
	}
	t.Cleanup(stop)
	return stop
}

func itoa(n int) string { return strconv.Itoa(n) }

// TestBackupBecomesReplicatingStandby is the engine's acceptance: a primary
// with data, two tablespaces, an unlogged table, planted files the server
// must exclude and a slot, under write load during the whole backup.
func TestBackupBecomesReplicatingStandby(t *testing.T) {
	testpg.ForEachVersion(t, func(t *testing.T, v testpg.Version) {
		testpg.Require(t)
		p := testpg.Start(t, testpg.Options{})
		p.Pgbench(t, "-i", "-s", "3", "-q")
		ts1 := p.CreateTablespace(t, "ts1")
		ts2 := p.CreateTablespace(t, "ts2")
		p.SQL(t, "CREATE TABLE in_ts1 TABLESPACE ts1 AS SELECT g FROM generate_series(1, 5000) g")
		p.SQL(t, "CREATE TABLE in_ts2 TABLESPACE ts2 AS SELECT 'two' AS x")
		p.SQL(t, "CREATE UNLOGGED TABLE ul AS SELECT 1 AS x")
		p.SQL(t, "SELECT pg_create_physical_replication_slot('kept_on_primary', true)")
		ulPath := p.SQL(t, "SELECT pg_relation_filepath('ul')")
		dbOid := p.SQL(t, "SELECT oid FROM pg_database WHERE datname = 'postgres'")
		tempRel := filepath.Join("base", dbOid, "t3_999999")
		tmpFile := filepath.Join("base", "pgsql_tmp", "pgsql_tmp4242.0")
		os.MkdirAll(filepath.Join(p.DataDir, "base", "pgsql_tmp"), 0o700)
		writeFile(t, filepath.Join(p.DataDir, tempRel), "temp relation")
		writeFile(t, filepath.Join(p.DataDir, tmpFile), "sort spill")
		testpg.Chown(t, filepath.Join(p.DataDir, "base"))

		stopLoad := startPgbench(t, p, 5*time.Minute)
		stopWrites := p.StartWrites(t)
		dir := newInstance(t, p.ConnString(), "hot_standby = on")
		confBefore, _ := os.ReadFile(filepath.Join(dir, "postgresql.conf"))
		m1, m2 := newLocation(t), newLocation(t)
		res, err := run(t, backup.Options{DataDir: dir, TablespaceMapping: map[string]string{ts1: m1, ts2: m2}})
		if err != nil {
			t.Fatalf("backup: %v", err)
		}
		stopLoad()
		t.Logf("backup: %d files, %d bytes, %s..%s", res.Files, res.Bytes, res.Start, res.End)

		verifyBackup(t, dir)
		if confAfter, _ := os.ReadFile(filepath.Join(dir, "postgresql.conf")); string(confAfter) != string(confBefore) {
			t.Errorf("the instance's postgresql.conf changed:\n%s\nwant\n%s", confAfter, confBefore)
		}
		for _, c := range []struct {
			path string
			want bool
		}{
			{ulPath, false}, {ulPath + "_init", true}, {tempRel, false}, {tmpFile, false},
			{"pg_replslot/kept_on_primary", false}, {"pg_replslot", true},
			{"basebackup.signal", false}, {"standby.signal", true}, {"global/pg_control", true},
			{"global/pg_control.pg-standby", false}, {"backup_label", true}, {"backup_manifest", true},
		} {
			if got := exists(filepath.Join(dir, c.path)); got != c.want {
				t.Errorf("%s exists = %v, want %v", c.path, got, c.want)
			}
		}
		for oidName, want := range map[string]string{"ts1": m1, "ts2": m2} {
			oid := p.SQL(t, "SELECT oid FROM pg_tablespace WHERE spcname = '"+oidName+"'")
			if got, err := os.Readlink(filepath.Join(dir, "pg_tblspc", oid)); err != nil || got != want {
				t.Errorf("pg_tblspc/%s -> %q (%v), want %q", oid, got, err, want)
			}
		}

		// Nothing to do on a finished standby, also while it runs.
		if _, err := run(t, backup.Options{DataDir: dir}); !errors.Is(err, backup.ErrAlreadyStandby) {
			t.Errorf("second run: %v, want ErrAlreadyStandby", err)
		}
		n := stopWrites()
		p.SQL(t, "CREATE TABLE after_backup AS SELECT 'marker' AS x")
		s := testpg.StartStandby(t, dir)
		s.WaitFor(t, "SELECT x FROM after_backup", "marker", time.Minute)
		if got := s.SQL(t, "SELECT pg_is_in_recovery()"); got != "t" {
			t.Errorf("standby pg_is_in_recovery = %s", got)
		}
		if got := s.SQL(t, "SELECT count(*) FROM in_ts1"); got != "5000" {
			t.Errorf("in_ts1 on the standby has %s rows, want 5000", got)
		}
		if got := s.SQL(t, "SELECT x FROM in_ts2"); got != "two" {
			t.Errorf("in_ts2 on the standby = %q", got)
		}
		s.WaitFor(t, "SELECT count(*) >= "+itoa(n)+" FROM writes", "t", time.Minute)
		if _, err := run(t, backup.Options{DataDir: dir}); !errors.Is(err, backup.ErrAlreadyStandby) {
			t.Errorf("run while the standby runs: %v, want ErrAlreadyStandby", err)
		}
		if got := p.SQL(t, "SELECT count(*) FROM pg_replication_slots WHERE temporary"); got != "0" {
			t.Errorf("%s temporary slots left on the primary", got)
		}
	})
}

// TestRetryOverwritesHalfWrittenInstance interrupts a backup mid-copy and
// reruns it on the same directory without any wipe.
func TestRetryOverwritesHalfWrittenInstance(t *testing.T) {
	testpg.ForEachVersion(t, func(t *testing.T, v testpg.Version) {
		testpg.Require(t)
		p := testpg.Start(t, testpg.Options{Auth: "scram-sha-256"})
		p.Pgbench(t, "-i", "-s", "10", "-q")
		dir := newInstance(t, p.ConnString())

		tracker := progress.NewTracker()
		ctx, cancel := context.WithCancel(context.Background())
		errc := make(chan error, 1)
		go func() {
			_, err := backup.Run(ctx, backup.Options{DataDir: dir, Checkpoint: "fast", Progress: tracker, Log: testLogger(t)})
			errc <- err
		}()
		for tracker.Written.Load() < 40<<20 {
			select {
			case err := <-errc:
				t.Fatalf("backup ended before it could be interrupted: %v", err)
			case <-time.After(time.Millisecond):
			}
		}
		cancel()
		if err := <-errc; !errors.Is(err, context.Canceled) {
			t.Fatalf("interrupted backup: %v, want context.Canceled", err)
		}
		if exists(filepath.Join(dir, "global/pg_control")) || !exists(filepath.Join(dir, "basebackup.signal")) {
			t.Fatalf("interrupted instance: pg_control visible or basebackup.signal gone")
		}
		if root, err := os.OpenRoot(dir); err == nil {
			pend, err := instance.ReadPending(root)
			root.Close()
			if err != nil || pend.Attempts != 1 || pend.LastError != backup.Stopped || !pend.Written || pend.LastFailure.IsZero() {
				t.Errorf("recorded state after the interruption: %+v, %v; want attempt 1, written, stopped", pend, err)
			}
		}
		stale := filepath.Join(dir, "base", "1", "999999")
		os.MkdirAll(filepath.Dir(stale), 0o700)
		writeFile(t, stale, "left by an earlier attempt")
		p.SQL(t, "UPDATE pgbench_branches SET bbalance = bbalance + 1")

		res, err := run(t, backup.Options{DataDir: dir})
		if err != nil {
			t.Fatalf("retry: %v", err)
		}
		t.Logf("retry: %d bytes in files, %d written, %d already there", res.Bytes, res.Written, res.Unchanged)
		if res.Unchanged == 0 {
			t.Errorf("retry rewrote everything: no bytes found unchanged")
		}
		if exists(stale) {
			t.Errorf("stale file %s survived the retry", stale)
		}
		verifyBackup(t, dir)
		p.SQL(t, "CREATE TABLE after_retry AS SELECT 1 AS x")
		s := testpg.StartStandby(t, dir)
		s.WaitFor(t, "SELECT x FROM after_retry", "1", time.Minute)
	})
}

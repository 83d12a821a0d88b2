package main

import (
	"strings"
	"testing"
	"time"

	"github.com/pg-standby/pg-standby/internal/oracle"
	"github.com/pg-standby/pg-standby/internal/testpg"
)

// TestResyncAfterWALRemoved is the case resync is for: a standby made by
// pg-standby is stopped, pgbench writes on the primary, and checkpoints
// remove the WAL the standby needs (no slot, wal_keep_size 0). Started, it
// cannot catch up ("has already been removed"). resync and run bring it up
// to date by changed blocks, receiving a small share of the directory, and
// the oracles pass.
func TestResyncAfterWALRemoved(t *testing.T) {
	testpg.ForEachVersion(t, func(t *testing.T, v testpg.Version) {
		p := incrementalPrimary(t, v, map[string]string{"wal_keep_size": "0", "min_wal_size": "32MB", "max_wal_size": "64MB"})
		p.Pgbench(t, "-i", "-s", "5", "-q")
		dir, s := makeStandby(t, p)
		p.SQL(t, "CREATE TABLE wg_before AS SELECT 1 AS x")
		s.WaitFor(t, "SELECT x FROM wg_before", "1", time.Minute)
		needed := p.SQL(t, "SELECT pg_walfile_name('"+s.SQL(t, "SELECT pg_last_wal_replay_lsn()")+"')")
		s.Stop(t)

		start := time.Now()
		p.Pgbench(t, "-n", "-t", "500", "-c", "2")
		t.Logf("pgbench: 1000 transactions in %v", time.Since(start))
		gone := "SELECT count(*) FROM pg_ls_waldir() WHERE name <= '" + needed + "'"
		checkpoints := 0
		for ; p.SQL(t, gone) != "0"; checkpoints++ {
			if checkpoints == 10 {
				t.Fatalf("after %d checkpoints the primary still has WAL segment %s", checkpoints, needed)
			}
			p.SQL(t, "INSERT INTO wg_before VALUES (2); SELECT pg_switch_wal(); CHECKPOINT")
		}
		t.Logf("WAL segment %s (the standby's replay position) gone from the primary after %d checkpoints", needed, checkpoints)

		// Started, the standby asks for WAL the primary no longer has.
		s2 := v.StartStandby(t, dir)
		p.SQL(t, "CREATE TABLE wg_marker AS SELECT 1 AS x")
		deadline := time.Now().Add(time.Minute)
		for !strings.Contains(s2.LogTail(200), "has already been removed") {
			if time.Now().After(deadline) {
				t.Fatalf("the standby's log does not say its WAL was removed:\n%s", s2.LogTail(40))
			}
			time.Sleep(200 * time.Millisecond)
		}
		for _, l := range strings.Split(s2.LogTail(200), "\n") {
			if strings.Contains(l, "has already been removed") {
				t.Logf("the standby cannot catch up: %s", l)
				break
			}
		}
		if n := s2.SQL(t, "SELECT count(*) FROM pg_class WHERE relname = 'wg_marker'"); n != "0" {
			t.Fatalf("the standby caught up (wg_marker exists): the WAL was not gone")
		}
		if n := p.SQL(t, "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'"); n != "0" {
			t.Fatalf("%s standbys streaming from the primary; want none", n)
		}
		s2.Stop(t)

		if code, out := runAsRoot(t, "resync", "--pgdata", dir); code != 0 {
			t.Fatalf("resync: status %d\n%s", code, out)
		}
		start = time.Now()
		code, out := runWorker(t, "run", "--pgdata", dir)
		if code != 0 {
			t.Fatalf("run after resync: status %d\n%s", code, out)
		}
		received, reused := resumedBytes(t, out)
		share := float64(received) / float64(received+reused)
		t.Logf("PostgreSQL %d: resync after pgbench and WAL removal received %d bytes, reused %d (%.1f %% received) in %v",
			v.Major, received, reused, 100*share, time.Since(start))
		if share > 0.25 {
			t.Errorf("received %d bytes, reused %d: want a small share received", received, reused)
		}
		oracle.Standby(t, p, dir, "pgbench_accounts", "pgbench_branches", "pgbench_tellers", "pgbench_history", "wg_before", "wg_marker")
	})
}

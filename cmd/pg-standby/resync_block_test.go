package main

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pg-standby/pg-standby/internal/oracle"
	"github.com/pg-standby/pg-standby/internal/testpg"
)

// sums is a content check: per table, its row count and a hash sum.
func sums(t *testing.T, s *testpg.Server, tables ...string) string {
	t.Helper()
	var b strings.Builder
	for _, tb := range tables {
		fmt.Fprintf(&b, "%s %s\n", tb, s.SQL(t, fmt.Sprintf("SELECT count(*) || ' ' || coalesce(sum(hashtext(x::text)::bigint), 0) FROM %s x", tb)))
	}
	return b.String()
}

var reusedRE = regexp.MustCompile(`bytes_received=(\d+) bytes_reused=(\d+)`)

// TestResyncByChangedBlocks: a stopped standby, writes on the primary
// (updates, a VACUUM truncation, a new table), resync, run: the run receives
// only changed blocks of the standby's relation files, pg_verifybackup
// accepts the result, and the standby has the primary's content and replays
// a later row.
func TestResyncByChangedBlocks(t *testing.T) {
	testpg.ForEachVersion(t, func(t *testing.T, v testpg.Version) {
		testpg.Require(t)
		if v.Major < 17 {
			t.Skipf("PostgreSQL %d has no incremental backup", v.Major)
		}
		p := testpg.Start(t, testpg.Options{Conf: map[string]string{"summarize_wal": "on", "autovacuum": "off"}})
		p.Pgbench(t, "-i", "-s", "5", "-q")
		p.SQL(t, "CREATE TABLE shrinks AS SELECT g, repeat('s', 200) AS pad FROM generate_series(1, 60000) g")
		dir, s := makeStandby(t, p)
		s.Stop(t)
		p.SQL(t, "UPDATE pgbench_accounts SET abalance = 7 WHERE aid % 5000 = 0")
		p.SQL(t, "DELETE FROM shrinks WHERE g > 20000")
		p.SQL(t, "VACUUM shrinks")
		p.SQL(t, "CREATE TABLE after_stop AS SELECT g FROM generate_series(1, 5000) g")

		if code, out := runAsRoot(t, "resync", "--pgdata", dir); code != 0 {
			t.Fatalf("resync: status %d\n%s", code, out)
		}
		start := time.Now()
		code, out := runWorker(t, "run", "--pgdata", dir)
		if code != 0 {
			t.Fatalf("run after resync: status %d\n%s", code, out)
		}
		m := reusedRE.FindStringSubmatch(out)
		if !strings.Contains(out, "resuming: ") || m == nil {
			t.Fatalf("run after resync did not resume by changed blocks:\n%s", out)
		}
		received, _ := strconv.ParseInt(m[1], 10, 64)
		reused, _ := strconv.ParseInt(m[2], 10, 64)
		t.Logf("PostgreSQL %d: resync received %d bytes, reused %d (%.0f %% received) in %v", v.Major, received, reused,
			100*float64(received)/float64(received+reused), time.Since(start))
		if reused < 2*received {
			t.Errorf("received %d bytes, reused %d: want most of the directory reused", received, reused)
		}
		oracle.VerifyBackup(t, dir)
		want := sums(t, p, "pgbench_accounts", "pgbench_branches", "shrinks", "after_stop")
		s2 := v.StartStandby(t, dir)
		p.SQL(t, "INSERT INTO after_stop VALUES (0)")
		s2.WaitFor(t, "SELECT count(*) FROM after_stop", "5001", time.Minute)
		s2.SQL(t, "SELECT 1")
		p.SQL(t, "DELETE FROM after_stop WHERE g = 0")
		s2.WaitFor(t, "SELECT count(*) FROM after_stop", "5000", time.Minute)
		if got := sums(t, s2, "pgbench_accounts", "pgbench_branches", "shrinks", "after_stop"); got != want {
			t.Errorf("content differs from the primary's:\nstandby:\n%s\nprimary:\n%s", got, want)
		}
	})
}

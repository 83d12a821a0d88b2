package main

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pg-standby/pg-standby/internal/busapi"
	"github.com/pg-standby/pg-standby/internal/oracle"
	"github.com/pg-standby/pg-standby/internal/testbus"
	"github.com/pg-standby/pg-standby/internal/testpg"
)

var (
	reusedRE   = regexp.MustCompile(`bytes_received=(\d+) bytes_reused=(\d+)`)
	resumingRE = regexp.MustCompile(`resuming: (\d+) of (\d+) files kept`)
	rebuiltRE  = regexp.MustCompile(`reconstructed=(\d+) changed=(\d+) in_tablespaces=(\d+) listed_sent_whole=(\d+)`)
)

// incrementalPrimary starts a primary that can take incremental backups
// (summarize_wal, no autovacuum to change blocks behind the test's back),
// with conf added; before PostgreSQL 17 it skips.
func incrementalPrimary(t *testing.T, v testpg.Version, conf map[string]string) *testpg.Server {
	t.Helper()
	testpg.RequireIncremental(t, v)
	c := map[string]string{"summarize_wal": "on", "autovacuum": "off"}
	for k, val := range conf {
		c[k] = val
	}
	return testpg.Start(t, testpg.Options{Conf: c})
}

// loadTables makes n tables prefix_0… of about 14 MB each and returns their names.
func loadTables(t *testing.T, p *testpg.Server, prefix string, n int) []string {
	t.Helper()
	var tables []string
	for i := range n {
		tables = append(tables, fmt.Sprintf("%s_%d", prefix, i))
		p.SQL(t, fmt.Sprintf("CREATE TABLE %s_%d AS SELECT g, repeat(md5(g::text), 2) AS pad FROM generate_series(1, 150000) g", prefix, i))
	}
	return tables
}

// resumedBytes are the bytes a run that resumed by changed blocks received
// and reused, from its log; a run that did not resume fails the test, and so
// does a file count of its end line that does not fit (resumedFiles).
func resumedBytes(t *testing.T, out string) (received, reused int64) {
	t.Helper()
	m := reusedRE.FindStringSubmatch(out)
	if !strings.Contains(out, "resuming: ") || m == nil {
		t.Fatalf("the run did not resume by changed blocks:\n%s", out)
	}
	received, _ = strconv.ParseInt(m[1], 10, 64)
	reused, _ = strconv.ParseInt(m[2], 10, 64)
	resumedFiles(t, out)
	return received, reused
}

// resumed are the file counts of a resume by changed blocks: listed in the
// journal at its start ("resuming: L of N files kept"), and from its end line
// reconstructed, changed by the increment, and listed but sent whole.
type resumed struct{ listed, reconstructed, changed, sentWhole int }

// resumedFiles reads the counts of the first resume in out and holds them
// to what must be: a changed file was reconstructed, and a reconstructed or
// sent-whole file was listed.
func resumedFiles(t *testing.T, out string) resumed {
	t.Helper()
	end := rebuiltRE.FindStringSubmatchIndex(out)
	if end == nil {
		t.Fatalf("no reconstructed=, changed=, in_tablespaces=, listed_sent_whole= in the resume's end line:\n%s", out)
	}
	starts := resumingRE.FindAllStringSubmatch(out[:end[0]], -1)
	if starts == nil {
		t.Fatalf("no \"resuming: L of N files kept\" before the resume's end line:\n%s", out)
	}
	num := func(s string) int { n, _ := strconv.Atoi(s); return n }
	at := func(i int) int { return num(out[end[2*i]:end[2*i+1]]) }
	r := resumed{listed: num(starts[len(starts)-1][1]), reconstructed: at(1), changed: at(2), sentWhole: at(4)}
	if r.changed > r.reconstructed || r.reconstructed+r.sentWhole > r.listed || r.sentWhole < 0 {
		t.Errorf("resume counts %+v: want changed <= reconstructed and reconstructed + sent whole <= listed", r)
	}
	return r
}

// TestResyncByChangedBlocks: a stopped standby, writes on the primary
// (updates, a VACUUM truncation, a new table), resync, run: the run receives
// only changed blocks of the standby's relation files, pg_verifybackup
// accepts the result, and the standby has the primary's content and replays
// a later row.
func TestResyncByChangedBlocks(t *testing.T) {
	testpg.ForEachVersion(t, func(t *testing.T, v testpg.Version) {
		p := incrementalPrimary(t, v, nil)
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
		received, reused := resumedBytes(t, out)
		t.Logf("PostgreSQL %d: resync received %d bytes, reused %d (%.0f %% received) in %v", v.Major, received, reused,
			100*float64(received)/float64(received+reused), time.Since(start))
		// At least pgbench_accounts (updated) and shrinks (cut by VACUUM)
		// changed; most of the standby's relation files did not.
		r := resumedFiles(t, out)
		t.Logf("PostgreSQL %d: files listed %d, reconstructed %d, changed %d, listed but sent whole %d", v.Major, r.listed, r.reconstructed, r.changed, r.sentWhole)
		if r.changed < 2 || r.changed >= r.reconstructed {
			t.Errorf("resume counts %+v: want at least 2 files changed (pgbench_accounts, shrinks) and fewer than reconstructed", r)
		}
		if reused < 2*received {
			t.Errorf("received %d bytes, reused %d: want most of the directory reused", received, reused)
		}
		oracle.VerifyBackup(t, dir)
		want := oracle.TableSums(t, p, "pgbench_accounts", "pgbench_branches", "shrinks", "after_stop")
		s2 := v.StartStandby(t, dir)
		p.SQL(t, "INSERT INTO after_stop VALUES (0)")
		s2.WaitFor(t, "SELECT count(*) FROM after_stop", "5001", time.Minute)
		s2.SQL(t, "SELECT 1")
		p.SQL(t, "DELETE FROM after_stop WHERE g = 0")
		s2.WaitFor(t, "SELECT count(*) FROM after_stop", "5000", time.Minute)
		if got := oracle.TableSums(t, s2, "pgbench_accounts", "pgbench_branches", "shrinks", "after_stop"); got != want {
			t.Errorf("content differs from the primary's:\nstandby:\n%s\nprimary:\n%s", got, want)
		}
	})
}

// TestKillResume: the worker is killed (SIGKILL) during the copy; the
// rerun resumes by changed blocks, says so in STATUS=, receives clearly
// less than the estimate, and the result verifies and replicates.
func TestKillResume(t *testing.T) {
	waiting(t)
	testpg.ForEachVersion(t, func(t *testing.T, v testpg.Version) {
		waiting(t)
		p := incrementalPrimary(t, v, nil)
		tables := loadTables(t, p, "kr", 8)
		dir := initInstance(t, p, "--max-rate", "8192") // about 18 s: batches are recorded every 2 s
		l := listenNotify(t)
		w := startWorker(t, []string{"NOTIFY_SOCKET=" + l.path}, "run", "--pgdata", dir)
		waitCopying(t, l, w, 60)
		w.cmd.Process.Signal(syscall.SIGKILL)
		if code := w.wait(t); code != -int(syscall.SIGKILL) {
			t.Fatalf("the worker ended with %d before the kill\n%s", code, w.output.String())
		}
		p.SQL(t, "UPDATE kr_0 SET pad = 'changed' WHERE g % 1000 = 0")
		p.SQL(t, "CREATE TABLE kr_new AS SELECT g FROM generate_series(1, 1000) g")
		tables = append(tables, "kr_new")

		l2 := listenNotify(t)
		b := startBus(t)
		ne := startNodeExporter(t)
		addSetting(t, dir, "pg_standby.metrics_dir = '"+ne.workerDir+"'")
		w2 := startWorker(t, []string{"NOTIFY_SOCKET=" + l2.path, b.Env()}, "run", "--pgdata", dir)
		ne.link(t, dir)
		waitStatus(t, l2, w2, "files kept, changed blocks only")
		seen := statusDuringResume(t, b, dir, w2)
		if code := w2.wait(t); code != 0 {
			t.Fatalf("rerun: status %d\n%s", code, w2.output.String())
		}
		received, reused := resumedBytes(t, w2.output.String())
		if seen > uint64(reused) {
			t.Errorf("status showed %d bytes reused; the run's end says %d", seen, reused)
		}
		m, text, err := ne.scrape()
		if err != nil {
			t.Fatal(err)
		}
		if got := m[`pgstandby_backup_reused_bytes{pg_instance="`+dir+`"}`]; got != float64(reused) {
			t.Errorf("node_exporter: pgstandby_backup_reused_bytes %v; the run's end says %d\n%s", got, reused, text)
		}
		t.Logf("PostgreSQL %d: after a SIGKILL at 60 %%, the rerun received %d bytes and reused %d", v.Major, received, reused)
		// What the kill lost: the file being written, and the batch of
		// the last durable.MaxBatchAge not yet recorded.
		if received > (received+reused)*4/5 {
			t.Errorf("rerun received %d bytes, reused %d: want clearly less than a full backup", received, reused)
		}
		oracle.Standby(t, p, dir, tables...)
	})
}

// statusDuringResume checks what pg-standby status says of a resuming
// attempt while it copies: the kind of attempt, as STATUS= says it, in the
// line and in --json, and the bytes reused, which it returns at their
// highest (status keeps asking until the worker leaves the bus).
func statusDuringResume(t *testing.T, b *testbus.Bus, dir string, w *worker) uint64 {
	t.Helper()
	var reused uint64
	lines := 0
	for w.cmd.ProcessState == nil {
		st := status(t, b, "--pgdata", dir)
		j := st.Job
		if j == nil || j.Phase != busapi.PhaseCopying {
			break
		}
		if !strings.HasPrefix(j.AttemptKind, "resuming: ") || !strings.HasSuffix(j.AttemptKind, " files kept, changed blocks only") {
			t.Errorf("status --json: attempt_kind %q, want \"resuming: N of M files kept, changed blocks only\"", j.AttemptKind)
		}
		line := pgStandby(t, b, "status", "--pgdata", dir)
		if !strings.Contains(line, ": running, ") {
			break // the worker ended between the two questions
		}
		// The line is a later answer: the copy may have ended since.
		want := "running, attempt 2: " + j.AttemptKind + "; "
		if !strings.Contains(line, want) {
			t.Errorf("status: %q, want %q", line, want)
		}
		if strings.Contains(line, want+"copying ") && j.BytesReused > 0 && !strings.Contains(line, " reused") {
			t.Errorf("status: %q, want the %d bytes reused", line, j.BytesReused)
		}
		if j.BytesReused > reused {
			t.Logf("status: %s", strings.TrimSpace(line))
		}
		reused = max(reused, j.BytesReused)
		lines++
		time.Sleep(300 * time.Millisecond)
	}
	if lines == 0 || reused == 0 {
		t.Errorf("status while the resume copied: %d answers, at most %d bytes reused: want some reused", lines, reused)
	}
	return reused
}

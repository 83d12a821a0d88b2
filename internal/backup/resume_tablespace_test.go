package backup_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pg-standby/pg-standby/internal/backup"
	"github.com/pg-standby/pg-standby/internal/oracle"
	"github.com/pg-standby/pg-standby/internal/progress"
	"github.com/pg-standby/pg-standby/internal/resume"
	"github.com/pg-standby/pg-standby/internal/testpg"
)

// interruptWith is interrupt (resume_test.go) with the caller's options:
// it cancels the backup once written bytes pass at × the server's estimate.
func interruptWith(t *testing.T, opt backup.Options, at float64) map[string]resume.Entry {
	t.Helper()
	tracker := progress.NewTracker()
	opt.Progress, opt.Log, opt.Checkpoint = tracker, testLogger(t), "fast"
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	go func() { _, err := backup.Run(ctx, opt); errc <- err }()
	for {
		limit := at * float64(tracker.Total.Load())
		if n := tracker.Written.Load() + tracker.Unchanged.Load(); n > 0 && float64(n) >= limit {
			break
		}
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
	return oracle.Journal(t, opt.DataDir)
}

// reconstructedIn is the in_tablespaces count of the "resumed by changed
// blocks" record, or -1.
func reconstructedIn(log *oracle.Log) int {
	for _, r := range log.Records("resumed by changed blocks: files reconstructed in place") {
		if n, ok := r["in_tablespaces"].(float64); ok {
			return int(n)
		}
	}
	return -1
}

// splitEntries counts the journal's files in tablespaces and sums the sizes
// of the others: a retry that reuses more bytes than those reconstructed
// files in a tablespace.
func splitEntries(entries map[string]resume.Entry) (inSpaces int, mainBytes int64) {
	for p, e := range entries {
		if strings.HasPrefix(p, "pg_tblspc/") {
			inSpaces++
		} else {
			mainBytes += e.Size
		}
	}
	return inSpaces, mainBytes
}

// tablespacePrimary is a summarizing primary with four tables of about 14 MB
// in tablespace rts and n in the main directory; the server sends the
// tablespace's archive first, so a copy stopped half way has completed it.
func tablespacePrimary(t *testing.T, n int) (*testpg.Server, string, []string) {
	t.Helper()
	p := testpg.Start(t, testpg.Options{Conf: map[string]string{"summarize_wal": "on", "autovacuum": "off"}})
	loc := p.CreateTablespace(t, "rts")
	var tables []string
	for i := range 4 {
		name := fmt.Sprintf("ts_load_%d", i)
		p.SQL(t, fmt.Sprintf("CREATE TABLE %s TABLESPACE rts AS SELECT g, repeat(md5(g::text), 2) AS pad FROM generate_series(1, 150000) g", name))
		tables = append(tables, name)
	}
	return p, loc, append(tables, loadTables(t, p, n)...)
}

// checkStandby runs the oracles: pg_verifybackup, the standby starts and
// replays a later row, and every table equals the primary's.
func checkStandby(t *testing.T, p *testpg.Server, dir string, tables []string) {
	t.Helper()
	verifyBackup(t, dir)
	want := oracle.TableSums(t, p, tables...)
	p.SQL(t, "CREATE TABLE after_resume TABLESPACE rts AS SELECT 1 AS x")
	s := testpg.StartStandby(t, dir)
	s.WaitFor(t, "SELECT x FROM after_resume", "1", time.Minute)
	if got := oracle.TableSums(t, s, tables...); got != want {
		t.Errorf("content differs from the primary's:\nstandby:\n%s\nprimary:\n%s", got, want)
	}
}

// TestResumeTablespaceByChangedBlocks: files an interrupted attempt completed
// in a user tablespace are uploaded and reconstructed in place in the
// tablespace's location on the retry (bytes reused exceed all the prior
// files of the main directory), and the result passes the oracles.
func TestResumeTablespaceByChangedBlocks(t *testing.T) {
	testpg.ForEachVersion(t, func(t *testing.T, v testpg.Version) {
		testpg.RequireIncremental(t, v)
		p, loc, tables := tablespacePrimary(t, 6)
		dir, m1 := newInstance(t, p.ConnString()), newLocation(t)
		mapping := map[string]string{loc: m1}
		entries := interruptWith(t, backup.Options{DataDir: dir, TablespaceMapping: mapping}, 0.5)
		inSpaces, mainBytes := splitEntries(entries)
		if inSpaces == 0 {
			t.Fatalf("the interrupted attempt completed no file in the tablespace (%d files elsewhere)", len(entries))
		}
		p.SQL(t, "UPDATE ts_load_0 SET pad = 'changed' WHERE g % 500 = 0")
		p.SQL(t, "UPDATE load_0 SET pad = 'changed' WHERE g % 500 = 0")
		p.SQL(t, "DELETE FROM ts_load_3 WHERE g > 50000")
		p.SQL(t, "VACUUM ts_load_3")
		p.SQL(t, "CREATE TABLE ts_created_between TABLESPACE rts AS SELECT g FROM generate_series(1, 1000) g")
		tables = append(tables, "ts_created_between")

		tr := progress.NewTracker()
		log, rec := oracle.CaptureLog(t)
		if _, err := run(t, backup.Options{DataDir: dir, TablespaceMapping: mapping, Progress: tr, Log: log}); err != nil {
			t.Fatalf("retry: %v", err)
		}
		if n := reconstructedIn(rec); n <= 0 {
			t.Errorf("the log says %d files were reconstructed in tablespaces, want some", n)
		}
		t.Logf("PostgreSQL %d: journal listed %d files (%d in the tablespace, %d bytes elsewhere); retry received %d bytes, reused %d",
			v.Major, len(entries), inSpaces, mainBytes, tr.Streamed.Load(), tr.Reused.Load())
		if tr.Reused.Load() <= mainBytes {
			t.Errorf("retry reused %d bytes, no more than the %d bytes of the main directory's prior files: nothing reconstructed in the tablespace",
				tr.Reused.Load(), mainBytes)
		}
		if exists(filepath.Join(dir, resume.Name)) {
			t.Error("the journal survived a complete backup")
		}
		checkStandby(t, p, dir, tables)
	})
}

// TestResumeTablespaceMappingChanged: the retry maps the tablespace
// elsewhere. It fails before writing anything, forgetting the tablespace's
// files; the next attempt copies them whole into the new location (nothing
// reconstructed there), resumes the main directory, and passes the oracles.
func TestResumeTablespaceMappingChanged(t *testing.T) {
	testpg.ForEachVersion(t, func(t *testing.T, v testpg.Version) {
		testpg.RequireIncremental(t, v)
		p, loc, tables := tablespacePrimary(t, 4)
		dir, m1, m2 := newInstance(t, p.ConnString()), newLocation(t), newLocation(t)
		entries := interruptWith(t, backup.Options{DataDir: dir, TablespaceMapping: map[string]string{loc: m1}}, 0.5)
		if inSpaces, _ := splitEntries(entries); inSpaces == 0 {
			t.Fatalf("the interrupted attempt completed no file in the tablespace (%d files elsewhere)", len(entries))
		}
		p.SQL(t, "UPDATE ts_load_0 SET pad = 'changed' WHERE g % 500 = 0")
		moved := map[string]string{loc: m2}

		_, err := run(t, backup.Options{DataDir: dir, TablespaceMapping: moved})
		if err == nil || backup.KindOf(err) != backup.Transient || !strings.Contains(err.Error(), "the tablespace mapping changed") {
			t.Fatalf("retry with another mapping: %v (%v), want a transient failure naming the changed mapping", err, backup.KindOf(err))
		}
		t.Logf("refused: %v", err)
		if ents, _ := os.ReadDir(m2); len(ents) != 0 {
			t.Errorf("the failed attempt wrote %d entries in the new location", len(ents))
		}
		left := oracle.Journal(t, dir)
		inSpaces, mainBytes := splitEntries(left)
		if inSpaces != 0 {
			t.Errorf("the journal still lists %d files in the tablespace", inSpaces)
		}

		tr := progress.NewTracker()
		log, rec := oracle.CaptureLog(t)
		if _, err := run(t, backup.Options{DataDir: dir, TablespaceMapping: moved, Progress: tr, Log: log}); err != nil {
			t.Fatalf("second retry: %v", err)
		}
		if n := reconstructedIn(rec); n != 0 {
			t.Errorf("the log says %d files were reconstructed in tablespaces, want 0", n)
		}
		t.Logf("PostgreSQL %d: second retry listed %d files (%d bytes), received %d bytes, reused %d", v.Major, len(left), mainBytes, tr.Streamed.Load(), tr.Reused.Load())
		if tr.Reused.Load() > mainBytes {
			t.Errorf("reused %d bytes, more than the main directory's %d: something was reconstructed in the tablespace", tr.Reused.Load(), mainBytes)
		}
		oid := p.SQL(t, "SELECT oid FROM pg_tablespace WHERE spcname = 'rts'")
		if got, err := os.Readlink(filepath.Join(dir, "pg_tblspc", oid)); err != nil || got != m2 {
			t.Errorf("pg_tblspc/%s -> %q (%v), want %q", oid, got, err, m2)
		}
		checkStandby(t, p, dir, tables)
	})
}

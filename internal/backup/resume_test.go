package backup_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pg-standby/pg-standby/internal/backup"
	"github.com/pg-standby/pg-standby/internal/incremental"
	"github.com/pg-standby/pg-standby/internal/oracle"
	"github.com/pg-standby/pg-standby/internal/progress"
	"github.com/pg-standby/pg-standby/internal/resume"
	"github.com/pg-standby/pg-standby/internal/testpg"
)

// interrupt runs a backup of dir and cancels it once written bytes pass
// at (a fraction of the server's estimate when at < 1); it returns the
// journal the attempt left.
func interrupt(t *testing.T, dir string, at float64, maxRateKB int64) map[string]resume.Entry {
	t.Helper()
	tracker := progress.NewTracker()
	return interruptWhen(t, backup.Options{DataDir: dir, Progress: tracker, MaxRateKB: maxRateKB}, func() bool {
		limit := at
		if at < 1 {
			limit = at * float64(tracker.Total.Load())
		}
		n := tracker.Written.Load() + tracker.Unchanged.Load()
		return n > 0 && float64(n) >= limit
	})
}

// interruptWhen runs a backup with opt and cancels it once done reports
// true (polled every millisecond); it returns the journal the attempt left.
func interruptWhen(t *testing.T, opt backup.Options, done func() bool) map[string]resume.Entry {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	opt.Checkpoint, opt.Log = "fast", testLogger(t)
	errc := make(chan error, 1)
	go func() {
		_, err := backup.Run(ctx, opt)
		errc <- err
	}()
	for !done() {
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

// TestResumeJournalRecordsCompletedFiles: an interrupted attempt leaves a
// journal that lists only files on disk with the recorded size, never
// pg_control, WAL or the instance's configuration; a complete run removes it.
func TestResumeJournalRecordsCompletedFiles(t *testing.T) {
	testpg.ForEachVersion(t, func(t *testing.T, v testpg.Version) {
		testpg.Require(t)
		p := testpg.Start(t, testpg.Options{})
		p.Pgbench(t, "-i", "-s", "10", "-q")
		dir := newInstance(t, p.ConnString())
		entries := interrupt(t, dir, 60<<20, 0)
		if v.Major < 17 {
			if exists(filepath.Join(dir, resume.Name)) || len(entries) != 0 {
				t.Errorf("PostgreSQL %d: a resume journal was written; nothing could use it", v.Major)
			}
			return
		}
		if len(entries) == 0 {
			t.Fatal("the interrupted attempt recorded no completed file")
		}
		var lsn resume.Entry
		for p, e := range entries {
			switch {
			case p == "global/pg_control", p == "postgresql.conf", filepath.Dir(p) == "pg_wal":
				t.Errorf("journal lists %s", p)
			}
			fi, err := os.Stat(filepath.Join(dir, p))
			if err != nil || fi.Size() != e.Size {
				t.Errorf("journal lists %s with %d bytes; on disk: %v", p, e.Size, err)
			}
			if lsn.StartLSN == 0 {
				lsn = e
			} else if e.StartLSN != lsn.StartLSN || e.Timeline != lsn.Timeline {
				t.Errorf("%s: start %v/%d, others %v/%d", p, e.StartLSN, e.Timeline, lsn.StartLSN, lsn.Timeline)
			}
		}
		t.Logf("journal: %d files complete, start %v on timeline %d", len(entries), lsn.StartLSN, lsn.Timeline)
		if _, err := run(t, backup.Options{DataDir: dir}); err != nil {
			t.Fatalf("retry: %v", err)
		}
		if exists(filepath.Join(dir, resume.Name)) {
			t.Error("the journal survived a complete backup")
		}
		verifyBackup(t, dir)
	})
}

// loadTables makes n tables of about 14 MB each, so that a copy stopped
// half way has completed whole files.
func loadTables(t *testing.T, p *testpg.Server, n int) []string {
	t.Helper()
	var names []string
	for i := range n {
		name := fmt.Sprintf("load_%d", i)
		p.SQL(t, fmt.Sprintf("CREATE TABLE %s AS SELECT g, repeat(md5(g::text), 2) AS pad FROM generate_series(1, 150000) g", name))
		names = append(names, name)
	}
	return names
}

// cleanStreamed takes a clean backup of p into a new instance and returns
// the bytes it received and how long it took.
func cleanStreamed(t *testing.T, p *testpg.Server) (int64, time.Duration) {
	t.Helper()
	dir := newInstance(t, p.ConnString())
	tr := progress.NewTracker()
	start := time.Now()
	if _, err := run(t, backup.Options{DataDir: dir, Progress: tr}); err != nil {
		t.Fatalf("clean backup: %v", err)
	}
	return tr.Streamed.Load(), time.Since(start)
}

// TestResumeByChangedBlocks stops a copy half way, changes the primary
// (updates, a VACUUM truncation, a new table), and retries: the retry
// receives the completed files as changed blocks only, pg_verifybackup
// accepts the result with pg-standby's own manifest, and the standby has the
// primary's content and replays a later row.
func TestResumeByChangedBlocks(t *testing.T) {
	testpg.ForEachVersion(t, func(t *testing.T, v testpg.Version) {
		testpg.RequireIncremental(t, v)
		p := testpg.Start(t, testpg.Options{Conf: map[string]string{"summarize_wal": "on", "autovacuum": "off"}})
		tables := loadTables(t, p, 10)
		p.SQL(t, "CREATE TABLE shrinks AS SELECT g, repeat('s', 200) AS pad FROM generate_series(1, 60000) g")
		tables = append(tables, "shrinks")
		dir := newInstance(t, p.ConnString())
		t0 := time.Now()
		entries := interrupt(t, dir, 0.5, 0)
		first := time.Since(t0)
		if len(entries) == 0 {
			t.Fatal("the interrupted attempt recorded no completed file")
		}
		p.SQL(t, "UPDATE load_0 SET pad = 'changed' WHERE g % 500 = 0")
		p.SQL(t, "UPDATE load_9 SET pad = 'changed' WHERE g % 500 = 0")
		p.SQL(t, "DELETE FROM shrinks WHERE g > 20000")
		p.SQL(t, "VACUUM shrinks")
		p.SQL(t, "CREATE TABLE created_between AS SELECT g FROM generate_series(1, 1000) g")
		tables = append(tables, "created_between")

		tr := progress.NewTracker()
		t1 := time.Now()
		res, err := run(t, backup.Options{DataDir: dir, Progress: tr})
		if err != nil {
			t.Fatalf("retry: %v", err)
		}
		retry := time.Since(t1)
		clean, cleanTime := cleanStreamed(t, p)
		t.Logf("PostgreSQL %d: journal listed %d files; retry received %d bytes (%.0f %% of a clean backup's %d), reused %d; "+
			"first attempt %v + retry %v vs clean %v", v.Major, len(entries), tr.Streamed.Load(),
			100*float64(tr.Streamed.Load())/float64(clean), clean, tr.Reused.Load(), first, retry, cleanTime)
		if tr.Streamed.Load() > clean*3/4 {
			t.Errorf("the retry received %d bytes; a clean backup %d: not clearly fewer", tr.Streamed.Load(), clean)
		}
		if tr.Reused.Load() == 0 {
			t.Error("no bytes reused")
		}
		if k := tr.Snapshot().Kind; !strings.HasPrefix(k, "resuming: ") || !strings.HasSuffix(k, " files kept, changed blocks only") {
			t.Errorf("attempt kind %q; want \"resuming: N of M files kept, changed blocks only\"", k)
		}
		if exists(filepath.Join(dir, resume.Name)) {
			t.Error("the journal survived a complete backup")
		}
		label, _ := os.ReadFile(filepath.Join(dir, "backup_label"))
		if strings.Contains(string(label), "INCREMENTAL") {
			t.Errorf("backup_label still incremental:\n%s", label)
		}
		_ = res
		oracle.Standby(t, p, dir, tables...)
	})
}

// TestResumeSummarizeWALOff: without summarize_wal the retry is a full
// backup over the directory, and succeeds.
func TestResumeSummarizeWALOff(t *testing.T) {
	testpg.ForEachVersion(t, func(t *testing.T, v testpg.Version) {
		testpg.Require(t)
		if v.Major < 17 {
			t.Skipf("PostgreSQL %d: TestResumeJournalRecordsCompletedFiles covers it", v.Major)
		}
		p := testpg.Start(t, testpg.Options{})
		loadTables(t, p, 6)
		dir := newInstance(t, p.ConnString())
		entries := interrupt(t, dir, 0.5, 0)
		if len(entries) == 0 {
			t.Fatal("the interrupted attempt recorded no completed file")
		}
		tr := progress.NewTracker()
		log, records := oracle.CaptureLog(t)
		if _, err := run(t, backup.Options{DataDir: dir, Progress: tr, Log: log}); err != nil {
			t.Fatalf("retry: %v", err)
		}
		checkFallbackLog(t, records, summarizeOffMsg, "files_copied", float64(len(entries)))
		if tr.Reused.Load() != 0 || tr.Unchanged.Load() == 0 {
			t.Errorf("retry: %d bytes reused by blocks, %d unchanged; want a full backup over the directory", tr.Reused.Load(), tr.Unchanged.Load())
		}
		verifyBackup(t, dir)
	})
}

// TestResumeRefusedRange: a journal whose range the server refuses (here a
// start after the new backup's, SQLSTATE 55000) is dropped, and the same
// attempt takes a full backup at once, not counted as a failure.
func TestResumeRefusedRange(t *testing.T) {
	testpg.ForEachVersion(t, func(t *testing.T, v testpg.Version) {
		testpg.RequireIncremental(t, v)
		p := testpg.Start(t, testpg.Options{Conf: map[string]string{"summarize_wal": "on"}})
		loadTables(t, p, 4)
		dir := newInstance(t, p.ConnString())
		entries := interrupt(t, dir, 0.5, 0)
		if len(entries) == 0 {
			t.Fatal("the interrupted attempt recorded no completed file")
		}
		j := testJournal(t, dir)
		for p, e := range entries {
			if err := j.Append(resume.Record{Kind: resume.Forget, Path: p}, resume.Record{Kind: resume.Complete, Path: p, Size: e.Size, StartLSN: 0x7f000000000, Timeline: e.Timeline}); err != nil {
				t.Fatal(err)
			}
		}
		j.Close()
		tr := progress.NewTracker()
		log, records := oracle.CaptureLog(t)
		if _, err := run(t, backup.Options{DataDir: dir, Progress: tr, Log: log}); err != nil {
			t.Fatalf("retry: %v", err)
		}
		if r := checkFallbackLog(t, records, refusedRangeMsg, "", nil); r != nil {
			if e, _ := r["error"].(string); !strings.Contains(e, "(SQLSTATE 55000)") {
				t.Errorf("fallback logged with error %q; want the server's refusal, SQLSTATE 55000", e)
			}
		}
		if tr.Reused.Load() != 0 || tr.Attempt.Load() != 2 {
			t.Errorf("retry: %d bytes reused, attempt %d; want a full backup as attempt 2", tr.Reused.Load(), tr.Attempt.Load())
		}
		if exists(filepath.Join(dir, resume.Name)) {
			t.Error("the journal survived a complete backup")
		}
		verifyBackup(t, dir)
	})
}

// TestResumeWrittenEntries: a file recorded only Written (its writes
// returned, the attempt died before its fsync) is kept by a retry in the
// same boot, and copied again after a reboot (another boot ID).
func TestResumeWrittenEntries(t *testing.T) {
	testpg.ForEachVersion(t, func(t *testing.T, v testpg.Version) {
		testpg.RequireIncremental(t, v)
		p := testpg.Start(t, testpg.Options{Conf: map[string]string{"summarize_wal": "on"}})
		tables := loadTables(t, p, 6)
		dir := newInstance(t, p.ConnString())
		entries := interrupt(t, dir, 0.5, 0)
		var big []string
		listable := 0
		for p, e := range entries {
			if incremental.Listable(p) {
				listable++
				if e.Size >= 1<<20 {
					big = append(big, p)
				}
			}
		}
		if len(big) < 2 {
			t.Fatalf("the interrupted attempt completed %d files of 1 MiB or more; want 2", len(big))
		}
		slices.Sort(big)
		thisBoot, otherBoot := big[:len(big)/2], big[len(big)/2:]
		j := testJournal(t, dir)
		written := func(boot string, paths []string) {
			recs := []resume.Record{{Kind: resume.Boot, Path: boot}}
			for _, p := range paths {
				e := entries[p]
				recs = append(recs, resume.Record{Kind: resume.Forget, Path: p}, resume.Record{Kind: resume.Written, Path: p, Size: e.Size, StartLSN: e.StartLSN, Timeline: e.Timeline})
			}
			if err := j.Append(recs...); err != nil {
				t.Fatal(err)
			}
		}
		written("00000000-0000-4000-8000-000000000000", otherBoot)
		written(resume.BootID(), thisBoot)
		j.Close()

		tr := progress.NewTracker()
		if _, err := run(t, backup.Options{DataDir: dir, Progress: tr}); err != nil {
			t.Fatalf("retry: %v", err)
		}
		want := fmt.Sprintf("resuming: %d of %d files kept, changed blocks only", listable-len(otherBoot), len(entries))
		if k := tr.Snapshot().Kind; k != want {
			t.Errorf("attempt kind %q; want %q (%d files Written in another boot)", k, want, len(otherBoot))
		}
		oracle.Standby(t, p, dir, tables...)
	})
}

// testJournal opens dir's resume journal for a test to append to.
func testJournal(t *testing.T, dir string) *resume.Journal {
	t.Helper()
	d, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	j, _, err := resume.Open(d, resume.Name)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

// The fallbacks' log lines (internal/backup/incremental.go).
const (
	summarizeOffMsg = "summarize_wal is off on the primary: the retry receives every byte again; with summarize_wal = on " +
		"(ALTER SYSTEM SET summarize_wal = on; SELECT pg_reload_conf()) it would receive only the blocks changed " +
		"in the files already copied"
	refusedRangeMsg = "the primary cannot send changed blocks for the files already copied; taking a full backup over the directory"
)

// checkFallbackLog checks the attempt logged msg exactly once, as a
// warning, with attribute key equal to want (when key is set); it returns
// the record.
func checkFallbackLog(t *testing.T, l *oracle.Log, msg, key string, want any) map[string]any {
	t.Helper()
	recs := l.Records(msg)
	if len(recs) != 1 {
		t.Errorf("%d log records %q; want one", len(recs), msg)
		return nil
	}
	r := recs[0]
	if r["level"] != "WARN" {
		t.Errorf("%q logged at %v; want WARN", msg, r["level"])
	}
	if key != "" && r[key] != want {
		t.Errorf("%q logged with %s=%v; want %v", msg, key, r[key], want)
	}
	return r
}

// TestResumeRelistsReconstructed: files a resuming attempt reconstructed
// are recorded complete again, at that attempt's start, once fsynced (by
// the Syncer, as written files are); a third attempt may then list them
// from the newer start.
func TestResumeRelistsReconstructed(t *testing.T) {
	testpg.ForEachVersion(t, func(t *testing.T, v testpg.Version) {
		testpg.RequireIncremental(t, v)
		p := testpg.Start(t, testpg.Options{Conf: map[string]string{"summarize_wal": "on", "autovacuum": "off"}})
		tables := loadTables(t, p, 6)
		dir := newInstance(t, p.ConnString())
		first := interrupt(t, dir, 0.5, 0)
		if len(first) == 0 {
			t.Fatal("the interrupted attempt recorded no completed file")
		}
		p.SQL(t, "UPDATE load_0 SET pad = 'changed' WHERE g % 500 = 0")
		var listedBytes int64
		for _, e := range first {
			listedBytes += e.Size
		}
		tracker := progress.NewTracker()
		second := interruptWhen(t, backup.Options{DataDir: dir, Progress: tracker}, func() bool {
			return tracker.Reused.Load() >= listedBytes/2
		})
		// Only a file the increment changed is recorded at the new start; one
		// left as it was keeps its record (docs/incremental.md, "Durability").
		relisted, kept := 0, 0
		for path, e := range first {
			e2, ok := second[path]
			switch {
			case !ok || !incremental.Listable(path): // sent whole every time
			case e2.StartLSN > e.StartLSN:
				relisted++ // changed: load_0, if reached, and the catalogs the UPDATE touched
			case e2 == e:
				kept++
			default:
				t.Errorf("%s: recorded %+v after the first attempt, %+v after the second", path, e, e2)
			}
		}
		t.Logf("PostgreSQL %d: %d files listed after the first attempt; after the second, %d recorded again, %d kept as they were",
			v.Major, len(first), relisted, kept)
		if kept == 0 {
			t.Errorf("no file of the first attempt kept its record: %v", second)
		}
		if _, err := run(t, backup.Options{DataDir: dir}); err != nil {
			t.Fatalf("third attempt: %v", err)
		}
		oracle.Standby(t, p, dir, tables...)
	})
}

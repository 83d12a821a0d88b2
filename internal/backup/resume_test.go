package backup_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/pg-standby/pg-standby/internal/backup"
	"github.com/pg-standby/pg-standby/internal/progress"
	"github.com/pg-standby/pg-standby/internal/resume"
	"github.com/pg-standby/pg-standby/internal/testpg"
)

// interrupt runs a backup of dir and cancels it once written bytes pass
// at; it returns the journal the attempt left.
func interrupt(t *testing.T, dir string, at int64, maxRateKB int64) map[string]resume.Entry {
	t.Helper()
	tracker := progress.NewTracker()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		_, err := backup.Run(ctx, backup.Options{DataDir: dir, Checkpoint: "fast", Progress: tracker, Log: testLogger(t), MaxRateKB: maxRateKB})
		errc <- err
	}()
	for tracker.Written.Load()+tracker.Unchanged.Load() < at {
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
	d, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	entries, err := resume.Load(d, resume.Name)
	if err != nil {
		t.Fatalf("load the journal: %v", err)
	}
	return entries
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

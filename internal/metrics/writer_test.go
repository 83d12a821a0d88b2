package metrics

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pg-standby/pg-standby/internal/progress"
)

// TestReplaceNeverFollowsLinks: links planted at the file's name and at
// its temporary name are replaced, their targets untouched; the file is
// 0644 whatever the umask.
func TestReplaceNeverFollowsLinks(t *testing.T) {
	dir := t.TempDir()
	victim := filepath.Join(t.TempDir(), "victim")
	if err := os.WriteFile(victim, []byte("keep"), 0o600); err != nil {
		t.Fatal(err)
	}
	name := FileName("15-main")
	for _, link := range []string{name + ".prom", name + ".prom." + strconv.Itoa(os.Getpid())} {
		if err := os.Symlink(victim, filepath.Join(dir, link)); err != nil {
			t.Fatal(err)
		}
	}
	w := New(Config{Dir: dir, File: name, Instance: "15-main"}, time.Time{})
	tr := progress.NewTracker()
	tr.SetPhase(progress.Copying)
	tr.Attempt.Store(2)
	tr.Streamed.Store(1 << 20)
	tr.Reused.Store(3 << 20)
	before := time.Now()
	w.Report(tr.Snapshot())
	if b, _ := os.ReadFile(victim); string(b) != "keep" {
		t.Errorf("the link's target was written: %q", b)
	}
	fi, err := os.Lstat(filepath.Join(dir, name+".prom"))
	if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o644 {
		t.Fatalf("metrics file: %v %v", fi, err)
	}
	if m, _ := filepath.Glob(filepath.Join(dir, "*.prom.*")); len(m) != 0 {
		t.Errorf("temporary files left: %q", m)
	}
	b, _ := os.ReadFile(filepath.Join(dir, name+".prom"))
	for _, want := range []string{
		`pgstandby_backup_phase{pg_instance="15-main",phase="copying"} 1`,
		`pgstandby_backup_attempts_total{pg_instance="15-main"} 2`,
		`pgstandby_backup_copied_bytes{pg_instance="15-main"} 1048576`,
		`pgstandby_backup_reused_bytes{pg_instance="15-main"} 3145728`,
		"# TYPE pgstandby_backup_attempts_total counter",
	} {
		if !strings.Contains(string(b), want+"\n") {
			t.Errorf("no %q in:\n%s", want, b)
		}
	}
	var ts float64
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, `pgstandby_metrics_last_update_timestamp_seconds{pg_instance="15-main"} `); ok {
			ts, _ = strconv.ParseFloat(v, 64)
		}
	}
	if at := time.UnixMilli(int64(ts * 1000)); at.Before(before.Truncate(time.Millisecond)) || at.After(time.Now()) || w.Err() != nil {
		t.Errorf("last update %v (%v), want the write's time, after %v; Err %v", at, ts, before, w.Err())
	}
}

// TestThrottle: counters alone are written at most once per Every; a new
// phase at once; a back-off is a transient failure.
func TestThrottle(t *testing.T) {
	dir := t.TempDir()
	w := New(Config{Dir: dir, File: "x", Instance: `a"b`, Every: time.Hour}, time.Time{})
	tr := progress.NewTracker()
	tr.SetPhase(progress.Copying)
	w.Report(tr.Snapshot())
	tr.Streamed.Store(5)
	w.Report(tr.Snapshot())
	read := func() string { b, _ := os.ReadFile(filepath.Join(dir, "x.prom")); return string(b) }
	if !strings.Contains(read(), `pgstandby_backup_copied_bytes{pg_instance="a\"b"} 0`) {
		t.Errorf("counters written within Every:\n%s", read())
	}
	tr.SetPhase(progress.WaitingRetry)
	w.Report(tr.Snapshot())
	if s := read(); !strings.Contains(s, `phase="waiting-retry"} 1`) || !strings.Contains(s, `pgstandby_backup_last_failure_info{pg_instance="a\"b",class="transient"} 1`) ||
		!strings.Contains(s, "pgstandby_backup_last_failure_timestamp_seconds") {
		t.Errorf("after a back-off:\n%s", s)
	}
}

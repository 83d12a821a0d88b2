package oracle

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pg-standby/pg-standby/internal/resume"
	"github.com/pg-standby/pg-standby/internal/testpg"
)

// TableSums is the per-table content check: for each table its row count
// and a sum of the rows' hashes, one line a table. Equal on the primary and
// the standby means the same rows.
func TableSums(t testing.TB, s *testpg.Server, tables ...string) string {
	t.Helper()
	var b strings.Builder
	for _, tb := range tables {
		fmt.Fprintf(&b, "%s %s\n", tb, s.SQL(t, fmt.Sprintf("SELECT count(*) || ' ' || coalesce(sum(hashtext(x::text)::bigint), 0) FROM %s x", tb)))
	}
	return b.String()
}

// Journal is what the resume journal in dataDir lists as complete. It reads
// a copy: the journal opens only files of the reading uid (the worker runs
// as postgres, tests as root), and a worker may still append to it.
func Journal(t testing.TB, dataDir string) map[string]resume.Entry {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dataDir, resume.Name))
	if os.IsNotExist(err) {
		return map[string]resume.Entry{}
	}
	if err != nil {
		t.Fatalf("read the resume journal: %v", err)
	}
	dir, err := os.MkdirTemp("", "journal-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	if err := os.WriteFile(filepath.Join(dir, resume.Name), data, 0o600); err != nil {
		t.Fatal(err)
	}
	d, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	entries, err := resume.Load(d, resume.Name)
	if err != nil {
		t.Fatalf("load the resume journal: %v", err)
	}
	return entries
}

// Log captures a logger's structured records (and shows them in the test
// log), so that a test checks a message and its attributes, not text.
type Log struct {
	mu      sync.Mutex
	records []map[string]any
	t       testing.TB
}

// CaptureLog is a logger at debug level whose records Log keeps.
func CaptureLog(t testing.TB) (*slog.Logger, *Log) {
	l := &Log{t: t}
	return slog.New(slog.NewJSONHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug})), l
}

// Write takes one JSON record from the handler.
func (l *Log) Write(p []byte) (int, error) {
	var r map[string]any
	if err := json.Unmarshal(p, &r); err != nil {
		return 0, err
	}
	l.mu.Lock()
	l.records = append(l.records, r)
	l.mu.Unlock()
	l.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// Records are the records with message msg, in order.
func (l *Log) Records(msg string) []map[string]any {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	for _, r := range l.records {
		if r[slog.MessageKey] == msg {
			out = append(out, r)
		}
	}
	return out
}

var markers atomic.Int64

// Standby is the project's three oracles on a finished backup of p in dir:
// pg_verifybackup of the same major passes, the standby starts and replays
// a row written on p after the backup, and each table's content on it
// equals p's (p must be quiet). It returns the running standby.
func Standby(t testing.TB, p *testpg.Server, dir string, tables ...string) *testpg.Server {
	t.Helper()
	VerifyBackup(t, dir)
	want := TableSums(t, p, tables...)
	marker := fmt.Sprintf("oracle_after_%d_%d", os.Getpid(), markers.Add(1))
	p.SQL(t, "CREATE TABLE "+marker+" AS SELECT 1 AS x")
	s := p.Version().StartStandby(t, dir)
	s.WaitFor(t, "SELECT x FROM "+marker, "1", time.Minute)
	if got := TableSums(t, s, tables...); got != want {
		t.Errorf("content differs from the primary's:\nstandby:\n%s\nprimary:\n%s", got, want)
	}
	return s
}

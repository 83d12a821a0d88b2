package backup_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pg-standby/pg-standby/internal/backup"
	"github.com/pg-standby/pg-standby/internal/oracle"
	"github.com/pg-standby/pg-standby/internal/pgconf"
	"github.com/pg-standby/pg-standby/internal/testpg"
)

// newInstance makes a minimal instance: postgresql.conf with the given
// primary_conninfo (and extra lines), and an empty basebackup.signal. The
// directory belongs to this process, which runs the backup in-process;
// testpg.StartStandby hands it to postgres later.
func newInstance(t *testing.T, conninfo string, extra ...string) string {
	t.Helper()
	dir := testpg.TempDir(t)
	if os.Geteuid() == 0 {
		if err := os.Chown(dir, 0, 0); err != nil {
			t.Fatal(err)
		}
	}
	conf := ""
	if conninfo != "" {
		conf = "primary_conninfo = " + pgconf.Quote(conninfo) + "\n"
	}
	conf += strings.Join(extra, "\n") + "\n"
	writeFile(t, filepath.Join(dir, "postgresql.conf"), conf)
	writeFile(t, filepath.Join(dir, "basebackup.signal"), "")
	return dir
}

// newLocation is an empty directory owned by this process, for tablespace mappings.
func newLocation(t *testing.T) string {
	t.Helper()
	dir := testpg.TempDir(t)
	if os.Geteuid() == 0 {
		if err := os.Chown(dir, 0, 0); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func run(t *testing.T, opt backup.Options) (*backup.Result, error) {
	t.Helper()
	if opt.Log == nil {
		opt.Log = testLogger(t)
	}
	if opt.Checkpoint == "" {
		opt.Checkpoint = "fast"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	return backup.Run(ctx, opt)
}

// verifyBackup runs PostgreSQL's pg_verifybackup on dir (oracle.VerifyBackup).
func verifyBackup(t *testing.T, dir string) { t.Helper(); oracle.VerifyBackup(t, dir) }

// snapshot renders a directory tree, to prove a refusal left it as it was
// (but the record of the failed attempt: oracle.SnapshotPending).
func snapshot(t *testing.T, dir string) string { t.Helper(); return oracle.SnapshotPending(t, dir) }

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

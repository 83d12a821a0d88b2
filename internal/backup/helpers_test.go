package backup_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/pg-standby/pg-standby/internal/backup"
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

// verifyBackup runs PostgreSQL's pg_verifybackup on dir, ignoring the
// instance's own configuration files.
func verifyBackup(t *testing.T, dir string) {
	t.Helper()
	v := testpg.VersionOf(t)
	out, err := v.Output(context.Background(), "pg_verifybackup",
		"-i", "postgresql.conf", "-i", "pg_hba.conf", "-i", "pg_ident.conf", dir)
	if err != nil {
		t.Fatalf("PostgreSQL %d pg_verifybackup %s: %v", v.Major, dir, err)
	}
	if !strings.Contains(out, "backup successfully verified") {
		t.Fatalf("PostgreSQL %d pg_verifybackup %s: %s", v.Major, dir, out)
	}
}

// snapshot renders a directory tree (names, types, modes, content hashes),
// to prove a refusal left it as it was.
func snapshot(t *testing.T, dir string) string {
	t.Helper()
	var lines []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		line := fmt.Sprintf("%s %v", rel, fi.Mode())
		if fi.Mode().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			line += fmt.Sprintf(" %x", sha256.Sum256(signalRecordless(p, b)))
		}
		lines = append(lines, line)
		return nil
	})
	if err != nil {
		t.Fatalf("snapshot %s: %v", dir, err)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

// signalRecordless is a file's content for snapshots: basebackup.signal
// without the failure a refused attempt records in it (last-error,
// last-failure, the attempt count), which is all such an attempt may change.
func signalRecordless(path string, b []byte) []byte {
	if filepath.Base(path) != "basebackup.signal" {
		return b
	}
	var keep []string
	for _, l := range strings.Split(string(b), "\n") {
		if k, _, _ := strings.Cut(l, " "); k != "last-error" && k != "last-failure" && k != "attempts" && k != "written" && !strings.HasPrefix(l, "#") {
			keep = append(keep, l)
		}
	}
	return []byte(strings.Join(keep, "\n"))
}

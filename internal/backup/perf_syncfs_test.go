package backup_test

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pg-standby/pg-standby/internal/backup"
	"github.com/pg-standby/pg-standby/internal/pgconf"
	"github.com/pg-standby/pg-standby/internal/testpg"
	"golang.org/x/sys/unix"
)

// TestSyncfsWhenAloneOnFilesystem backs up into a data directory that is
// all its filesystem holds (a tmpfs mounted for the test, root only): the
// copy is made durable by one syncfs instead of an fsync per file, and the
// result still verifies and replays as a standby.
func TestSyncfsWhenAloneOnFilesystem(t *testing.T) {
	testpg.Require(t)
	if os.Geteuid() != 0 {
		t.Skip("mounting a filesystem needs root")
	}
	p := testpg.Start(t, testpg.Options{})
	p.Pgbench(t, "-i", "-s", "2", "-q")
	mnt := testpg.TempDir(t)
	if err := unix.Mount("tmpfs", mnt, "tmpfs", 0, "size=512m,mode=0755"); err != nil {
		t.Skipf("mount tmpfs: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(mnt, unix.MNT_DETACH) })
	dir := filepath.Join(mnt, "data")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "postgresql.conf"), "primary_conninfo = "+pgconf.Quote(p.ConnString())+"\nhot_standby = on\n")
	writeFile(t, filepath.Join(dir, "basebackup.signal"), "")

	var log lockedBuffer
	if _, err := run(t, backup.Options{DataDir: dir, Log: slog.New(slog.NewTextHandler(&log, nil))}); err != nil {
		t.Fatalf("backup: %v\n%s", err, log.String())
	}
	if !strings.Contains(log.String(), "one syncfs makes the copy durable") {
		t.Errorf("the log does not say syncfs was used:\n%s", log.String())
	}
	verifyBackup(t, dir)
	p.SQL(t, "CREATE TABLE after_backup AS SELECT 'marker' AS x")
	s := testpg.StartStandby(t, dir)
	s.WaitFor(t, "SELECT x FROM after_backup", "marker", time.Minute)
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

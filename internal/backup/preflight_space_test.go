package backup_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/pg-standby/pg-standby/internal/backup"
	"github.com/pg-standby/pg-standby/internal/pgconf"
	"github.com/pg-standby/pg-standby/internal/progress"
	"github.com/pg-standby/pg-standby/internal/testpg"
)

// tmpfsInstance mounts a tmpfs of size bytes (root only) and makes a
// minimal instance in it.
func tmpfsInstance(t *testing.T, size int64, conninfo string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	mnt := testpg.TempDir(t)
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d,mode=0700", size), "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Skipf("mount tmpfs: %v %s", err, out)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(mnt, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", mnt, err)
		}
	})
	dir := filepath.Join(mnt, "data")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "postgresql.conf"), "primary_conninfo = "+pgconf.Quote(conninfo)+"\n")
	writeFile(t, filepath.Join(dir, "basebackup.signal"), "")
	return dir
}

func freeBytes(t *testing.T, dir string) int64 {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	return int64(st.Bavail) * st.Bsize
}

// TestNotEnoughSpace: a data directory on a tmpfs half the primary's size
// is refused before anything is written, with what is needed and what is
// free (4 KiB reusable: the one page of its postgresql.conf); a re-seed on a tmpfs that cannot hold a second copy beside the
// first, but can overwrite it in place, goes ahead.
func TestNotEnoughSpace(t *testing.T) {
	testpg.Require(t)
	p := testpg.Start(t, testpg.Options{Initdb: []string{"--wal-segsize=1"}})
	p.Pgbench(t, "-i", "-s", "1", "-q")
	probe, err := run(t, backup.Options{DataDir: newInstance(t, p.ConnString())})
	if err != nil {
		t.Fatalf("backup to learn the size: %v", err)
	}
	size := probe.Bytes
	t.Logf("the copy is %s", progress.Bytes(size))

	t.Run("refused", func(t *testing.T) {
		dir := tmpfsInstance(t, size/2, p.ConnString())
		before, free := snapshot(t, dir), freeBytes(t, dir)
		_, err := run(t, backup.Options{DataDir: dir})
		t.Logf("error: %v", err)
		if err == nil || backup.KindOf(err) != backup.Config {
			t.Fatalf("copy onto a tmpfs of half its size: %v, want a configuration error", err)
		}
		want := regexp.QuoteMeta("not enough free space for the copy (nothing was written): on the file system of "+dir+
			", the data directory "+dir+" needs ") + `[0-9.]+ MiB` +
			regexp.QuoteMeta(" (the primary's estimate, with 2 WAL segments for the data directory), but "+progress.Bytes(free)+
				" is free and 4.0 KiB already written there can be reused: free ") + `[0-9.]+ MiB` +
			regexp.QuoteMeta(" more there, or put it elsewhere (--tablespace-mapping for a tablespace)")
		if !regexp.MustCompile("^" + want + "$").MatchString(err.Error()) {
			t.Errorf("error\n%s\ndoes not match\n%s", err, want)
		}
		if after := snapshot(t, dir); after != before {
			t.Errorf("the refusal wrote:\nbefore:\n%s\nafter:\n%s", before, after)
		}
	})

	t.Run("reseed reuses what is in place", func(t *testing.T) {
		dir := tmpfsInstance(t, size*3/2+4<<20, p.ConnString())
		if _, err := run(t, backup.Options{DataDir: dir}); err != nil {
			t.Fatalf("first copy: %v", err)
		}
		free := freeBytes(t, dir)
		if free >= size {
			t.Fatalf("after the first copy %s is free, not less than the copy's %s: the case proves nothing", progress.Bytes(free), progress.Bytes(size))
		}
		writeFile(t, filepath.Join(dir, "basebackup.signal"), "")
		res, err := run(t, backup.Options{DataDir: dir})
		if err != nil {
			t.Fatalf("re-seed with %s free for a copy of %s: %v", progress.Bytes(free), progress.Bytes(size), err)
		}
		t.Logf("re-seed with %s free: %s written, %s unchanged", progress.Bytes(free), progress.Bytes(res.Written), progress.Bytes(res.Unchanged))
		verifyBackup(t, dir)
	})
}

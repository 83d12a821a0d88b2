package durable

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// TestSoleOnFS mounts a tmpfs (root only) and checks which trees on it
// count as all the filesystem holds.
func TestSoleOnFS(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	mnt := t.TempDir()
	if err := unix.Mount("tmpfs", mnt, "tmpfs", 0, "size=16m"); err != nil {
		t.Skipf("mount tmpfs: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(mnt, 0) })
	data := filepath.Join(mnt, "pg", "data")
	if err := os.MkdirAll(data, 0o700); err != nil {
		t.Fatal(err)
	}
	os.Mkdir(filepath.Join(mnt, "lost+found"), 0o700)
	for _, c := range []struct {
		dir  string
		want bool
	}{{mnt, true}, {data, true}, {t.TempDir(), false}} {
		if got, err := SoleOnFS(c.dir); err != nil || got != c.want {
			t.Errorf("SoleOnFS(%s) = %v, %v; want %v", c.dir, got, err, c.want)
		}
	}
	if err := os.WriteFile(filepath.Join(mnt, "pg", "other"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if got, err := SoleOnFS(data); err != nil || got {
		t.Errorf("with a second entry beside it: SoleOnFS = %v, %v; want false", got, err)
	}
}

// TestSyncerBatches hands more files than a window to a Syncer, with fsync
// and with syncfs, and checks every one is closed by Wait.
func TestSyncerBatches(t *testing.T) {
	for _, syncfs := range []bool{false, true} {
		dir := t.TempDir()
		s := NewSyncer(3, 4)
		if syncfs {
			if err := s.UseSyncfs(dir); err != nil {
				t.Fatal(err)
			}
		}
		var files []*os.File
		for i := range 10 {
			f, err := os.Create(filepath.Join(dir, string(rune('a'+i))))
			if err != nil {
				t.Fatal(err)
			}
			f.WriteString("x")
			files = append(files, f)
			s.Sync(f, 1)
		}
		if err := s.Wait(); err != nil {
			t.Fatalf("syncfs %v: Wait: %v", syncfs, err)
		}
		if err := s.Wait(); err != nil {
			t.Fatalf("syncfs %v: second Wait: %v", syncfs, err)
		}
		for _, f := range files {
			if _, err := f.Write([]byte("y")); err == nil {
				t.Errorf("syncfs %v: %s still open after Wait", syncfs, f.Name())
			}
		}
	}
}

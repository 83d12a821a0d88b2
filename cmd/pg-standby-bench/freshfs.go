package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// freshFS is a loop-mounted ext4 made anew for every run, so no run pays
// for the deletions of the one before (ext4 frees and discards a removed
// tree in the background) and every contender starts on an empty journal.
// Making and mounting it needs root.
//
// With directIO the loop device reads and writes its image with O_DIRECT
// (losetup --direct-io=on): otherwise every block is cached twice, once for
// the ext4 on top and once for the image file, and each flush of the ext4
// journal writes back the image's dirty pages on the host, a cost no real
// disk has and the receive-only contender never pays.
type freshFS struct {
	img, mnt, dev string
	size          int64
	uid, gid      int
	directIO      bool
	mounted       bool
}

// newFreshFS keeps the image in imgDir and mounts it in dir.
func newFreshFS(imgDir, dir string, size int64, uid, gid int, directIO bool) *freshFS {
	img := filepath.Join(imgDir, "pg-standby-bench-"+filepath.Base(dir)+".img")
	return &freshFS{img: img, mnt: filepath.Join(dir, "fs"), size: size, uid: uid, gid: gid, directIO: directIO}
}

// renew unmounts the last filesystem and mounts a new empty one at f.mnt.
func (f *freshFS) renew(ctx context.Context) error {
	f.unmount()
	os.Remove(f.img)
	// Commit the removal now, outside any run's time: on a host filesystem
	// mounted with discard, the commit that frees the last image's blocks
	// discards them all, and the next run's first flush would wait for it.
	if err := syncDir(filepath.Dir(f.img)); err != nil {
		return err
	}
	if err := os.MkdirAll(f.mnt, 0o755); err != nil {
		return err
	}
	img, err := os.Create(f.img)
	if err != nil {
		return err
	}
	err = img.Truncate(f.size) // sparse: only what a run writes takes space
	img.Close()
	if err != nil {
		return err
	}
	if out, err := exec.CommandContext(ctx, "mkfs.ext4", "-q", "-F", f.img).CombinedOutput(); err != nil {
		return fmt.Errorf("mkfs.ext4 %s: %w\n%s", f.img, err, out)
	}
	dio := "--direct-io=off"
	if f.directIO {
		dio = "--direct-io=on"
	}
	out, err := exec.CommandContext(ctx, "losetup", "--find", "--show", dio, f.img).Output()
	if err != nil {
		return fmt.Errorf("losetup %s %s (a fresh filesystem per run needs root; BENCH_FRESH_FS=0 to skip): %w", dio, f.img, err)
	}
	f.dev = strings.TrimSpace(string(out))
	if out, err := exec.CommandContext(ctx, "mount", f.dev, f.mnt).CombinedOutput(); err != nil {
		exec.Command("losetup", "-d", f.dev).Run()
		return fmt.Errorf("mount %s %s: %w\n%s", f.dev, f.mnt, err, out)
	}
	f.mounted = true
	os.Chmod(f.mnt, 0o755)
	return os.Chown(f.mnt, f.uid, f.gid)
}

// path is name on the current filesystem.
func (f *freshFS) path(name string) string { return filepath.Join(f.mnt, name) }

func (f *freshFS) unmount() {
	if f.mounted {
		exec.Command("umount", f.mnt).Run()
		exec.Command("losetup", "-d", f.dev).Run()
		f.mounted = false
	}
}

// syncDir commits dir's filesystem (syncfs).
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := unix.Syncfs(int(d.Fd())); err != nil {
		return fmt.Errorf("syncfs %s: %w", dir, err)
	}
	return nil
}

// close unmounts and removes the image.
func (f *freshFS) close() {
	f.unmount()
	os.Remove(f.img)
}

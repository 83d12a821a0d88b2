package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// freshFS is a loop-mounted ext4 made anew for every run, so no run pays
// for the deletions of the one before (ext4 frees and discards a removed
// tree in the background) and every contender starts on an empty journal.
// Making and mounting it needs root.
type freshFS struct {
	img, mnt string
	size     int64
	uid, gid int
	mounted  bool
}

func newFreshFS(dir string, size int64, uid, gid int) *freshFS {
	return &freshFS{img: filepath.Join(dir, "fs.img"), mnt: filepath.Join(dir, "fs"), size: size, uid: uid, gid: gid}
}

// renew unmounts the last filesystem and mounts a new empty one at f.mnt.
func (f *freshFS) renew(ctx context.Context) error {
	f.unmount()
	os.Remove(f.img)
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
	for _, argv := range [][]string{{"mkfs.ext4", "-q", "-F", f.img}, {"mount", "-o", "loop", f.img, f.mnt}} {
		if out, err := exec.CommandContext(ctx, argv[0], argv[1:]...).CombinedOutput(); err != nil {
			return fmt.Errorf("%v (a fresh filesystem per run needs root; BENCH_FRESH_FS=0 to skip): %w\n%s", argv, err, out)
		}
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
		f.mounted = false
	}
}

// close unmounts and removes the image.
func (f *freshFS) close() {
	f.unmount()
	os.Remove(f.img)
}

package durable

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// SoleOnFS reports whether dir is all its filesystem holds: dir is the
// mount point, or every directory from the mount point down to dir holds
// nothing but the next one on the way (and the mount point lost+found).
// Then syncfs(2) flushes only this tree, one journal commit for all of it.
// Another process may still write there later; that costs it time, not us
// durability.
func SoleOnFS(dir string) (bool, error) {
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		return false, fmt.Errorf("stat %s: %w", dir, err)
	}
	dir = filepath.Clean(dir)
	for dir != "/" {
		parent := filepath.Dir(dir)
		var pst unix.Stat_t
		if err := unix.Stat(parent, &pst); err != nil {
			return false, fmt.Errorf("stat %s: %w", parent, err)
		}
		if pst.Dev != st.Dev {
			return true, nil // dir is the mount point
		}
		only, err := holdsOnly(parent, filepath.Base(dir))
		if err != nil || !only {
			return false, err
		}
		dir = parent
	}
	return false, nil // the root filesystem holds the system
}

// holdsOnly reports whether dir's entries are name and at most lost+found;
// it reads no more than three names.
func holdsOnly(dir, name string) (bool, error) {
	d, err := os.Open(dir)
	if err != nil {
		return false, fmt.Errorf("open %s: %w", dir, err)
	}
	defer d.Close()
	names, err := d.Readdirnames(3)
	if err != nil && err != io.EOF {
		return false, fmt.Errorf("read %s: %w", dir, err)
	}
	for _, n := range names {
		if n != name && n != "lost+found" {
			return false, nil
		}
	}
	return true, nil
}

// syncFS flushes the filesystem f is on. Since Linux 5.8 it reports a
// writeback error of any file there since f was opened (the superblock's
// error sequence), which is what makes it usable for durability.
func syncFS(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = unix.Syncfs(int(fd)) }); err != nil {
		return err
	}
	return serr
}

// SyncfsReportsErrors reports whether the running kernel's syncfs(2)
// returns writeback errors: Linux 5.8 and later. Before, it always
// succeeded, so only fsync of each file could report a lost write.
func SyncfsReportsErrors() bool {
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return false
	}
	var major, minor int
	if _, err := fmt.Sscanf(unix.ByteSliceToString(u.Release[:]), "%d.%d", &major, &minor); err != nil {
		return false
	}
	return major > 5 || major == 5 && minor >= 8
}

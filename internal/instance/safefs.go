package instance

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// Root-run init writes into directories the postgres user owns (Debian's
// /etc/postgresql/V/C and the data directory), so it never resolves a path
// there by name: a safeDir is a descriptor reached from "/" one component at
// a time with openat2(RESOLVE_NO_SYMLINKS|RESOLVE_BENEATH), and every create,
// chmod, chown and rename is relative to it (mkdirat, openat with
// O_CREAT|O_EXCL|O_NOFOLLOW under a random name, fchown/fchmod on the new
// descriptor, renameat). postgres can rename its own directories under us,
// but not swap a root-owned directory into the walk: the kernel, not a check
// before the write, keeps every write inside a directory it already owns.
type safeDir struct {
	fd   int
	path string
}

// walkResolve is what each step of a walk may cross: no symlink (not even a
// final one) and no "..".
const walkResolve = unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_BENEATH

// LinkError says a path holds a symlink where root-run code follows none.
type LinkError struct{ Path string }

func (e *LinkError) Error() string {
	return fmt.Sprintf("%s is a symbolic link (or not a directory); pg-standby init, run as root, follows no links "+
		"in paths the postgres user may control: name the real directory", e.Path)
}

// openDir opens the absolute directory path without following any symlink,
// as an O_PATH descriptor: a parent for sub, lstat and names.
// With create, missing components are made 0755 and left to the caller
// (root), as MkdirAll would; existing ones are left as they are.
func openDir(path string, create bool) (*safeDir, error) {
	if !strings.HasPrefix(path, "/") {
		return nil, fmt.Errorf("open %s: not an absolute path", path)
	}
	fd, err := unix.Open("/", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open /: %w", err)
	}
	cur := ""
	for _, name := range strings.Split(path, "/") {
		if name == "" || name == "." {
			continue
		}
		cur += "/" + name
		next, err := openat2(fd, name, unix.O_PATH)
		if errors.Is(err, unix.ENOENT) && create {
			if err = unix.Mkdirat(fd, name, 0o755); err != nil && !errors.Is(err, unix.EEXIST) {
				unix.Close(fd)
				return nil, fmt.Errorf("create %s: %w", cur, err)
			}
			next, err = openat2(fd, name, unix.O_PATH)
		}
		unix.Close(fd)
		if err != nil {
			if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) || errors.Is(err, unix.EXDEV) {
				return nil, &LinkError{Path: cur}
			}
			return nil, fmt.Errorf("open %s: %w", cur, err)
		}
		fd = next
	}
	return &safeDir{fd: fd, path: path}, nil
}

// openat2Dir opens a directory for reading, fchown and fsync.
func openat2Dir(dirfd int, name string) (int, error) { return openat2(dirfd, name, unix.O_RDONLY) }

// openat2 opens the directory name in dirfd; O_PATH needs only search
// permission on the path, for the components the walk passes through.
func openat2(dirfd int, name string, mode int) (int, error) {
	return unix.Openat2(dirfd, name, &unix.OpenHow{
		Flags:   uint64(mode | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC),
		Resolve: walkResolve,
	})
}

// setOwner gives the object behind fd its mode and owner.
func setOwner(fd int, mode os.FileMode, own owner) error {
	if err := unix.Fchown(fd, own.uid, own.gid); err != nil {
		return fmt.Errorf("give it to the instance's owner: %w", err)
	}
	if err := unix.Fchmod(fd, uint32(mode.Perm())); err != nil {
		return fmt.Errorf("set its mode: %w", err)
	}
	return nil
}

func (d *safeDir) Close() { unix.Close(d.fd) }

// own sets the directory's own mode and owner (through its descriptor).
func (d *safeDir) own(mode os.FileMode, o owner) error {
	if err := setOwner(d.fd, mode, o); err != nil {
		return fmt.Errorf("%s: %w", d.path, err)
	}
	return nil
}

// sub opens (with create, makes) the directory name inside d.
func (d *safeDir) sub(name string, create bool, mode os.FileMode, o owner) (*safeDir, error) {
	fd, err := openat2Dir(d.fd, name)
	if errors.Is(err, unix.ENOENT) && create {
		if err = unix.Mkdirat(d.fd, name, uint32(mode.Perm())); err == nil || errors.Is(err, unix.EEXIST) {
			fd, err = openat2Dir(d.fd, name)
		}
	}
	p := d.path + "/" + name
	if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) {
		return nil, &LinkError{Path: p}
	}
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", p, err)
	}
	s := &safeDir{fd: fd, path: p}
	if err := s.own(mode, o); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// lstat reports what name is in d, without following a symlink; ok is false
// when it does not exist.
func (d *safeDir) lstat(name string) (st unix.Stat_t, ok bool, err error) {
	err = unix.Fstatat(d.fd, name, &st, unix.AT_SYMLINK_NOFOLLOW)
	if errors.Is(err, unix.ENOENT) {
		return st, false, nil
	}
	if err != nil {
		return st, false, fmt.Errorf("stat %s/%s: %w", d.path, name, err)
	}
	return st, true, nil
}

// names lists the directory's entries.
func (d *safeDir) names() ([]string, error) {
	fd, err := unix.Openat(d.fd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", d.path, err)
	}
	f := os.NewFile(uintptr(fd), d.path)
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", d.path, err)
	}
	return names, nil
}

// remove unlinks the file name (a symlink itself, never its target).
func (d *safeDir) remove(name string) error {
	if err := unix.Unlinkat(d.fd, name, 0); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("remove %s/%s: %w", d.path, name, err)
	}
	return nil
}

// writeFile replaces name durably: a new file under a random name (O_EXCL,
// O_NOFOLLOW: nothing planted there is opened), given its owner and mode on
// the descriptor before any content is written, fsynced, renamed over name
// (a symlink at name is replaced, not followed), and the directory fsynced.
func (d *safeDir) writeFile(name, content string, mode os.FileMode, o owner) error {
	var rnd [8]byte
	rand.Read(rnd[:])
	tmp := "." + name + ".pg-standby-" + hex.EncodeToString(rnd[:])
	fd, err := unix.Openat(d.fd, tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("write %s/%s: %w", d.path, name, err)
	}
	f := os.NewFile(uintptr(fd), d.path+"/"+tmp)
	err = setOwner(fd, mode, o)
	if err == nil {
		_, err = f.WriteString(content)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = unix.Renameat(d.fd, tmp, d.fd, name)
	}
	if err == nil {
		err = unix.Fsync(d.fd)
	}
	if err != nil {
		unix.Unlinkat(d.fd, tmp, 0)
		return fmt.Errorf("write %s/%s: %w", d.path, name, err)
	}
	return nil
}

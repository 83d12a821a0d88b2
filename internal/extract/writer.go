package extract

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/pg-standby/pg-standby/internal/directio"
	"github.com/pg-standby/pg-standby/internal/tarstream"
)

// Writer writes one archive's members under root, each under its member
// name. It is the last stage of a chain and implements tarstream.Stage.
type Writer struct {
	cfg    *Config
	res    *Result
	root   *os.Root
	prefix string            // manifest path of root: "" or "pg_tblspc/<oid>/"
	links  map[string]string // the only symlinks allowed: member name → local target

	out *directio.File // the member being written

	dirFile *os.File // the directory of the last member, see dirOf
	dirName string
}

// NewWriter returns a Writer for one archive. prefix is the manifest path of
// root ("" for the data directory, "pg_tblspc/<oid>/" for a tablespace).
// links lists the symbolic links the archive may create and where they must
// point locally (pg_tblspc/<oid> → mapped tablespace location).
func NewWriter(cfg *Config, res *Result, root *os.Root, prefix string, links map[string]string) *Writer {
	return &Writer{cfg: cfg, res: res, root: root, prefix: prefix, links: links}
}

func (w *Writer) where(name string) string { return path.Join(w.root.Name(), name) }

// Write implements tarstream.Stage.
func (w *Writer) Write(part tarstream.Part, m *tarstream.Member, p []byte) error {
	switch part {
	case tarstream.Header:
		if err := w.throughLink(m.Name); err != nil {
			return err
		}
		switch m.Type {
		case tarstream.Dir:
			return w.dir(m.Name)
		case tarstream.Symlink:
			return w.symlink(m)
		default:
			return w.open(m)
		}
	case tarstream.Contents:
		return w.out.Write(p)
	case tarstream.Trailer:
		if m.Type == tarstream.File {
			return w.finish(m)
		}
	}
	return nil
}

// WriteFrom implements tarstream.SourceStage: contents go from the network
// straight into the write buffers.
func (w *Writer) WriteFrom(m *tarstream.Member, src tarstream.Source, n int) error {
	return w.out.Fill(src, n)
}

// throughLink refuses a member below one of the archive's tablespace links:
// tablespace files come in the tablespace's own archive.
func (w *Writer) throughLink(name string) error {
	for link := range w.links {
		if strings.HasPrefix(name, link+"/") {
			return &ForbiddenError{Err: fmt.Errorf("archive member %q lies below the tablespace link %s: "+
				"a tablespace's files come in its own archive", w.prefix+name, link)}
		}
	}
	return nil
}

func (w *Writer) dir(name string) error {
	w.res.Dirs[w.prefix+name] = true
	err := w.root.Mkdir(name, w.cfg.DirMode)
	if err == nil {
		return nil
	}
	if !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("create directory %s: %w", w.where(name), err)
	}
	fi, err := w.root.Lstat(name)
	if err != nil {
		return fmt.Errorf("create directory %s: %w", w.where(name), err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("create directory %s: a %s is in the way; it is not part of this backup's data, remove it by hand", w.where(name), kind(fi))
	}
	if fi.Mode().Perm() != w.cfg.DirMode {
		if err := w.root.Chmod(name, w.cfg.DirMode); err != nil {
			return fmt.Errorf("set mode of %s: %w", w.where(name), err)
		}
	}
	return nil
}

func (w *Writer) symlink(m *tarstream.Member) error {
	target, ok := w.links[m.Name]
	if !ok {
		return &ForbiddenError{Err: fmt.Errorf("archive member %q is a symbolic link to %q: only pg_tblspc/<oid> links to known tablespaces are allowed", w.prefix+m.Name, m.Linkname)}
	}
	return EnsureSymlink(w.root, m.Name, target)
}

// EnsureSymlink makes name inside root a symbolic link to target, replacing
// an older link but never anything else.
func EnsureSymlink(root *os.Root, name, target string) error {
	fi, err := root.Lstat(name)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return fmt.Errorf("inspect %s: %w", path.Join(root.Name(), name), err)
	case fi.Mode()&fs.ModeSymlink == 0:
		return fmt.Errorf("create link %s: a %s is in the way; remove it by hand", path.Join(root.Name(), name), kind(fi))
	default:
		if old, err := root.Readlink(name); err == nil && old == target {
			return nil
		}
		if err := root.Remove(name); err != nil {
			return fmt.Errorf("replace link %s: %w", path.Join(root.Name(), name), err)
		}
	}
	if err := root.Symlink(target, name); err != nil {
		return fmt.Errorf("create link %s -> %s: %w", path.Join(root.Name(), name), target, err)
	}
	return nil
}

func (w *Writer) open(m *tarstream.Member) error {
	local := m.Name
	dir, base, err := w.dirOf(local)
	if err != nil {
		return fmt.Errorf("write %s: %w", w.where(local), err)
	}
	// Most members are new: create first, look only when something is there.
	oldSize := int64(-1)
	f, err := openAt(dir, base, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL, uint32(w.cfg.FileMode))
	if errors.Is(err, fs.ErrExist) {
		f, oldSize, err = w.reuse(dir, base)
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", w.where(local), err)
	}
	w.out = w.cfg.Files.OpenSized(f, w.where(local), oldSize, m.Size)
	return nil
}

// reuse opens a regular file an earlier attempt left, for its size; it looks
// before it opens, so nothing else is ever opened.
func (w *Writer) reuse(dir *os.File, base string) (*os.File, int64, error) {
	var st unix.Stat_t
	if err := unix.Fstatat(int(dir.Fd()), base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return nil, 0, &os.PathError{Op: "lstat", Path: dir.Name() + "/" + base, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, 0, fmt.Errorf("a %s is in the way; remove it by hand", kindOf(st.Mode))
	}
	f, err := openAt(dir, base, unix.O_RDWR, 0)
	if err == nil && os.FileMode(st.Mode&0o777) != w.cfg.FileMode {
		if err = f.Chmod(w.cfg.FileMode); err != nil {
			f.Close()
		}
	}
	return f, st.Size, err
}

// openAt opens base, one name in dir, never following a link, as os.Root
// opens it; but as os.NewFile's file, which Go does not offer its poller: an
// os.Root file is offered, at the cost of an epoll_ctl and four fcntl that
// can only fail for a regular file (a third of a small member's syscalls).
func openAt(dir *os.File, base string, flags int, perm uint32) (*os.File, error) {
	name := dir.Name() + "/" + base
	if base == "" || base == "." || base == ".." || strings.Contains(base, "/") {
		return nil, &os.PathError{Op: "open", Path: name, Err: fs.ErrInvalid}
	}
	fd, err := unix.Openat(int(dir.Fd()), base, flags|unix.O_NOFOLLOW|unix.O_CLOEXEC, perm)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: name, Err: err}
	}
	return os.NewFile(uintptr(fd), name), nil
}

// dirOf returns the directory holding name, open, and the name inside it.
// The last directory stays open: members arrive directory by directory, and
// one openat in it is cheaper than walking the path again from the root.
func (w *Writer) dirOf(name string) (*os.File, string, error) {
	d, base := path.Split(name)
	d = path.Clean(d)
	if w.dirFile != nil && w.dirName == d {
		return w.dirFile, base, nil
	}
	w.closeDir()
	f, err := w.root.Open(d)
	if err != nil {
		return nil, "", err
	}
	w.dirFile, w.dirName = f, d
	return f, base, nil
}

func (w *Writer) closeDir() {
	if w.dirFile != nil {
		w.dirFile.Close()
		w.dirFile, w.dirName = nil, ""
	}
}

func (w *Writer) finish(m *tarstream.Member) error {
	out := w.out
	w.out = nil
	if err := out.Finish(m.Size); err != nil {
		return err
	}
	return w.cfg.Syncer.Err()
}

// Close releases a member left open by a truncated archive; its file is not
// synced and the parser reports the truncation.
func (w *Writer) Close() error {
	w.closeDir()
	if w.out != nil {
		w.out.Abort()
		w.out = nil
	}
	return nil
}

// kindOf is kind for a stat mode.
func kindOf(mode uint32) string {
	switch mode & unix.S_IFMT {
	case unix.S_IFDIR:
		return "directory"
	case unix.S_IFLNK:
		return "symbolic link"
	case unix.S_IFREG:
		return "file"
	default:
		return "special file"
	}
}

func kind(fi fs.FileInfo) string {
	switch {
	case fi.IsDir():
		return "directory"
	case fi.Mode()&fs.ModeSymlink != 0:
		return "symbolic link"
	case fi.Mode().IsRegular():
		return "file"
	default:
		return "special file"
	}
}

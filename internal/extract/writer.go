package extract

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strings"

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

	dirRoot *os.Root // the directory of the last member, see dirOf
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
	f, err := dir.OpenFile(base, os.O_RDWR|os.O_CREATE|os.O_EXCL, w.cfg.FileMode)
	if errors.Is(err, fs.ErrExist) {
		f, oldSize, err = w.reuse(dir, local, base)
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", w.where(local), err)
	}
	w.out = w.cfg.Files.OpenSized(f, w.where(local), oldSize, m.Size)
	return nil
}

// reuse opens a regular file an earlier attempt left, for its size.
func (w *Writer) reuse(dir *os.Root, local, base string) (*os.File, int64, error) {
	fi, err := dir.Lstat(base)
	if err != nil {
		return nil, 0, err
	}
	if !fi.Mode().IsRegular() {
		return nil, 0, fmt.Errorf("a %s is in the way; remove it by hand", kind(fi))
	}
	f, err := dir.OpenFile(base, os.O_RDWR, 0)
	if err == nil && fi.Mode().Perm() != w.cfg.FileMode {
		if err = f.Chmod(w.cfg.FileMode); err != nil {
			f.Close()
		}
	}
	return f, fi.Size(), err
}

// dirOf returns the directory holding name and the name inside it. The last
// directory stays open: members arrive directory by directory, and one
// openat in it is cheaper than walking the path again from the root.
func (w *Writer) dirOf(name string) (*os.Root, string, error) {
	d, base := path.Split(name)
	d = path.Clean(d)
	if d == "." {
		return w.root, base, nil
	}
	if w.dirRoot != nil && w.dirName == d {
		return w.dirRoot, base, nil
	}
	w.closeDir()
	r, err := w.root.OpenRoot(d)
	if err != nil {
		return nil, "", err
	}
	w.dirRoot, w.dirName = r, d
	return r, base, nil
}

func (w *Writer) closeDir() {
	if w.dirRoot != nil {
		w.dirRoot.Close()
		w.dirRoot, w.dirName = nil, ""
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

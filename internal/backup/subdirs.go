package backup

import (
	"fmt"
	"os"
	"path"
)

// subdirs opens a root's directories one at a time for paths that come
// grouped by directory (sorted, or in archive order). An os.Root walks
// every component of a path on each call: for base/5/16384 that is two
// openat, a fstatat and two close per file, a resume's main per-file cost
// at 60,000 files.
type subdirs struct {
	root *os.Root // of the last call
	dir  string   // of sub
	sub  *os.Root
	err  error // opening dir
}

// in returns the root of rel's directory in root, reached through
// directories only (a link is never followed), and rel's last element. The
// directory's root stays valid until a call for another directory or root,
// or Close.
func (s *subdirs) in(root *os.Root, rel string) (*os.Root, string, error) {
	if root != s.root {
		s.Close()
		s.root = root
	}
	dir, name := path.Split(rel)
	if dir == "" {
		return root, name, nil
	}
	dir = dir[:len(dir)-1]
	if dir != s.dir {
		if s.sub != nil {
			s.sub.Close()
		}
		s.dir = dir
		s.sub, s.err = openDir(root, dir)
	}
	return s.sub, name, s.err
}

// Close closes the directory last opened.
func (s *subdirs) Close() {
	if s.sub != nil {
		s.sub.Close()
	}
	*s = subdirs{}
}

// openDir opens dir in r one component at a time, refusing any that is not
// a directory.
func openDir(r *os.Root, dir string) (*os.Root, error) {
	if d := path.Dir(dir); d != "." {
		parent, err := openDir(r, d)
		if err != nil {
			return nil, err
		}
		defer parent.Close()
		r = parent
	}
	base := path.Base(dir)
	fi, err := r.Lstat(base)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("%s is not a directory (%v)", dir, fi.Mode().Type())
	}
	return r.OpenRoot(base)
}

// openFile opens rel in r for writing, reached through directories only,
// as subdirs does: for the few files opened out of their directory's turn.
func openFile(r *os.Root, rel string) (*os.File, error) {
	dir, name := path.Split(rel)
	if dir != "" {
		d, err := openDir(r, dir[:len(dir)-1])
		if err != nil {
			return nil, err
		}
		defer d.Close()
		r = d
	}
	return r.OpenFile(name, os.O_RDWR, 0)
}

package testpg

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// A process-wide base directory (mode 0711, so traversable but not listable)
// holds every directory TempDir makes. It is removed when the last of them is.
var (
	baseMu   sync.Mutex
	baseDir  string
	baseRefs int
)

// maxParentLen keeps unix socket paths (dir + "/.s.PGSQL.NNNNN", at most 107
// bytes) short: a longer $TMPDIR is replaced by /tmp.
const maxParentLen = 40

func acquireBase() (string, error) {
	baseMu.Lock()
	defer baseMu.Unlock()
	if baseRefs == 0 {
		parent := os.TempDir()
		if len(parent) > maxParentLen || traversableErr(parent) != nil {
			parent = "/tmp"
		}
		dir, err := os.MkdirTemp(parent, "testpg-")
		if err != nil {
			return "", fmt.Errorf("create base directory: %w", err)
		}
		if err := os.Chmod(dir, 0o711); err != nil {
			_ = os.Remove(dir)
			return "", fmt.Errorf("chmod base directory: %w", err)
		}
		if err := traversableErr(dir); err != nil {
			_ = os.Remove(dir)
			return "", err
		}
		baseDir = dir
	}
	baseRefs++
	return baseDir, nil
}

func releaseBase() {
	baseMu.Lock()
	defer baseMu.Unlock()
	baseRefs--
	if baseRefs == 0 {
		_ = os.Remove(baseDir)
		baseDir = ""
	}
}

// Directories are removed per test, all together, in a cleanup registered by
// the test's first TempDir call. Start makes its directories before it starts
// the server, so every server of a test is stopped before any directory of that
// test is removed — also tablespace locations and backup targets made later.
var (
	regMu sync.Mutex
	reg   = map[testing.TB]*[]string{}
)

func register(t testing.TB, dir string) {
	regMu.Lock()
	defer regMu.Unlock()
	if dirs, ok := reg[t]; ok {
		*dirs = append(*dirs, dir)
		return
	}
	dirs := &[]string{dir}
	reg[t] = dirs
	t.Cleanup(func() {
		regMu.Lock()
		delete(reg, t)
		list := *dirs
		regMu.Unlock()
		for i := len(list) - 1; i >= 0; i-- {
			if err := os.RemoveAll(list[i]); err != nil {
				t.Errorf("testpg: remove %s: %v", list[i], err)
			}
			releaseBase()
		}
	})
}

// TempDir returns a fresh directory that the postgres user can read and write
// (owned by postgres when running as root, mode 0700, parents traversable),
// removed in t.Cleanup after the servers of the test have stopped. Use it for
// data dirs, tablespace locations and backup targets.
func TempDir(t testing.TB) string {
	t.Helper()
	dir, err := makeDir(t.Name())
	if err != nil {
		t.Fatalf("testpg: %v", err)
	}
	register(t, dir)
	return dir
}

// makeDir makes a fresh postgres-owned directory under the base directory; the
// caller must register it (or remove it and call releaseBase).
func makeDir(name string) (string, error) {
	base, err := acquireBase()
	if err != nil {
		return "", err
	}
	dir, err := os.MkdirTemp(base, shortName(name)+"-")
	if err == nil {
		err = os.Chmod(dir, 0o700)
	}
	if err == nil {
		err = chownOne(dir)
	}
	if err != nil {
		if dir != "" {
			_ = os.RemoveAll(dir)
		}
		releaseBase()
		return "", fmt.Errorf("create temporary directory: %w", err)
	}
	return dir, nil
}

// shortName turns a test name into a short, shell- and path-safe prefix.
func shortName(name string) string {
	var b strings.Builder
	for _, r := range name {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
		if b.Len() >= 20 {
			break
		}
	}
	if b.Len() == 0 {
		return "pg"
	}
	return b.String()
}

// chownOne gives one path (not following a symlink) to the postgres user when
// running as root.
func chownOne(path string) error {
	u, err := runAsUser()
	if err != nil || u == nil {
		return err
	}
	if err := os.Lchown(path, int(u.uid), int(u.gid)); err != nil {
		return fmt.Errorf("chown %s: %w", path, err)
	}
	return nil
}

// Chown recursively gives path to the postgres user when running as root
// (no-op otherwise). It follows no symlinks, except that it also chowns the
// targets of the pg_tblspc/* links of a data directory. Root-owned parent
// directories inside the temporary directory (e.g. from t.TempDir) are made
// traversable (o+x); any other untraversable parent fails the test.
func Chown(t testing.TB, path string) {
	t.Helper()
	if err := chownTree(path); err != nil {
		t.Fatalf("testpg: %v", err)
	}
}

func chownTree(path string) error {
	u, err := runAsUser()
	if err != nil || u == nil {
		return err
	}
	roots := []string{path}
	tblspc := filepath.Join(path, "pg_tblspc")
	if entries, err := os.ReadDir(tblspc); err == nil {
		for _, e := range entries {
			if e.Type()&fs.ModeSymlink == 0 {
				continue
			}
			target, err := os.Readlink(filepath.Join(tblspc, e.Name()))
			if err != nil {
				return fmt.Errorf("tablespace link: %w", err)
			}
			if !filepath.IsAbs(target) {
				target = filepath.Join(tblspc, target)
			}
			roots = append(roots, target)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("read %s: %w", tblspc, err)
	}
	for _, root := range roots {
		if err := makeTraversable(filepath.Dir(root)); err != nil {
			return err
		}
		err := filepath.WalkDir(root, func(p string, _ fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			return os.Lchown(p, int(u.uid), int(u.gid))
		})
		if err != nil {
			return fmt.Errorf("chown %s: %w", root, err)
		}
	}
	return nil
}

// traversableErr reports whether the postgres user (or the current user when
// not root) can reach dir: every directory on the way needs o+x, unless it is
// owned by postgres.
func traversableErr(dir string) error {
	u, err := runAsUser()
	if err != nil || u == nil {
		return err
	}
	return walkParents(dir, func(p string, fi os.FileInfo, uid uint32) error {
		if fi.Mode().Perm()&0o001 == 0 && uid != u.uid {
			return fmt.Errorf("directory %s (mode %v) is not traversable by user postgres", p, fi.Mode().Perm())
		}
		return nil
	})
}

// makeTraversable adds o+x to the root-owned directories on the way to dir that
// lie inside the temporary directory, and fails on any other untraversable one.
func makeTraversable(dir string) error {
	u, err := runAsUser()
	if err != nil || u == nil {
		return err
	}
	var tmpRoots []string
	for _, r := range []string{os.TempDir(), "/tmp"} {
		if rr, err := filepath.EvalSymlinks(r); err == nil {
			tmpRoots = append(tmpRoots, rr)
		}
	}
	return walkParents(dir, func(p string, fi os.FileInfo, uid uint32) error {
		if fi.Mode().Perm()&0o001 != 0 || uid == u.uid {
			return nil
		}
		for _, r := range tmpRoots {
			if uid == 0 && strings.HasPrefix(p, r+"/") {
				if err := os.Chmod(p, fi.Mode().Perm()|0o001); err != nil {
					return fmt.Errorf("make %s traversable: %w", p, err)
				}
				return nil
			}
		}
		return fmt.Errorf("directory %s (mode %v) is not traversable by user postgres; use testpg.TempDir", p, fi.Mode().Perm())
	})
}

// walkParents calls fn for dir and each of its ancestors (symlinks resolved).
func walkParents(dir string, fn func(p string, fi os.FileInfo, uid uint32) error) error {
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return fmt.Errorf("resolve %s: %w", dir, err)
	}
	for p := real; ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err != nil {
			return fmt.Errorf("stat %s: %w", p, err)
		}
		var uid uint32
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			uid = st.Uid
		}
		if err := fn(p, fi, uid); err != nil {
			return err
		}
		if p == "/" || p == "." {
			return nil
		}
	}
}

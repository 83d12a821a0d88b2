package extract

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
)

// Prune removes from root whatever an earlier attempt wrote that this backup
// did not: entries that are neither in res nor kept by keep (the instance's
// own configuration, signal files, pg_wal). It returns the manifest paths it
// removed. Links are removed, never followed.
func Prune(root *os.Root, prefix string, res *Result, keep func(path string, isDir bool) bool) ([]string, error) {
	var removed []string
	var walk func(dir string) error
	walk = func(dir string) error {
		f, err := root.Open(dir)
		if err != nil {
			return fmt.Errorf("read directory %s: %w", path.Join(root.Name(), dir), err)
		}
		entries, err := f.ReadDir(-1)
		f.Close()
		if err != nil {
			return fmt.Errorf("read directory %s: %w", path.Join(root.Name(), dir), err)
		}
		for _, e := range entries {
			name := e.Name()
			if dir != "." {
				name = dir + "/" + name
			}
			mpath := prefix + name
			isDir := e.IsDir()
			if keep != nil && keep(mpath, isDir) {
				continue
			}
			if isDir && res.Dirs[mpath] {
				if err := walk(name); err != nil {
					return err
				}
				continue
			}
			if _, ok := res.Files[mpath]; ok && e.Type().IsRegular() {
				continue
			}
			if _, ok := res.Links[mpath]; ok && e.Type()&fs.ModeSymlink != 0 {
				continue
			}
			if err := root.RemoveAll(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("remove %s left by an earlier attempt: %w", path.Join(root.Name(), name), err)
			}
			removed = append(removed, mpath)
		}
		return nil
	}
	return removed, walk(".")
}

package durable

import (
	"fmt"
	"os"
)

// SyncDir fsyncs the directory name inside root, which makes the creation,
// rename or removal of its entries durable (fsync(2) on a directory).
func SyncDir(root *os.Root, name string) error {
	d, err := root.Open(name)
	if err != nil {
		return fmt.Errorf("open directory %s for fsync: %w", name, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync directory %s: %w", d.Name(), err)
	}
	return nil
}

// SyncPath fsyncs a file or directory by absolute path.
func SyncPath(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("open %s for fsync: %w", path, err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", path, err)
	}
	return nil
}

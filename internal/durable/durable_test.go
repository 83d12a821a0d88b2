package durable

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestWriteFile(t *testing.T) {
	dir := t.TempDir()
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	if err := WriteFile(root, "f", []byte("a longer first content"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(root, "f", []byte("second"), 0o600); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, "f"))
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "f")); string(b) != "second" || fi.Mode().Perm() != 0o640 {
		t.Errorf("after a rewrite: %q, mode %v; want truncated to \"second\", the first mode kept", b, fi.Mode().Perm())
	}
	if err := SyncDir(root, "."); err != nil {
		t.Errorf("SyncDir: %v", err)
	}
	// Nothing outside root, and every error names the file.
	for _, name := range []string{"../escape", "missing/f"} {
		if err := WriteFile(root, name, nil, 0o600); err == nil || !strings.Contains(err.Error(), "write "+name) {
			t.Errorf("WriteFile(%s) = %v, want an error naming it", name, err)
		}
	}
	if _, err := os.Lstat(filepath.Join(filepath.Dir(dir), "escape")); err == nil {
		t.Error("WriteFile wrote outside its root")
	}
	if err := SyncDir(root, "missing"); err == nil || !strings.Contains(err.Error(), "open directory missing for fsync") {
		t.Errorf("SyncDir(missing) = %v", err)
	}
	if err := SyncPath(dir); err != nil {
		t.Errorf("SyncPath(%s): %v", dir, err)
	}
	if err := SyncPath(filepath.Join(dir, "missing")); err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("SyncPath(missing) = %v, want not-exist", err)
	}
}

// TestSyncerHoldsWindow: files wait, open, until a window is full.
func TestSyncerHoldsWindow(t *testing.T) {
	dir := t.TempDir()
	s := NewSyncer(1, 3)
	var files []*os.File
	for i := range 2 {
		f, err := os.Create(filepath.Join(dir, string(rune('a'+i))))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
		s.Sync(f, 0)
	}
	for _, f := range files {
		if _, err := f.Write([]byte("x")); err != nil {
			t.Errorf("%s closed before its window was full: %v", f.Name(), err)
		}
	}
	if err := s.Wait(); err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if _, err := f.Write([]byte("y")); err == nil {
			t.Errorf("%s still open after Wait", f.Name())
		}
	}
}

// TestSyncerError: a failed fsync is reported by Err as soon as a worker
// meets it, and by Wait, naming the file; the first error wins.
func TestSyncerError(t *testing.T) {
	dir := t.TempDir()
	s := NewSyncer(1, 1)
	var names []string
	for i := range 2 {
		f, err := os.Create(filepath.Join(dir, string(rune('a'+i))))
		if err != nil {
			t.Fatal(err)
		}
		f.Close() // fsync of a closed file fails
		names = append(names, f.Name())
		s.Sync(f, 0)
		if i == 0 {
			for deadline := time.Now().Add(10 * time.Second); s.Err() == nil; time.Sleep(time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatal("Err still nil 10s after a failing fsync was handed on")
				}
			}
		}
	}
	err := s.Wait()
	if err == nil || !strings.Contains(err.Error(), "fsync "+names[0]) || !errors.Is(err, os.ErrClosed) {
		t.Fatalf("Wait = %v, want the first file's fsync error", err)
	}
	if err2 := s.Err(); err2 != err {
		t.Errorf("Err after Wait = %v, want %v", err2, err)
	}
}

func TestUseSyncfsMissing(t *testing.T) {
	s := NewSyncer(1, 1)
	defer s.Wait()
	missing := filepath.Join(t.TempDir(), "missing")
	if err := s.UseSyncfs(missing); err == nil || !strings.Contains(err.Error(), "open "+missing+" for syncfs") {
		t.Errorf("UseSyncfs(missing) = %v", err)
	}
}

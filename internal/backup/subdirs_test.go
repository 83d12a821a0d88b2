package backup

import (
	"os"
	"path/filepath"
	"testing"
)

// TestSubdirs: a directory's files share one opened root, and a link on the
// way is refused, not followed (fileHas's rule).
func TestSubdirs(t *testing.T) {
	d := t.TempDir()
	for _, p := range []string{"base/5/16384", "base/5/16385", "base/6/1", "other/x"} {
		if err := os.MkdirAll(filepath.Join(d, filepath.Dir(p)), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, p), []byte("abc"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(filepath.Join(d, "other"), filepath.Join(d, "base", "7")); err != nil {
		t.Fatal(err)
	}
	root, err := os.OpenRoot(d)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	var s subdirs
	defer s.Close()
	r1, name, err := s.in(root, "base/5/16384")
	if err != nil || name != "16384" {
		t.Fatalf("in(base/5/16384) = %q, %v", name, err)
	}
	if r2, _, _ := s.in(root, "base/5/16385"); r2 != r1 {
		t.Error("two files of base/5 opened their directory twice")
	}
	if !fileHas(&s, root, "base/6/1", 3) || fileHas(&s, root, "base/6/1", 4) || fileHas(&s, root, "base/6/missing", 3) {
		t.Error("fileHas is wrong about base/6/1")
	}
	if r, name, err := s.in(root, "PG_VERSION"); err != nil || r != root || name != "PG_VERSION" {
		t.Errorf("a top-level name is not in the root itself: %v, %q, %v", r == root, name, err)
	}
	if _, _, err := s.in(root, "base/7/x"); err == nil {
		t.Error("base/7, a link, was followed")
	}
	if fileHas(&s, root, "base/7/x", 3) {
		t.Error("fileHas followed the link base/7")
	}
}

package extract

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/pg-standby/pg-standby/internal/manifest"
)

// TestPrune removes what the backup did not write, walks only its
// directories, keeps what keep says, and removes a link it did not make
// without following it.
func TestPrune(t *testing.T) {
	dir, outside := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "victim"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"base/1/16384", "base/1/stray", "stray/x", "own.conf"} {
		if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(p)), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, p), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(outside, filepath.Join(dir, "base", "link")); err != nil {
		t.Fatal(err)
	}
	res := NewResult()
	res.Dirs["base"], res.Dirs["base/1"] = true, true
	res.Files["base/1/16384"] = manifest.Observed{}
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	removed, err := Prune(root, "", res, func(p string, _ bool) bool { return p == "own.conf" })
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(removed)
	if want := []string{"base/1/stray", "base/link", "stray"}; !slices.Equal(removed, want) {
		t.Errorf("removed %q, want %q", removed, want)
	}
	for _, p := range []string{"base/1/16384", "own.conf"} {
		if _, err := os.Lstat(filepath.Join(dir, p)); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
	if _, err := os.Stat(filepath.Join(outside, "victim")); err != nil {
		t.Errorf("the link's target lost its file: %v", err)
	}
}

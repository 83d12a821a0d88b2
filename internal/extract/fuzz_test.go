package extract_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	fp "github.com/pg-standby/pg-standby/internal/fakeprimary"
	"github.com/pg-standby/pg-standby/internal/oracle"
)

// FuzzExtract runs arbitrary bytes through the tar parser into a Writer on a
// temporary root, as one archive of a backup. Next to the root lies a
// directory that must never change, and the root holds traps an earlier
// attempt (or an attacker with write access) might have left: a relative
// and an absolute link pointing outside, and the one link the archive is
// allowed to create (pg_tblspc/16385) also points outside. Whatever the
// bytes, nothing outside the root may be created, changed or removed, and
// the root may hold no link but those, and no special file.
func FuzzExtract(f *testing.F) {
	seeds := [][]fp.Entry{
		{{Name: "global/", Type: '5'}, {Name: "global/pg_control", Data: "control"}, {Name: "base/1/1259", Data: "rel"}},
		{{Name: "../outside/victim", Data: "evil"}},
		{{Name: "/tmp/evil", Data: "evil"}},
		{{Name: "escape", Type: '2', Linkname: "../outside"}, {Name: "escape/victim", Data: "evil"}},
		{{Name: "pg_tblspc/16385", Type: '2', Linkname: "/"}, {Name: "pg_tblspc/16385/victim", Data: "evil"}},
		{{Name: "planted/victim", Data: "evil"}},
		{{Name: "absolute/evil", Data: "evil"}},
		{{Name: "planted", Data: "replace the link"}},
		{{Name: "link", Type: '1', Linkname: "../outside/victim"}},
		{{Name: "dev", Type: '3'}},
		{{Name: "big", Data: "x", Size: 1 << 40}},
	}
	for _, s := range seeds {
		f.Add(fp.Tar(s, false), 512)
	}
	f.Add(fp.Tar(seeds[0], true), 7)
	f.Fuzz(func(t *testing.T, data []byte, chunk int) {
		if chunk <= 0 || chunk > 1<<16 {
			chunk = 512
		}
		parent := t.TempDir()
		rootDir, outside := filepath.Join(parent, "root"), filepath.Join(parent, "outside")
		for _, d := range []string{rootDir, outside, filepath.Join(rootDir, "pg_tblspc")} {
			if err := os.Mkdir(d, 0o700); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(filepath.Join(outside, "victim"), []byte("must not change"), 0o600); err != nil {
			t.Fatal(err)
		}
		links := map[string]string{"planted": "../outside", "absolute": outside}
		for name, target := range links {
			if err := os.Symlink(target, filepath.Join(rootDir, name)); err != nil {
				t.Fatal(err)
			}
		}
		before := tree(t, parent, rootDir)

		root, err := os.OpenRoot(rootDir)
		if err != nil {
			t.Fatal(err)
		}
		defer root.Close()
		p, finish := newChain(t, root, map[string]string{"pg_tblspc/16385": outside})
		for len(data) > 0 {
			n := min(chunk, len(data))
			if _, err := p.Write(data[:n]); err != nil {
				break
			}
			data = data[n:]
		}
		finish()

		if after := tree(t, parent, rootDir); after != before {
			t.Fatalf("outside the root changed:\nbefore:\n%s\nafter:\n%s", before, after)
		}
		filepath.WalkDir(rootDir, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				t.Fatalf("walk %s: %v", path, err)
			}
			rel, _ := filepath.Rel(rootDir, path)
			switch typ := d.Type(); {
			case typ&fs.ModeSymlink != 0:
				if _, ok := links[rel]; !ok && rel != "pg_tblspc/16385" {
					t.Fatalf("link %s created", rel)
				}
			case typ&(fs.ModeDevice|fs.ModeNamedPipe|fs.ModeSocket|fs.ModeCharDevice) != 0:
				t.Fatalf("special file %s created", rel)
			}
			return nil
		})
	})
}

// tree renders everything under dir but skip (oracle.Snapshot).
func tree(t *testing.T, dir, skip string) string { t.Helper(); return oracle.Snapshot(t, dir, skip) }

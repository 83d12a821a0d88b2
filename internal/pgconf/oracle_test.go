package pgconf

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/pg-standby/pg-standby/internal/testpg"
)

// oracle runs the real server to ask it for a setting: "postgres -C name -D
// dir" reads the configuration exactly as at startup, prints the value of
// name and exits, without needing a real data directory.
type oracle struct {
	v        testpg.Version // whose postgres; as postgres when root (it refuses root)
	uid, gid int            // owner to give the files, or -1
}

func newOracle(t *testing.T, v testpg.Version) *oracle {
	t.Helper()
	v.Skip(t) // under -short too
	if os.Geteuid() != 0 {
		return &oracle{v: v, uid: -1, gid: -1}
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		t.Skip("running as root without a postgres user")
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &oracle{v: v, uid: uid, gid: gid}
}

// show returns the value the server reports for name with configuration
// directory dir, and false if the server refused the configuration.
func (o *oracle) show(t *testing.T, dir, name string) (string, bool, string) {
	t.Helper()
	cmd, err := o.v.PGCommand(context.Background(), "postgres", "-C", name, "-D", dir)
	if err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		var exit *exec.ExitError
		if !errors.As(err, &exit) {
			t.Fatalf("run postgres: %v", err)
		}
		return "", false, stderr.String()
	}
	return strings.TrimSuffix(stdout.String(), "\n"), true, stderr.String()
}

// chown hands the tree to the server's user so it can read it.
func (o *oracle) chown(t *testing.T, root string) {
	t.Helper()
	if o.uid < 0 {
		return
	}
	err := filepath.WalkDir(root, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, o.uid, o.gid)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestOracle compares Load with the real server on tricky files. Custom
// names (pgs.*) are used because the server accepts any value for them.
func TestOracle(t *testing.T) {
	testpg.ForEachVersion(t, func(t *testing.T, v testpg.Version) { oracleCases(t, newOracle(t, v)) })
}

func oracleCases(t *testing.T, o *oracle) {
	// t.TempDir's parents are private to root; the server's user must read.
	base, err := os.MkdirTemp("", "pgconf-oracle-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}

	syntax := func(line string) map[string]string {
		return map[string]string{"pg/postgresql.conf": line, "pg/conf.d": "<dir>"}
	}
	tests := []struct {
		name     string
		files    map[string]string
		symlinks map[string]string // link → target, relative to the case root
		names    []string
	}{
		{
			name: "tricky values",
			files: map[string]string{"pg/postgresql.conf": "" +
				"pgs.debian = '/var/lib/postgresql/15/main'\t\t# use data in another directory\n" +
				"pgs.noeq 'x y'\n" +
				`pgs.esc = 'a\tb\101\777\q''c\\d'` + "\n" +
				"pgs.units = 100MB\npgs.hex 0x1Fkb\npgs.neg = -1\npgs.real = 1.5e3\npgs.dot = .\n" +
				"pgs.path = foo-bar/baz:1.2\npgs.dotted = a.b.c\nPGS.Mixed = 'upper'\n" +
				"pgs.nul = 'ab\x00cd'\n" + `pgs.octnul = 'ab\0cd'` + "\n" +
				"pgs.utf8 = café\npgs.hash = 'a#b'#c\r\n" +
				"pgs.last = 'no newline'"},
			names: []string{"pgs.debian", "pgs.noeq", "pgs.esc", "pgs.units", "pgs.hex", "pgs.neg", "pgs.real",
				"pgs.dot", "pgs.path", "pgs.dotted", "pgs.mixed", "pgs.nul", "pgs.octnul", "pgs.utf8", "pgs.hash",
				"pgs.last", "pgs.missing"},
		},
		{name: "qualified id value", files: syntax("pgs.x = a.b\n"), names: []string{"pgs.x"}},
		{name: "exponent without dot", files: syntax("pgs.x = 1e5\n"), names: []string{"pgs.x"}},
		{name: "unit after real", files: syntax("pgs.x = 1.5ms\n"), names: []string{"pgs.x"}},
		{name: "dollar in name", files: syntax("pgs.a$b = 1\n"), names: []string{"pgs.x"}},
		{name: "two dots in name", files: syntax("pgs.a.b = 1\n"), names: []string{"pgs.x"}},
		{name: "unterminated string", files: syntax("pgs.x = 'abc\n"), names: []string{"pgs.x"}},
		{name: "form feed", files: syntax("pgs.x = 1\f\n"), names: []string{"pgs.x"}},
		{name: "number then dash", files: syntax("pgs.x = 02-a\n"), names: []string{"pgs.x"}},
		{name: "unquoted dotted include_dir", files: syntax("include_dir = conf.d\n"), names: []string{"pgs.x"}},
		{name: "unquoted include_dir with slash", files: syntax("include_dir = conf.d/\npgs.x = 1\n"), names: []string{"pgs.x"}},
		{
			name: "includes and postgresql.auto.conf",
			files: map[string]string{
				"pg/postgresql.conf": "pgs.a = main\npgs.b = main\npgs.c = main\npgs.d = main\n" +
					"include 'sub/inc.conf'\ninclude_dir 'conf.d'\ninclude_if_exists 'missing.conf'\n" +
					"include_if_exists 'opt.conf'\n",
				"pg/sub/inc.conf":           "pgs.b = inc\ninclude '../sub2/rel.conf'\n",
				"pg/sub2/rel.conf":          "pgs.e = rel\n",
				"pg/conf.d/10-b.conf":       "pgs.c = '10-b'\n",
				"pg/conf.d/02-a.conf":       "pgs.c = '02-a'\n",
				"pg/conf.d/B.conf":          "pgs.c = 'B'\npgs.f = B\n",
				"pg/conf.d/a.conf":          "pgs.c = 'a'\n",
				"pg/conf.d/.hidden.conf":    "pgs.c = 'hidden'\n",
				"pg/conf.d/x.conf.bak":      "pgs.c = 'bak'\n",
				"pg/conf.d/sub.conf/x.conf": "pgs.c = 'subdir'\n",
				"pg/opt.conf":               "pgs.d = opt\n",
				"pg/postgresql.auto.conf":   "pgs.a = 'auto'\n",
			},
			names: []string{"pgs.a", "pgs.b", "pgs.c", "pgs.d", "pgs.e", "pgs.f", "data_directory"},
		},
		{
			name: "data_directory in upper case is ignored",
			files: map[string]string{
				"pg/postgresql.conf":         "DATA_DIRECTORY = '{root}/other'\n",
				"pg/postgresql.auto.conf":    "pgs.w = pg\n",
				"other/postgresql.auto.conf": "pgs.w = other\n",
			},
			names: []string{"pgs.w", "data_directory"},
		},
		{
			name: "data_directory in lower case moves postgresql.auto.conf",
			files: map[string]string{
				"pg/postgresql.conf":         "data_directory = '{root}//other/.'  # comment\n",
				"pg/postgresql.auto.conf":    "pgs.w = pg\n",
				"other/postgresql.auto.conf": "pgs.w = other\n",
			},
			names: []string{"pgs.w", "data_directory"},
		},
		{name: "ten levels of includes", files: chainOf("pgs.level", 10), names: []string{"pgs.level"}},
		{name: "eleven levels of includes", files: chainOf("pgs.level", 11), names: []string{"pgs.level"}},
		{
			name: "include loop",
			files: map[string]string{
				"pg/postgresql.conf": "include 'a.conf'\n", "pg/a.conf": "include 'b.conf'\n", "pg/b.conf": "include 'a.conf'\n",
			},
			names: []string{"pgs.x"},
		},
		{
			name: "dot-dot after symlinked directory",
			files: map[string]string{
				"real/pg/postgresql.conf": "include '../x.conf'\n",
				"real/x.conf":             "pgs.s = physical\n",
				"x.conf":                  "pgs.s = lexical\n",
			},
			symlinks: map[string]string{"pg": "real/pg"},
			names:    []string{"pgs.s"},
		},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := filepath.Join(base, strconv.Itoa(i))
			files := map[string]string{}
			for k, v := range tt.files {
				files[k] = strings.ReplaceAll(v, "{root}", root)
			}
			writeTree(t, root, files)
			for link, target := range tt.symlinks {
				if err := os.Symlink(filepath.Join(root, target), filepath.Join(root, link)); err != nil {
					t.Fatal(err)
				}
			}
			o.chown(t, root)
			dir := filepath.Join(root, "pg")
			cfg, err := Load(filepath.Join(dir, "postgresql.conf"), "")
			for _, name := range tt.names {
				pgValue, pgOK, stderr := o.show(t, dir, name)
				if err != nil {
					if pgOK {
						t.Errorf("Load failed (%v) but postgres accepted the configuration, %s = %q", err, name, pgValue)
					}
					return // the server refuses the whole configuration; one name says so
				}
				var value string
				set := true
				if name == "data_directory" {
					value = cfg.DataDir()
				} else {
					var s Setting
					s, set = cfg.Get(name)
					value = s.Value
				}
				switch {
				case set != pgOK:
					t.Errorf("%s: Load set=%v value %q; postgres ok=%v value %q\n%s", name, set, value, pgOK, pgValue, stderr)
				case value != pgValue:
					t.Errorf("%s: Load %q, postgres %q", name, value, pgValue)
				}
			}
		})
	}
}

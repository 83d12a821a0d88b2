package pgconf

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestAttackBoundedReads: whatever the postgres user (or the primary, for
// postgresql.auto.conf) puts in an include position, Load returns at once
// with the reason, having read at most the bounds.
func TestAttackBoundedReads(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo.conf")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big.conf")
	os.WriteFile(big, []byte(strings.Repeat("#", MaxFileSize+1)), 0o644)
	justFits := filepath.Join(dir, "fits.conf")
	os.WriteFile(justFits, []byte(strings.Repeat("#", MaxFileSize)), 0o644)
	many := filepath.Join(dir, "many")
	os.Mkdir(many, 0o755)
	for i := 0; i <= MaxTreeFiles; i++ {
		os.WriteFile(filepath.Join(many, fmt.Sprintf("%04d.conf", i)), nil, 0o644)
	}
	// Nine includes of the 1 MiB file: 9 MiB in all, over the tree's 8 MiB.
	tree := filepath.Join(dir, "tree.conf")
	os.WriteFile(tree, []byte(strings.Repeat("include '"+justFits+"'\n", 9)), 0o644)

	cases := []struct{ conf, want string }{
		{"include '/dev/zero'", `read configuration file "/dev/zero" (included from "CONF" line 1): a character device, not a regular file`},
		{"include_if_exists '/dev/zero'", `a character device, not a regular file`},
		{"include '" + fifo + "'", `read configuration file "` + fifo + `" (included from "CONF" line 1): a FIFO, not a regular file`},
		{"include_dir '" + fifo + "'", `read configuration directory "` + fifo + `" (included from "CONF" line 1): not a directory`},
		{"include '" + big + "'", `larger than 1048576 bytes (no configuration file is that large)`},
		{"include '" + justFits + "'", ""},
		{"include '" + tree + "'", `the configuration's files hold more than 8388608 bytes in all`},
		{"include_dir '" + many + "'", `more than 1000 files in the configuration`},
	}
	for _, c := range cases {
		conf := filepath.Join(t.TempDir(), "postgresql.conf")
		os.WriteFile(conf, []byte(c.conf+"\n"), 0o644)
		start := time.Now()
		_, err := Load(conf, t.TempDir())
		took := time.Since(start)
		want := strings.ReplaceAll(c.want, "CONF", conf)
		switch {
		case want == "" && err != nil:
			t.Errorf("%s: %v", c.conf, err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
			t.Errorf("%s:\n got %v\nwant %s", c.conf, err, want)
		case took > 5*time.Second: // 8 MiB parsed under -race on a loaded machine: ~1.5 s
			t.Errorf("%s took %s", c.conf, took)
		}
	}
	// postgresql.auto.conf itself a FIFO, in the data directory.
	data := t.TempDir()
	syscall.Mkfifo(filepath.Join(data, autoConfName), 0o600)
	conf := filepath.Join(t.TempDir(), "postgresql.conf")
	os.WriteFile(conf, nil, 0o644)
	if _, err := Load(conf, data); err == nil || !strings.Contains(err.Error(), "a FIFO, not a regular file") {
		t.Errorf("postgresql.auto.conf a FIFO: %v", err)
	}
}

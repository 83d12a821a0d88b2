package instance

import (
	"os"
	"path/filepath"
	"testing"
)

func TestResolve(t *testing.T) {
	root := t.TempDir()
	t.Setenv("PG_CLUSTER_CONF_ROOT", root)
	mk := func(dir, conf string) {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "postgresql.conf"), []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	mk(filepath.Join(root, "15", "main"), "data_directory = '/srv/data/main'   # use data in another directory\nport = 5432\n")
	mk(filepath.Join(root, "15", "plain"), "port = 5433\n")
	mk(filepath.Join(root, "16", "my-cluster"), "data_directory = '/var/lib/postgresql/16/my-cluster'\n")

	cases := []struct {
		name, arg     string
		forInit       bool
		dataDir, conf string
		debian        bool
	}{
		{"debian with data_directory and trailing comment", "15-main", false, "/srv/data/main", filepath.Join(root, "15/main/postgresql.conf"), true},
		{"debian default data directory", "15-plain", false, "/var/lib/postgresql/15/plain", filepath.Join(root, "15/plain/postgresql.conf"), true},
		{"debian name with a dash", "16-my-cluster", false, "/var/lib/postgresql/16/my-cluster", filepath.Join(root, "16/my-cluster/postgresql.conf"), true},
		{"debian name for init", "15-new", true, "/var/lib/postgresql/15/new", filepath.Join(root, "15/new/postgresql.conf"), true},
		{"unknown debian-like name is a path", "15-nothere", false, "/15/nothere", "/15/nothere/postgresql.conf", false},
		{"escaped path", "srv-pg-standby", false, "/srv/pg/standby", "/srv/pg/standby/postgresql.conf", false},
		{"escaped path with escaped dash", `srv-pg\x2dstandby`, false, "/srv/pg-standby", "/srv/pg-standby/postgresql.conf", false},
		{"absolute path", "/srv/x", false, "/srv/x", "/srv/x/postgresql.conf", false},
	}
	for _, c := range cases {
		in, err := Resolve(c.arg, c.forInit)
		if err != nil {
			t.Errorf("%s: Resolve(%q): %v", c.name, c.arg, err)
			continue
		}
		if in.DataDir != c.dataDir || in.ConfFile != c.conf || (in.Debian != nil) != c.debian {
			t.Errorf("%s: Resolve(%q) = data %s conf %s debian %v; want %s %s %v", c.name, c.arg, in.DataDir, in.ConfFile, in.Debian != nil, c.dataDir, c.conf, c.debian)
		}
	}
	if _, err := Resolve("", false); err == nil {
		t.Errorf("Resolve(\"\") succeeded")
	}
}

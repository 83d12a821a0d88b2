package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
)

// TestListDebian: list shows the Debian clusters that are pg-standby
// instances or standbys, not other clusters; status --json has the
// documented keys. No PostgreSQL or bus needed.
func TestListDebian(t *testing.T) {
	root := t.TempDir()
	cluster := func(name string, files ...string) string {
		conf := filepath.Join(root, "etc", "15", name)
		data := filepath.Join(root, "data", name)
		for _, d := range []string{conf, filepath.Join(data, "global")} {
			if err := os.MkdirAll(d, 0o700); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(filepath.Join(conf, "postgresql.conf"), []byte("data_directory = '"+data+"'  # comment\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			if err := os.WriteFile(filepath.Join(data, f), nil, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		return data
	}
	cluster("pending", "basebackup.signal")
	cluster("ready", "global/pg_control", "standby.signal")
	cluster("primary", "global/pg_control", "PG_VERSION")
	env := append(os.Environ(), "PG_CLUSTER_CONF_ROOT="+filepath.Join(root, "etc"))
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(binary, args...)
		cmd.Env = env
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("pg-standby %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	want := "15-pending: backup not started\n15-ready: copied but not starting: postgres is not running (no postmaster.pid)\n"
	if got := run("list"); got != want {
		t.Errorf("list:\n%s\nwant:\n%s", got, want)
	}
	if got := run("status"); got != want {
		t.Errorf("status without INSTANCE:\n%s\nwant:\n%s", got, want)
	}
	out := run("status", "15-pending", "--json")
	var m map[string]any
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if want := []string{"attempt", "data_directory", "instance", "running", "state"}; !reflect.DeepEqual(keys, want) {
		t.Errorf("status --json keys %v, want %v\n%s", keys, want, out)
	}
	if m["state"] != stateNotStarted || m["instance"] != "15-pending" || !strings.HasSuffix(m["data_directory"].(string), "/data/pending") {
		t.Errorf("status --json 15-pending: %s", out)
	}
	var all []instanceStatus
	if err := json.Unmarshal([]byte(run("list", "--json")), &all); err != nil || len(all) != 2 || all[1].State != stateNotRunning {
		t.Errorf("list --json: %v %+v", err, all)
	}
}

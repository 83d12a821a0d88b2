package main

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/pg-standby/pg-standby/internal/instance"
)

func TestParsePatroniArgs(t *testing.T) {
	// What Patroni 3.0.2 passes for a pgstandby section with keep_data,
	// max-rate and an option of another tool holding a secret.
	args := []string{"--keep_data=True", "--max-rate=2048", "--s3_key=SECRETVALUE", "--scope=pgstb", "--role=replica",
		"--datadir=/srv/pg/data", "--connstring=dbname=postgres user=replicator host=10.0.0.1 port=5432"}
	a, err := parsePatroniArgs(args)
	if err != nil {
		t.Fatalf("parse %q: %v", args, err)
	}
	if a.dataDir != "/srv/pg/data" || a.scope != "pgstb" || a.opt.MaxRateKB != 2048 || !strings.Contains(a.connstring, "host=10.0.0.1") {
		t.Errorf("parse %q: got %+v", args, a)
	}
	if want := []string{"keep_data", "s3_key"}; !slices.Equal(a.ignored, want) {
		t.Errorf("ignored keys: got %q, want %q", a.ignored, want)
	}
	for name, bad := range map[string][]string{
		"role master":      {"--role=master", "--datadir=/d", "--connstring=host=x"},
		"relative datadir": {"--datadir=d", "--connstring=host=x"},
		"no connstring":    {"--datadir=/d", "--connstring="},
		"positional":       {"--datadir=/d", "--connstring=host=x", "password=SECRETVALUE"},
		"not a number":     {"--datadir=/d", "--connstring=host=x", "--max-rate=fast"},
	} {
		_, err := parsePatroniArgs(bad)
		if err == nil {
			t.Errorf("%s: parse %q: no error", name, bad)
		} else if strings.Contains(err.Error(), "SECRETVALUE") {
			t.Errorf("%s: the error shows an argument's value: %v", name, err)
		}
	}
}

func TestPreparePatroniDir(t *testing.T) {
	log := nopLogger()
	const ci = "host=10.0.0.1 port=5432 user=replicator"
	t.Run("missing", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "a", "data")
		if _, err := preparePatroniDir(dir, ci, log); err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(dir)
		if err != nil || fi.Mode().Perm() != 0o700 {
			t.Fatalf("data directory: %v, mode %v; want 0700", err, fi.Mode().Perm())
		}
		p := pendingOf(t, dir)
		if !p.Recorded || !slices.Equal(p.Keep, []string{patroniConf}) {
			t.Errorf("basebackup.signal: got %+v, want recorded, keeping only %s", p, patroniConf)
		}
		conf, _ := os.ReadFile(filepath.Join(dir, patroniConf))
		if !strings.Contains(string(conf), "primary_conninfo = '"+ci+"'") {
			t.Errorf("%s: %s", patroniConf, conf)
		}
	})
	t.Run("stopped cluster", func(t *testing.T) {
		dir := t.TempDir()
		os.Mkdir(filepath.Join(dir, "global"), 0o700)
		for _, f := range []string{"PG_VERSION", "global/pg_control", "standby.signal", "postgresql.conf"} {
			os.WriteFile(filepath.Join(dir, f), []byte("x"), 0o600)
		}
		if _, err := preparePatroniDir(dir, ci, log); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(dir, "global/pg_control")); err == nil {
			t.Error("the old cluster's pg_control is still there")
		}
		if p := pendingOf(t, dir); !p.Recorded {
			t.Errorf("no recorded basebackup.signal: %+v", p)
		}
	})
	t.Run("earlier copy", func(t *testing.T) {
		dir := t.TempDir()
		if _, err := preparePatroniDir(dir, ci, log); err != nil {
			t.Fatal(err)
		}
		root, _ := os.OpenRoot(dir)
		defer root.Close()
		p := pendingOf(t, dir)
		p.Attempts, p.Written = 3, true
		if err := instance.WritePending(root, p, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := preparePatroniDir(dir, "host=10.0.0.2", log); err != nil {
			t.Fatal(err)
		}
		if q := pendingOf(t, dir); q.Attempts != 3 {
			t.Errorf("resume lost the record: %+v", q)
		}
		if conf, _ := os.ReadFile(filepath.Join(dir, patroniConf)); !strings.Contains(string(conf), "10.0.0.2") {
			t.Errorf("the conninfo of this run is not the one used: %s", conf)
		}
	})
	for name, files := range map[string][]string{
		"foreign files":       {"notes.txt"},
		"pg-standby instance": {"basebackup.signal"},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			for _, f := range files {
				body := "x"
				if f == instance.BackupSignal {
					body = "instance 1\nkeep postgresql.conf\n"
				}
				os.WriteFile(filepath.Join(dir, f), []byte(body), 0o600)
			}
			_, err := preparePatroniDir(dir, ci, log)
			if code := exitCode(err); code != exitRefused {
				t.Errorf("exit status %d (%v), want %d", code, err, exitRefused)
			}
			if _, err := os.Stat(filepath.Join(dir, patroniConf)); err == nil {
				t.Errorf("wrote %s into a refused directory", patroniConf)
			}
		})
	}
}

func pendingOf(t *testing.T, dir string) instance.Pending {
	t.Helper()
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	p, err := instance.ReadPending(root)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestPatroniReplicaRefusesRoot: postgres never runs as root; a copy made
// by root would be a directory postgres cannot use.
func TestPatroniReplicaRefusesRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("checks the refusal of root: run as root")
	}
	dir := filepath.Join(t.TempDir(), "data")
	code := patroniReplicaCmd(context.Background(), []string{"--datadir=" + dir, "--connstring=host=10.0.0.1"})
	if code != exitRefused {
		t.Errorf("exit status %d, want %d", code, exitRefused)
	}
	if _, err := os.Stat(dir); err == nil {
		t.Error("root created the data directory")
	}
}

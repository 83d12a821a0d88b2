package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pg-standby/pg-standby/internal/instance"
	"github.com/pg-standby/pg-standby/internal/oracle"
	"github.com/pg-standby/pg-standby/internal/testpg"
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

// TestPatroniReplicaCopyOnly runs patroni-replica as Patroni does (as
// postgres, password in PGPASSFILE only) on each PostgreSQL version: a bad
// password file is a configuration error; the copy is bare (pg_control, no
// standby configuration, nothing started); a SIGTERM mid-copy (Patroni's
// cancel) ends it by that signal with no valid cluster left, and the next
// run reuses the files.
func TestPatroniReplicaCopyOnly(t *testing.T) {
	testpg.ForEachVersion(t, func(t *testing.T, v testpg.Version) {
		testpg.Require(t)
		p := testpg.Start(t, testpg.Options{Auth: "scram-sha-256"})
		p.Pgbench(t, "-i", "-s", "1", "-q")
		base := testpg.TempDir(t)
		passfile := filepath.Join(base, "pgpass")
		if err := os.WriteFile(passfile, []byte(fmt.Sprintf("127.0.0.1:%d:*:replicator:%s\n", p.Port, p.Password)), 0o644); err != nil {
			t.Fatal(err)
		}
		asPostgres(t, passfile)
		env := []string{"PGPASSFILE=" + passfile}
		args := func(dir string, extra ...string) []string {
			return append([]string{"patroni-replica", "--keep_data=True", "--scope=s", "--role=replica", "--datadir=" + dir,
				fmt.Sprintf("--connstring=dbname=postgres user=replicator host=127.0.0.1 port=%d", p.Port)}, extra...)
		}
		dir := filepath.Join(base, "data")
		w := startWorker(t, env, args(dir)...)
		if code := w.wait(t); code != exitConfig {
			t.Fatalf("PGPASSFILE of mode 0644: status %d, want %d\n%s", code, exitConfig, w.output.String())
		}
		if _, err := os.Stat(dir); err == nil {
			t.Errorf("a refused password file, yet the data directory was made")
		}
		if err := os.Chmod(passfile, 0o600); err != nil {
			t.Fatal(err)
		}
		w = startWorker(t, env, args(dir)...)
		if code := w.wait(t); code != exitOK {
			t.Fatalf("status %d\n%s", code, w.output.String())
		}
		out := w.output.String()
		if strings.Contains(out, p.Password) {
			t.Errorf("the password is in the output:\n%s", out)
		}
		fi, err := os.Stat(dir)
		if err != nil || fi.Mode().Perm() != 0o700 {
			t.Errorf("data directory: %v, mode %v; want 0700", err, fi.Mode().Perm())
		}
		for name, want := range map[string]bool{"global/pg_control": true, "PG_VERSION": true, "standby.signal": false,
			"basebackup.signal": false, patroniConf: false, "postmaster.pid": false} {
			if _, err := os.Stat(filepath.Join(dir, name)); (err == nil) != want {
				t.Errorf("%s: exists %v, want %v", name, err == nil, want)
			}
		}
		if auto, _ := os.ReadFile(filepath.Join(dir, instance.AutoConf)); strings.Contains(string(auto), "primary_conninfo") {
			t.Errorf("%s holds primary_conninfo:\n%s", instance.AutoConf, auto)
		}
		oracle.VerifyBackup(t, dir)

		// Patroni's cancel: SIGTERM mid-copy, then the retry (keep_data).
		dir2 := filepath.Join(base, "data2")
		w = startWorker(t, env, args(dir2, "--max-rate=2048")...)
		deadline := time.Now().Add(time.Minute)
		for dirBytes(t, dir2) < 4<<20 && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
		}
		w.cmd.Process.Signal(syscall.SIGTERM)
		stopped := time.Now()
		if code := w.wait(t); code != -int(syscall.SIGTERM) {
			t.Fatalf("after SIGTERM: status %d, want death by SIGTERM\n%s", code, w.output.String())
		}
		t.Logf("stopped %v after SIGTERM, with %d bytes on disk", time.Since(stopped).Round(time.Millisecond), dirBytes(t, dir2))
		if time.Since(stopped) > 5*time.Second {
			t.Errorf("took %v to stop: Patroni sends SIGKILL after 10 s", time.Since(stopped))
		}
		if _, err := os.Stat(filepath.Join(dir2, "global/pg_control")); err == nil {
			t.Error("a stopped copy has global/pg_control")
		}
		if p := pendingOf(t, dir2); p.LastError != "stopped" {
			t.Errorf("basebackup.signal records %q, want stopped", p.LastError)
		}
		w = startWorker(t, env, args(dir2)...)
		if code := w.wait(t); code != exitOK {
			t.Fatalf("retry: status %d\n%s", code, w.output.String())
		}
		written, unchanged := copyDone(t, w.output.String())
		t.Logf("retry after SIGTERM: written=%d unchanged=%d", written, unchanged)
		if unchanged < 1<<20 {
			t.Errorf("retry after SIGTERM kept %d bytes, want the files the first run finished", unchanged)
		}
	})
}

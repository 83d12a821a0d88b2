package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pg-standby/pg-standby/internal/instance"
	"github.com/pg-standby/pg-standby/internal/oracle"
	"github.com/pg-standby/pg-standby/internal/pgconf"
	"github.com/pg-standby/pg-standby/internal/testpg"
)

// Issue 12 item 10: init INSTANCE --max-rate … on an existing minimal
// instance changes that setting only, without the conninfo again.

// setting is the winning value of name in the instance's configuration.
func setting(t *testing.T, conf, dataDir, name string) pgconf.Setting {
	t.Helper()
	cfg, err := pgconf.Load(conf, dataDir)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := cfg.Get(name)
	return s
}

// appendLine is the admin's hand edit of a configuration file.
func appendLine(t *testing.T, file, line string) {
	t.Helper()
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(line + "\n"); err != nil {
		t.Fatal(err)
	}
}

// TestInitUpdatePgdata: a --pgdata instance (root not needed).
func TestInitUpdatePgdata(t *testing.T) {
	dir := filepath.Join(testpg.TempDir(t), "standby")
	conf := filepath.Join(dir, "postgresql.conf")
	const conninfo = "host=192.0.2.1 port=5432 user=replicator"
	if code, out := runWorker(t, "init", "--pgdata", dir, "--primary-conninfo", conninfo, "--max-rate", "1024"); code != 0 {
		t.Fatalf("init: status %d\n%s", code, out)
	}
	appendLine(t, conf, "work_mem = 64MB   # the admin's")
	code, out := runWorker(t, "init", "--pgdata", dir, "--max-rate", "2048")
	if want := "set pg_standby.max_rate = 2048 in " + conf + " (was 1024)\n"; code != 0 || out != want {
		t.Fatalf("re-run: status %d, output\n%q\nwant\n%q", code, out, want)
	}
	if s := setting(t, conf, dir, "pg_standby.max_rate"); s.Value != "2048" {
		t.Errorf("max_rate %q, want 2048", s.Value)
	}
	if s := setting(t, conf, dir, "primary_conninfo"); s.Value != conninfo {
		t.Errorf("primary_conninfo %q, want %q", s.Value, conninfo)
	}
	if b, _ := os.ReadFile(conf); !strings.Contains(string(b), "\nwork_mem = 64MB   # the admin's\n") {
		t.Errorf("the hand edit is lost:\n%s", b)
	}
	if fi, err := os.Stat(conf); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("postgresql.conf: %v %v, want mode 0600", fi.Mode(), err)
	}

	// No option: nothing changes, and it says so.
	before := oracle.Snapshot(t, dir)
	code, out = runWorker(t, "init", "--pgdata", dir)
	if want := "nothing to change: " + conf + " is a minimal instance already; name the settings to change (e.g. --max-rate 2048)\n"; code != 0 || out != want {
		t.Fatalf("run without options: status %d, output\n%q\nwant\n%q", code, out, want)
	}
	if after := oracle.Snapshot(t, dir); after != before {
		t.Errorf("a run without options changed the instance:\n%s\nwas\n%s", after, before)
	}

	// A new instance still needs the conninfo.
	code, out = runWorker(t, "init", "--pgdata", dir+"-new", "--max-rate", "2048")
	if code != exitUsage || !strings.Contains(out, "--primary-conninfo (or --primary-conninfo-file) is required to make a new instance") {
		t.Errorf("new instance without conninfo: status %d\n%s", code, out)
	}
	if _, err := os.Stat(dir + "-new"); !os.IsNotExist(err) {
		t.Errorf("a refused init made %s: %v", dir+"-new", err)
	}
}

// TestInitUpdateDebian: a Debian cluster, as root, whose primary_conninfo
// holds a password (so lives in conf.d's 0600 file); the update keeps that
// file as it is and the admin's line in postgresql.conf.
func TestInitUpdateDebian(t *testing.T) {
	testpg.RequireRoot(t, "needs root: init of a Debian cluster runs as root")
	s := newDebianScene(t)
	conf := filepath.Join(s.confRoot, "15", "standby", "postgresql.conf")
	secret := filepath.Join(s.confRoot, "15", "standby", "conf.d", instance.PrimaryFile)
	const conninfo = "host=192.0.2.1 port=5432 user=replicator password=s3cret"
	if code, out := s.init(t, nil, conninfo+"\n", "--primary-conninfo-file", "-", "--max-rate", "1024"); code != 0 {
		t.Fatalf("init: status %d\n%s", code, out)
	}
	appendLine(t, conf, "work_mem = 64MB   # the admin's")
	secretBefore := oracle.Snapshot(t, secret)
	code, out := s.init(t, nil, "", "--max-rate", "2048")
	if want := "set pg_standby.max_rate = 2048 in " + conf + " (was 1024)\n"; code != 0 || out != want {
		t.Fatalf("re-run: status %d, output\n%q\nwant\n%q", code, out, want)
	}
	if got := setting(t, conf, "/nonexistent", "pg_standby.max_rate"); got.Value != "2048" || got.File != conf {
		t.Errorf("max_rate %q in %s, want 2048 in %s", got.Value, got.File, conf)
	}
	if got := setting(t, conf, "/nonexistent", "primary_conninfo"); got.Value != conninfo || got.File != secret {
		t.Errorf("primary_conninfo %q in %s, want it unchanged in %s", got.Value, got.File, secret)
	}
	if after := oracle.Snapshot(t, secret); after != secretBefore {
		t.Errorf("%s changed:\n%s\nwas\n%s", secret, after, secretBefore)
	}
	if b, _ := os.ReadFile(conf); !strings.Contains(string(b), "\nwork_mem = 64MB   # the admin's\n") || strings.Contains(string(b), "s3cret") {
		t.Errorf("the hand edit is lost, or the password is in the 0644 file:\n%s", b)
	}

	// The password goes: the conninfo moves to postgresql.conf, the 0600
	// file is removed, the note that pointed at it replaced.
	code, out = s.init(t, nil, "", "--primary-conninfo", "host=192.0.2.2 user=replicator")
	if want := "set primary_conninfo in " + conf + " (not shown: it may hold a password)\n"; code != 0 || out != want {
		t.Fatalf("new conninfo: status %d, output\n%q\nwant\n%q", code, out, want)
	}
	if got := setting(t, conf, "/nonexistent", "primary_conninfo"); got.Value != "host=192.0.2.2 user=replicator" || got.File != conf {
		t.Errorf("primary_conninfo %q in %s", got.Value, got.File)
	}
	if _, err := os.Lstat(secret); !os.IsNotExist(err) {
		t.Errorf("%s still there: %v", secret, err)
	}
	if b, _ := os.ReadFile(conf); strings.Contains(string(b), "(mode 0600): it holds a password") {
		t.Errorf("postgresql.conf still points at the removed file:\n%s", b)
	}
}

// TestInitUpdateRefusesForeignFile: a setting the admin moved into another
// file is not shadowed by a line init appends; init says where it is.
func TestInitUpdateRefusesForeignFile(t *testing.T) {
	dir := filepath.Join(testpg.TempDir(t), "standby")
	conf := filepath.Join(dir, "postgresql.conf")
	if code, out := runWorker(t, "init", "--pgdata", dir, "--primary-conninfo", "host=192.0.2.1 user=r", "--max-rate", "1024"); code != 0 {
		t.Fatalf("init: status %d\n%s", code, out)
	}
	appendLine(t, conf, "include_if_exists = 'conf.d/admin.conf'")
	os.Mkdir(filepath.Join(dir, "conf.d"), 0o700)
	os.WriteFile(filepath.Join(dir, "conf.d", "admin.conf"), []byte("pg_standby.max_rate = 4096\n"), 0o600)
	testpg.Chown(t, dir)
	before := oracle.Snapshot(t, dir)
	code, out := runWorker(t, "init", "--pgdata", dir, "--max-rate", "2048")
	if code == 0 || !strings.Contains(out, "pg_standby.max_rate is set in "+filepath.Join(dir, "conf.d", "admin.conf")+" line 1") {
		t.Errorf("status %d\n%s", code, out)
	}
	if after := oracle.Snapshot(t, dir); after != before {
		t.Errorf("a refused update changed the instance")
	}
}

// TestAttackInitUpdateLinks: links to /etc/shadow planted by postgres at the
// files an update reads and edits: root reads nothing through them and
// writes nothing through them.
func TestAttackInitUpdateLinks(t *testing.T) {
	testpg.RequireRoot(t, "needs root: the attack is on root-run code")
	shadowDir := scratch(t)
	shadow := filepath.Join(shadowDir, "shadow")
	os.WriteFile(shadow, []byte("pg_standby.max_rate = 32\n"), 0o640)
	before := oracle.Snapshot(t, shadowDir)
	binds := [][2]string{{shadow, "/etc/shadow"}}
	s := newDebianScene(t)
	conf := filepath.Join(s.confRoot, "15", "standby", "postgresql.conf")
	secret := filepath.Join(s.confRoot, "15", "standby", "conf.d", instance.PrimaryFile)
	if code, out := s.init(t, nil, "", "--primary-conninfo", attackConninfo+" password=S3cret", "--max-rate", "1024"); code != 0 {
		t.Fatalf("init: status %d\n%s", code, out)
	}
	os.Remove(secret)
	os.Symlink("/etc/shadow", secret)
	asPostgres(t, secret)
	code, out := s.init(t, binds, "", "--max-rate", "2048")
	if want := "set pg_standby.max_rate = 2048 in " + conf + " (was 1024)\n"; code != 0 || out != want {
		t.Errorf("re-run: status %d, output\n%q\nwant\n%q", code, out, want)
	}
	if l, err := os.Readlink(secret); err != nil || l != "/etc/shadow" {
		t.Errorf("%s: %q %v, want the planted link left alone", secret, l, err)
	}
	// postgresql.conf itself a link: no configuration to update.
	os.Remove(conf)
	os.Symlink("/etc/shadow", conf)
	asPostgres(t, conf)
	code, out = s.init(t, binds, "", "--max-rate", "4096")
	if code != exitUsage || !strings.Contains(out, "is required to make a new instance") {
		t.Errorf("postgresql.conf a link: status %d\n%s", code, out)
	}
	if after := oracle.Snapshot(t, shadowDir); after != before {
		t.Errorf("/etc/shadow changed:\n%s\nwas\n%s", after, before)
	}
}

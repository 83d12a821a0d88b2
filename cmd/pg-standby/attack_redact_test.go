package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pg-standby/pg-standby/internal/instance"
	"github.com/pg-standby/pg-standby/internal/pgconf"
	"github.com/pg-standby/pg-standby/internal/testpg"
)

// TestAttackPasswordNowhere: a worker whose primary_conninfo carries a
// password fails (wrong password, unreachable host, invalid conninfo in
// each of libpq's forms), and the password is in none of what others can
// see: stderr (the journal's fields are the same attributes), STATUS=
// datagrams, D-Bus signals and properties, status and status --json, and
// basebackup.signal.
func TestAttackPasswordNowhere(t *testing.T) {
	testpg.Require(t)
	b := startBus(t)
	p := testpg.Start(t, testpg.Options{Auth: "scram-sha-256"})
	wrong := strings.Replace(p.ConnString(), "password="+p.Password, "password=S3cret", 1)
	for _, c := range []struct {
		name, conninfo string
		code           int
	}{
		{"wrong password", wrong, exitConfig},
		{"unreachable host", "host=127.0.0.1 port=2 user=replicator password=S3cret connect_timeout=2", exitTransient},
		{"invalid, spaced", "host=127.0.0.1 password = 'S3cret and more' port=x", exitConfig},
		{"invalid, quoted with escapes", `host=127.0.0.1 password='S3cret\'s' port=x`, exitConfig},
		{"invalid URI", "postgresql://replicator:S3cret@127.0.0.1:x/postgres", exitConfig},
		{"invalid URI query", "postgresql://replicator@127.0.0.1/postgres?password=S3cret&port=x", exitConfig},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := initInstance(t, p)
			conf := filepath.Join(dir, "postgresql.conf")
			data, err := os.ReadFile(conf)
			if err != nil {
				t.Fatal(err)
			}
			var lines []string
			for _, l := range strings.Split(string(data), "\n") {
				if !strings.HasPrefix(l, "primary_conninfo") {
					lines = append(lines, l)
				}
			}
			lines = append(lines, "primary_conninfo = "+pgconf.Quote(c.conninfo), "")
			if err := os.WriteFile(conf, []byte(strings.Join(lines, "\n")), 0o600); err != nil {
				t.Fatal(err)
			}
			testpg.Chown(t, dir)
			n := listenNotify(t)
			w := watch(t, b, dir)
			wk := startWorker(t, []string{b.Env(), "NOTIFY_SOCKET=" + n.path}, "run", "--pgdata", dir, "--retries", "0")
			if code := wk.wait(t); code != c.code {
				t.Errorf("status %d, want %d\n%s", code, c.code, wk.output.String())
			}
			seen := map[string]string{"stderr": wk.output.String(), "STATUS=": strings.Join(n.drain(), "\n")}
			sigs, _ := w.signals()
			var bus []string
			for _, s := range sigs {
				bus = append(bus, fmt.Sprintf("%s %v", s.Name, s.Body))
			}
			seen["D-Bus"] = strings.Join(bus, "\n")
			seen["status"] = pgStandby(t, b, "status", "--pgdata", dir)
			seen["status --json"] = pgStandby(t, b, "status", "--json", "--pgdata", dir)
			signal, _ := os.ReadFile(filepath.Join(dir, "basebackup.signal"))
			seen["basebackup.signal"] = string(signal)
			t.Logf("stderr:\n%s", seen["stderr"])
			if !strings.Contains(seen["D-Bus"], "Completed [false") {
				t.Errorf("no Completed(false, ...) signal among:\n%s", seen["D-Bus"])
			}
			for where, text := range seen {
				if strings.Contains(text, "S3cret") {
					t.Errorf("the password is in %s:\n%s", where, text)
				}
			}
		})
	}
}

// TestAttackStatusEscapes: a recorded last error quoting the primary's
// terminal escape sequences is printed escaped by status, never raw.
func TestAttackStatusEscapes(t *testing.T) {
	testpg.Require(t)
	b := startBus(t)
	p := testpg.Start(t, testpg.Options{})
	dir := initInstance(t, p)
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	evil := "primary: ERROR: \x1b]0;owned\x07\x1b[2Jgone \u202Eevil (SQLSTATE XX000)"
	if err := instance.WritePending(root, instance.Pending{Recorded: true, Keep: []string{"postgresql.conf"}, Attempts: 1,
		LastError: evil, LastFailure: time.Now()}, 0o600); err != nil {
		t.Fatal(err)
	}
	out := pgStandby(t, b, "status", "--pgdata", dir)
	want := `failed: primary: ERROR: \x1b]0;owned\x07\x1b[2Jgone \u202Eevil (SQLSTATE XX000)`
	if strings.ContainsAny(out, "\x1b\x07\u202E") || !strings.Contains(out, want) {
		t.Errorf("status printed %q, want it to hold %q and no control character", out, want)
	}
}

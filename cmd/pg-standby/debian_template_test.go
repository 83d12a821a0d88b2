package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"github.com/pg-standby/pg-standby/internal/pgconf"
	"github.com/pg-standby/pg-standby/internal/testpg"
)

// debianNS runs script as root with umask in a private mount
// namespace where empty scratch directories stand for /var/lib/postgresql
// and /etc/postgresql (postgres' 0755, as the package leaves them), so the
// host's clusters are never touched. It returns the two directories.
func debianNS(t *testing.T, umask, script string, args ...string) (varLib, etc string) {
	t.Helper()
	varLib, etc = scratch(t), scratch(t)
	asPostgres(t, varLib, etc)
	cmd := exec.Command("unshare", append([]string{"-m", "--propagation", "private", "/bin/sh", "-c",
		`set -e; umask ` + umask + `; mount --bind "$1" /var/lib/postgresql; mount --bind "$2" /etc/postgresql; shift 2; ` + script,
		"sh", varLib, etc}, args...)...)
	// PG_CLUSTER_CONF_ROOT (the same path) keeps pg_createcluster off systemd and apt.
	cmd.Env = append(os.Environ(), "PG_CLUSTER_CONF_ROOT=/etc/postgresql", "GORACE=atexit_sleep_ms=0", "PG_BINDIR=")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s: %v\n%s", script, err, out.String())
	}
	return varLib, etc
}

func requireCreatecluster(t *testing.T) {
	testpg.RequireRoot(t, "needs root: it tests code that runs as root")
	for _, p := range []string{"/usr/bin/pg_createcluster", "/usr/lib/postgresql/15/bin/initdb", "/usr/share/postgresql/15/postgresql.conf.sample"} {
		if _, err := os.Stat(p); err != nil {
			t.Skipf("needs postgresql-15 and postgresql-common: %v", err)
		}
	}
}

// activeNames lists the names set on active lines of a postgresql.conf.
func activeNames(t *testing.T, file string) []string {
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, m := range regexp.MustCompile(`(?m)^\s*([A-Za-z_][\w.]*)\s*(?:=|\s)`).FindAllStringSubmatch(string(b), -1) {
		names = append(names, m[1])
	}
	return names
}

// TestInitDebianTemplate: init 15-x writes, setting by setting, what
// pg_createcluster 15 y writes on this host, except the differences listed
// (and justified) in allowed.
// pg_createcluster runs under the usual umask 022 (its modes follow the
// umask), init under 077 as a hardened sudo leaves it.
func TestInitDebianTemplate(t *testing.T) {
	requireCreatecluster(t)
	_, etcY := debianNS(t, "022", `pg_createcluster -p 5440 15 y >/dev/null`)
	// postgres itself (as the worker) must accept the file init wrote.
	_, etcX := debianNS(t, "077", `"$@"; runuser -u postgres -- /usr/lib/postgresql/15/bin/postgres `+
		`--config-file=/etc/postgresql/15/x/postgresql.conf -C log_line_prefix >/dev/null`, binary, "init", "15-x", "--port", "5441", "--primary-conninfo", attackConninfo)
	allowed := map[string]string{
		// names, paths and the port of another cluster
		"data_directory": "path", "hba_file": "path", "ident_file": "path", "external_pid_file": "path",
		"port": "port", "cluster_name": "name",
		// query-result settings: initdb writes the host's; the standby follows the primary's
		"datestyle": "primary's", "timezone": "primary's", "lc_messages": "primary's", "lc_monetary": "primary's",
		"lc_numeric": "primary's", "lc_time": "primary's", "default_text_search_config": "primary's",
		// pg-standby's own settings
		"primary_conninfo": "pg-standby", "pg_standby.checkpoint": "pg-standby",
	}
	confX, confY := filepath.Join(etcX, "15/x/postgresql.conf"), filepath.Join(etcY, "15/y/postgresql.conf")
	cx, err := pgconf.Load(confX, "/nonexistent")
	if err != nil {
		t.Fatal(err)
	}
	cy, err := pgconf.Load(confY, "/nonexistent")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range append(activeNames(t, confX), activeNames(t, confY)...) {
		sx, okx := cx.Get(name)
		sy, oky := cy.Get(name)
		if okx == oky && sx.Value == sy.Value {
			continue
		}
		if why, ok := allowed[strings.ToLower(name)]; ok {
			t.Logf("%s differs (%s): init %q, pg_createcluster %q", name, why, sx.Value, sy.Value)
			continue
		}
		t.Errorf("%s: init 15-x has %q (set %v), pg_createcluster %q (set %v)", name, sx.Value, okx, sy.Value, oky)
	}
	for _, name := range []string{"timezone", "datestyle", "lc_monetary", "lc_numeric", "lc_time", "lc_messages", "default_text_search_config", "extra_float_digits"} {
		if s, ok := cx.Get(name); ok {
			t.Errorf("init wrote %s = %q as an active line: it would override the primary's", name, s.Value)
		}
	}
	for _, f := range []string{"start.conf", "pg_ctl.conf", "environment"} {
		bx, _ := os.ReadFile(filepath.Join(etcX, "15/x", f))
		by, _ := os.ReadFile(filepath.Join(etcY, "15/y", f))
		if !bytes.Equal(bx, by) {
			t.Errorf("%s: init wrote %q, pg_createcluster %q", f, bx, by)
		}
	}
	// pg_hba.conf and pg_ident.conf: the same rules (the comments differ).
	for _, f := range []string{"pg_hba.conf", "pg_ident.conf"} {
		if rx, ry := rules(t, filepath.Join(etcX, "15/x", f)), rules(t, filepath.Join(etcY, "15/y", f)); rx != ry {
			t.Errorf("%s: init's rules\n%s\npg_createcluster's\n%s", f, rx, ry)
		}
	}
	if b, _ := os.ReadFile(confX); bytes.Count(b, []byte("\nprimary_conninfo =")) != 1 {
		t.Errorf("postgresql.conf sets primary_conninfo %d times, want once", bytes.Count(b, []byte("\nprimary_conninfo =")))
	}
	for _, f := range []string{"pg_hba.conf", "pg_ident.conf", "start.conf", "pg_ctl.conf", "environment", "conf.d"} {
		fx, errx := os.Stat(filepath.Join(etcX, "15/x", f))
		fy, erry := os.Stat(filepath.Join(etcY, "15/y", f))
		if errx != nil || erry != nil {
			t.Errorf("%s: init %v, pg_createcluster %v", f, errx, erry)
			continue
		}
		if fx.Mode() != fy.Mode() {
			t.Errorf("%s: init mode %v, pg_createcluster %v", f, fx.Mode(), fy.Mode())
		}
	}
}

// TestInitDebianParents: with PostgreSQL installed but no cluster (empty
// /var/lib/postgresql and /etc/postgresql), init 15-standby makes the
// version directories as pg_createcluster does under umask 022 (postgres',
// 0755), even under umask 077, and postgres can reach its data directory.
func TestInitDebianParents(t *testing.T) {
	requireCreatecluster(t)
	libY, etcY := debianNS(t, "022", `pg_createcluster -p 5440 15 y >/dev/null`)
	libX, etcX := debianNS(t, "077", `"$@"; runuser -u postgres -- test -w /var/lib/postgresql/15/standby/basebackup.signal`,
		binary, "init", "15-standby", "--port", "5441", "--primary-conninfo", attackConninfo)
	for _, p := range [][2]string{{filepath.Join(libX, "15"), filepath.Join(libY, "15")}, {filepath.Join(etcX, "15"), filepath.Join(etcY, "15")},
		{filepath.Join(etcX, "15/standby"), filepath.Join(etcY, "15/y")}, {filepath.Join(etcX, "15/standby/conf.d"), filepath.Join(etcY, "15/y/conf.d")}} {
		fx, errx := os.Stat(p[0])
		fy, erry := os.Stat(p[1])
		if errx != nil || erry != nil {
			t.Fatalf("%v %v", errx, erry)
		}
		sx, sy := fx.Sys().(*syscall.Stat_t), fy.Sys().(*syscall.Stat_t)
		if fx.Mode() != fy.Mode() || sx.Uid != sy.Uid || sx.Gid != sy.Gid {
			t.Errorf("%s: init %v %d:%d, pg_createcluster %v %d:%d", p[0], fx.Mode(), sx.Uid, sx.Gid, fy.Mode(), sy.Uid, sy.Gid)
		}
	}
}

// rules is a pg_hba.conf's or pg_ident.conf's non-comment lines, blanks squeezed.
func rules(t *testing.T, file string) string {
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) > 0 && !strings.HasPrefix(f[0], "#") {
			out = append(out, strings.Join(f, " "))
		}
	}
	return strings.Join(out, "\n")
}

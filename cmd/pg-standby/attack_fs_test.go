package main

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pg-standby/pg-standby/internal/oracle"
	"github.com/pg-standby/pg-standby/internal/testpg"
)

// The attacks of issue 11 on root-run code, each by the postgres user on
// files it owns. Every case that could write outside scratch directories
// runs pg-standby in a private mount namespace (unshare -m) where scratch
// directories are bind-mounted over the real targets (/var/lib/postgresql,
// /usr/local/sbin, /etc/apt/apt.conf.d, /etc/shadow), so the host is never
// touched even if a fix regresses.

// pgOwner is the postgres user's uid and gid.
func pgOwner(t *testing.T) (int, int) {
	u, err := user.Lookup("postgres")
	if err != nil {
		t.Skipf("no postgres user: %v", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return uid, gid
}

// scratch is a root-owned 0755 directory standing in for a root directory.
func scratch(t *testing.T) string {
	d := t.TempDir()
	os.Chmod(d, 0o755)
	return d
}

// asPostgres makes paths as an attacker with a postgres shell would own them.
func asPostgres(t *testing.T, paths ...string) {
	uid, gid := pgOwner(t)
	for _, p := range paths {
		if err := os.Lchown(p, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
}

// nsRun runs pg-standby as root in a private mount namespace with each
// binds[i][0] bind-mounted over binds[i][1].
func nsRun(t *testing.T, binds [][2]string, env []string, stdin string, args ...string) (int, string) {
	t.Helper()
	script := "set -e\n"
	sargs := []string{"sh"}
	for i, b := range binds {
		script += fmt.Sprintf("mount --bind \"$%d\" \"$%d\"\n", 2*i+1, 2*i+2)
		sargs = append(sargs, b[0], b[1])
	}
	script += fmt.Sprintf("shift %d\nexec \"$@\"\n", 2*len(binds))
	sargs = append(sargs, binary)
	sargs = append(sargs, args...)
	cmd := exec.Command("unshare", append([]string{"-m", "--propagation", "private", "/bin/sh", "-c", script}, sargs...)...)
	cmd.Env = append(os.Environ(), append([]string{"GORACE=atexit_sleep_ms=0", "PG_BINDIR="}, env...)...)
	cmd.Stdin = strings.NewReader(stdin)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.Run()
	return cmd.ProcessState.Sys().(syscall.WaitStatus).ExitStatus(), out.String()
}

const attackConninfo = "host=192.0.2.1 port=5432 user=replicator"

// debianScene is a scratch Debian layout: a configuration root (postgres'),
// a stand-in for /var/lib/postgresql with its 15 directory (postgres').
type debianScene struct{ confRoot, varLib string }

func newDebianScene(t *testing.T) debianScene {
	s := debianScene{confRoot: scratch(t), varLib: scratch(t)}
	os.Mkdir(filepath.Join(s.varLib, "15"), 0o755)
	asPostgres(t, s.confRoot, s.varLib, filepath.Join(s.varLib, "15"))
	return s
}

func (s debianScene) init(t *testing.T, binds [][2]string, stdin string, args ...string) (int, string) {
	binds = append([][2]string{{s.varLib, "/var/lib/postgresql"}}, binds...)
	return nsRun(t, binds, []string{"PG_CLUSTER_CONF_ROOT=" + s.confRoot}, stdin, append([]string{"init", "15-standby"}, args...)...)
}

// TestAttackInitDataDirectoryEdited: postgres edits data_directory to a root
// directory (/usr/local/sbin) and waits for root to re-run init, which used
// to MkdirAll/Chmod/Lchown it to postgres. Also the default data directory,
// or its parent, planted as a symlink to it.
func TestAttackInitDataDirectoryEdited(t *testing.T) {
	testpg.RequireRoot(t, "needs root: the attack is on root-run code")
	sbin := scratch(t)
	os.WriteFile(filepath.Join(sbin, "tool"), []byte("#!/bin/sh\n"), 0o755)
	before := oracle.Snapshot(t, sbin)

	s := newDebianScene(t)
	if code, out := s.init(t, nil, "", "--primary-conninfo", attackConninfo); code != 0 {
		t.Fatalf("first init: %d\n%s", code, out)
	}
	conf := filepath.Join(s.confRoot, "15", "standby", "postgresql.conf")
	c, _ := os.ReadFile(conf)
	os.WriteFile(conf, bytes.Replace(c, []byte("data_directory = '/var/lib/postgresql/15/standby'"), []byte("data_directory = '/usr/local/sbin'"), 1), 0o644)
	code, out := s.init(t, [][2]string{{sbin, "/usr/local/sbin"}}, "", "--primary-conninfo", attackConninfo)
	want := "pg-standby init: refusing data directory /usr/local/sbin: " + conf + " sets data_directory to it, not to /var/lib/postgresql/15/standby " +
		"where pg-standby init puts a cluster's data; the postgres user may edit that file, so init, run as root, does not take a directory from it; " +
		"if it is right, confirm it on the command line: pg-standby init 15-standby --pgdata /usr/local/sbin ...\n"
	if code != exitRefused || out != want {
		t.Errorf("re-run after data_directory = /usr/local/sbin: %d\n got %q\nwant %q", code, out, want)
	}
	t.Logf("edited data_directory: %d %s", code, out)

	for _, link := range []string{"15/standby", "15"} {
		s := newDebianScene(t)
		p := filepath.Join(s.varLib, link)
		os.RemoveAll(p)
		os.Symlink("/usr/local/sbin", p)
		asPostgres(t, p)
		code, out := s.init(t, [][2]string{{sbin, "/usr/local/sbin"}}, "", "--primary-conninfo", attackConninfo)
		shown := "/var/lib/postgresql/" + link
		want := "pg-standby init: refusing data directory /var/lib/postgresql/15/standby: " + shown + " is a symbolic link (or not a directory); " +
			"pg-standby init, run as root, follows no links in paths the postgres user may control: name the real directory\n"
		if code != exitRefused || out != want {
			t.Errorf("%s planted as a link: %d\n got %q\nwant %q", link, code, out, want)
		}
		t.Logf("%s a link: %d %s", link, code, out)
	}
	if after := oracle.Snapshot(t, sbin); after != before {
		t.Errorf("/usr/local/sbin changed:\n%s\nwas\n%s", after, before)
	}
}

// TestAttackInitConfDirLink: the configuration directory, its parent or its
// conf.d planted by postgres as a symlink to a root directory
// (/etc/apt/apt.conf.d): root's init used to write six postgres-owned files
// there (an apt hook runs as root).
func TestAttackInitConfDirLink(t *testing.T) {
	testpg.RequireRoot(t, "needs root: the attack is on root-run code")
	apt := scratch(t)
	os.WriteFile(filepath.Join(apt, "70debconf"), []byte("// apt\n"), 0o644)
	before := oracle.Snapshot(t, apt)
	binds := [][2]string{{apt, "/etc/apt/apt.conf.d"}}
	for _, link := range []string{"15/standby", "15", "15/standby/conf.d"} {
		s := newDebianScene(t)
		if link == "15/standby/conf.d" {
			if code, out := s.init(t, nil, "", "--primary-conninfo", attackConninfo); code != 0 {
				t.Fatalf("first init: %d\n%s", code, out)
			}
		}
		p := filepath.Join(s.confRoot, link)
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.RemoveAll(p)
		os.Symlink("/etc/apt/apt.conf.d", p)
		asPostgres(t, p)
		code, out := s.init(t, binds, "", "--primary-conninfo", attackConninfo)
		confDir := filepath.Join(s.confRoot, "15", "standby")
		want := "pg-standby init: refusing configuration directory " + confDir + ": " + p + " is a symbolic link (or not a directory); " +
			"pg-standby init, run as root, follows no links in paths the postgres user may control: name the real directory\n"
		if code != exitRefused || out != want {
			t.Errorf("%s a link to /etc/apt/apt.conf.d: %d\n got %q\nwant %q", link, code, out, want)
		}
		t.Logf("%s a link: %d %s", link, code, out)
	}
	if after := oracle.Snapshot(t, apt); after != before {
		t.Errorf("/etc/apt/apt.conf.d changed:\n%s\nwas\n%s", after, before)
	}
}

// TestAttackInitTempNames: links to /etc/shadow (and FIFOs) planted at every
// name init writes or used to write through; a re-run must replace or skip
// them, never write through them.
func TestAttackInitTempNames(t *testing.T) {
	testpg.RequireRoot(t, "needs root: the attack is on root-run code")
	shadowDir := scratch(t)
	shadow := filepath.Join(shadowDir, "shadow")
	os.WriteFile(shadow, []byte("root:*:19000:0:99999:7:::\n"), 0o640)
	before := oracle.Snapshot(t, shadowDir)
	binds := [][2]string{{shadow, "/etc/shadow"}}
	plant := func(dir string, names ...string) {
		for _, n := range names {
			n, fifo := strings.CutSuffix(n, "|fifo")
			p := filepath.Join(dir, n)
			os.Remove(p)
			if fifo {
				syscall.Mkfifo(p, 0o600)
			} else {
				os.Symlink("/etc/shadow", p)
			}
			asPostgres(t, p)
		}
	}
	withPassword := attackConninfo + " password=S3cret"

	// A Debian instance.
	s := newDebianScene(t)
	if code, out := s.init(t, nil, "", "--primary-conninfo", withPassword); code != 0 {
		t.Fatalf("first init: %d\n%s", code, out)
	}
	confDir := filepath.Join(s.confRoot, "15", "standby")
	data := filepath.Join(s.varLib, "15", "standby")
	plant(confDir, "postgresql.conf.pg-standby-new", "pg_hba.conf.pg-standby-new", "start.conf.pg-standby-new",
		"pg_ctl.conf.pg-standby-new", "environment.pg-standby-new", "pg_ident.conf.pg-standby-new", "pg_hba.conf", "environment")
	plant(filepath.Join(confDir, "conf.d"), "pg-standby-primary.conf", "pg-standby-primary.conf.pg-standby-new")
	plant(data, "basebackup.signal.pg-standby")
	code, out := s.init(t, binds, "", "--primary-conninfo", withPassword)
	if code != 0 {
		t.Fatalf("re-run with planted links: %d\n%s", code, out)
	}
	for _, p := range []string{filepath.Join(confDir, "postgresql.conf"), filepath.Join(confDir, "conf.d", "pg-standby-primary.conf"), filepath.Join(data, "basebackup.signal")} {
		if fi, err := os.Lstat(p); err != nil || !fi.Mode().IsRegular() {
			t.Errorf("%s: not replaced by a regular file: %v %v", p, fi.Mode(), err)
		}
	}
	// The data directory's own files (a --pgdata instance).
	dd := filepath.Join(s.varLib, "15", "plain")
	if code, out := nsRun(t, [][2]string{{s.varLib, "/var/lib/postgresql"}}, nil, "", "init", "--pgdata", "/var/lib/postgresql/15/plain", "--primary-conninfo", attackConninfo); code != 0 {
		t.Fatalf("first init --pgdata: %d\n%s", code, out)
	}
	plant(dd, "postgresql.conf", "pg_ident.conf", "basebackup.signal.pg-standby", "pg_hba.conf|fifo")
	rerun := func() (int, string) {
		return nsRun(t, append([][2]string{{s.varLib, "/var/lib/postgresql"}}, binds...), nil, "", "init", "--pgdata", "/var/lib/postgresql/15/plain", "--primary-conninfo", attackConninfo)
	}
	if code, out := rerun(); code != 0 {
		t.Errorf("re-run --pgdata with planted links: %d\n%s", code, out)
	}
	if fi, err := os.Lstat(filepath.Join(dd, "postgresql.conf")); err != nil || !fi.Mode().IsRegular() {
		t.Errorf("postgresql.conf not replaced by a regular file: %v", err)
	}
	// Any other name (the old temporary name) or basebackup.signal itself a
	// link: not a minimal instance any more.
	plant(dd, "postgresql.conf.pg-standby-new")
	code, out = rerun()
	want := "pg-standby init: refusing data directory /var/lib/postgresql/15/plain: it is not empty and not a minimal instance (it holds postgresql.conf.pg-standby-new); " +
		"pg-standby init only creates new instances or updates minimal ones; choose another directory\n"
	if code != exitRefused || out != want {
		t.Errorf("old temporary name planted: %d\n got %q\nwant %q", code, out, want)
	}
	os.Remove(filepath.Join(dd, "postgresql.conf.pg-standby-new"))
	plant(dd, "basebackup.signal")
	code, out = rerun()
	want = "pg-standby init: refusing data directory /var/lib/postgresql/15/plain: it holds configuration but no basebackup.signal; it may be a cluster's configuration; choose another directory\n"
	if code != exitRefused || out != want {
		t.Errorf("basebackup.signal a link: %d\n got %q\nwant %q", code, out, want)
	}
	if after := oracle.Snapshot(t, shadowDir); after != before {
		t.Errorf("/etc/shadow changed:\n%s\nwas\n%s", after, before)
	}
}

// TestAttackInitSecrets: a password given to init lands only in a 0600
// file of postgres, init says where, and warns about the command line.
func TestAttackInitSecrets(t *testing.T) {
	testpg.RequireRoot(t, "needs root: the attack is on root-run code")
	uid, _ := pgOwner(t)
	s := newDebianScene(t)
	code, out := s.init(t, nil, "", "--primary-conninfo", attackConninfo+" password=S3cret")
	confDir := filepath.Join(s.confRoot, "15", "standby")
	secret := filepath.Join(confDir, "conf.d", "pg-standby-primary.conf")
	for _, want := range []string{
		"pg-standby init: warning: the password on the command line is visible to every local user (ps) while init runs; use --primary-conninfo-file FILE or - (standard input), or ~postgres/.pgpass\n",
		"the connection string holds a password: it is in " + secret + ", mode 0600, readable by its owner only\n",
	} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("init with a password: %d\n%s\nwant %q", code, out, want)
		}
	}
	checkSecret := func() {
		t.Helper()
		filepath.Walk(s.confRoot, func(p string, fi os.FileInfo, err error) error {
			c, _ := os.ReadFile(p)
			if fi.Mode().IsRegular() && bytes.Contains(c, []byte("S3cret")) {
				if p != secret || fi.Mode().Perm() != 0o600 || int(fi.Sys().(*syscall.Stat_t).Uid) != uid {
					t.Errorf("the password is in %s, mode %v, uid %d", p, fi.Mode(), fi.Sys().(*syscall.Stat_t).Uid)
				}
			}
			return nil
		})
	}
	checkSecret()
	// From standard input: no warning.
	code, out = s.init(t, nil, attackConninfo+" password=S3cret\n", "--primary-conninfo-file", "-")
	if code != 0 || strings.Contains(out, "warning") {
		t.Errorf("init --primary-conninfo-file -: %d\n%s", code, out)
	}
	checkSecret()
	// Without a password: the secret file goes.
	if code, out = s.init(t, nil, "", "--primary-conninfo", attackConninfo); code != 0 {
		t.Fatalf("init without a password: %d\n%s", code, out)
	}
	if _, err := os.Lstat(secret); err == nil {
		t.Errorf("%s still there after a re-run without a password", secret)
	}
}

// TestAttackConditionPATH: postgres planted /usr/local/sbin/systemctl; the
// root guard starts the backup unit by absolute path and never runs it.
func TestAttackConditionPATH(t *testing.T) {
	testpg.RequireRoot(t, "needs root: the attack is on root-run code")
	sbin := scratch(t)
	marker := filepath.Join(t.TempDir(), "pwned")
	os.WriteFile(filepath.Join(sbin, "systemctl"), []byte("#!/bin/sh\ntouch "+marker+"\n"), 0o755)
	pending := t.TempDir()
	os.WriteFile(filepath.Join(pending, "basebackup.signal"), nil, 0o600)
	code, out := nsRun(t, [][2]string{{sbin, "/usr/local/sbin"}}, []string{"PATH=/usr/local/sbin:/usr/bin:/bin"}, "", "condition", pending)
	if code != 1 || !strings.Contains(out, "base backup pending for "+pending) {
		t.Errorf("condition: %d\n%s", code, out)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Errorf("the planted /usr/local/sbin/systemctl ran as root\n%s", out)
	}
	t.Logf("%d %s", code, out)
}

// TestAttackConditionBounded: a FIFO, a device, a socket, a directory or a
// huge file in every include position (and as postgresql.auto.conf), an
// include chain past PostgreSQL's depth of 10: the root guard finishes at
// once with the reason, and lets postgres start.
func TestAttackConditionBounded(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo.conf")
	syscall.Mkfifo(fifo, 0o644)
	big := filepath.Join(dir, "big.conf")
	os.WriteFile(big, bytes.Repeat([]byte("# padding\n"), 200<<10), 0o644)
	sock := filepath.Join(dir, "sock.conf")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	sub := filepath.Join(dir, "sub.conf")
	os.Mkdir(sub, 0o755)
	targets := map[string]string{
		"/dev/zero": "a character device, not a regular file",
		fifo:        "a FIFO, not a regular file",
		sock:        "a socket, not a regular file",
		big:         "larger than 1048576 bytes (no configuration file is that large)",
	}
	type scene struct{ name, conf, auto, want string }
	var scenes []scene
	for target, why := range targets {
		for _, pos := range []string{"include", "include_if_exists", "include_dir", "include_dir direct", "auto.conf include", "auto.conf itself"} {
			scenes = append(scenes, scene{name: pos + " " + target, want: why})
			sc := &scenes[len(scenes)-1]
			switch pos {
			case "include", "include_if_exists":
				sc.conf = pos + " '" + target + "'\n"
			case "include_dir":
				d := filepath.Join(t.TempDir(), "conf.d")
				os.Mkdir(d, 0o755)
				os.Symlink(target, filepath.Join(d, "x.conf"))
				sc.conf = "include_dir '" + d + "'\n"
			case "include_dir direct":
				sc.conf = "include_dir '" + target + "'\n"
				if target != sub {
					sc.want = "not a directory"
				}
			case "auto.conf include":
				sc.auto = "include '" + target + "'\n"
			case "auto.conf itself":
				sc.auto = "->" + target
			}
		}
	}
	chain := t.TempDir()
	for i := 0; i < 12; i++ {
		os.WriteFile(filepath.Join(chain, fmt.Sprintf("%d.conf", i)), []byte(fmt.Sprintf("include '%d.conf'\n", i+1)), 0o644)
	}
	scenes = append(scenes, scene{name: "depth", conf: "include '" + chain + "/0.conf'\n", want: "maximum nesting depth exceeded"})
	scenes = append(scenes, scene{name: "include_dir naming a directory as a file", conf: "include '" + sub + "'\n", want: "a directory, not a regular file"})
	for _, sc := range scenes {
		root := t.TempDir()
		data := t.TempDir()
		os.WriteFile(filepath.Join(data, "basebackup.signal"), nil, 0o600)
		os.MkdirAll(filepath.Join(root, "15", "main"), 0o755)
		conf := filepath.Join(root, "15", "main", "postgresql.conf")
		os.WriteFile(conf, []byte("data_directory = '"+data+"'\n"+sc.conf), 0o644)
		if target, ok := strings.CutPrefix(sc.auto, "->"); ok {
			os.Symlink(target, filepath.Join(data, "postgresql.auto.conf"))
		} else if sc.auto != "" {
			os.WriteFile(filepath.Join(data, "postgresql.auto.conf"), []byte(sc.auto), 0o600)
		}
		code, out, took := runCondition(t, root, "15-main")
		if code != 0 || !strings.Contains(out, sc.want) || !strings.HasPrefix(out, "pg-standby condition: cluster 15-main: ") ||
			!strings.HasSuffix(out, "; letting postgres start\n") || took > 2*time.Second {
			t.Errorf("%s: status %d in %s\n%s\nwant %q", sc.name, code, took, out, sc.want)
		}
		t.Logf("%s: %d in %s: %s", sc.name, code, took.Round(time.Millisecond), strings.TrimSpace(out))
	}
}

// TestAttackPostgresVersionPath: PG_VERSION is the postgres user's (and the
// copied backup's): "../../../tmp/x" must not make pg-standby postgres exec
// /tmp/x/bin/postgres.
func TestAttackPostgresVersionPath(t *testing.T) {
	evil := t.TempDir()
	marker := filepath.Join(evil, "pwned")
	os.MkdirAll(filepath.Join(evil, "x", "bin"), 0o755)
	os.WriteFile(filepath.Join(evil, "x", "bin", "postgres"), []byte("#!/bin/sh\ntouch "+marker+"\n"), 0o755)
	data := t.TempDir()
	ver := "../../.." + evil + "/x"
	os.WriteFile(filepath.Join(data, "PG_VERSION"), []byte(ver+"\n"), 0o600)
	cmd := exec.Command(binary, "postgres", data)
	cmd.Env = append(os.Environ(), "PG_BINDIR=", "GORACE=atexit_sleep_ms=0")
	out, _ := cmd.CombinedOutput()
	code := cmd.ProcessState.Sys().(syscall.WaitStatus).ExitStatus()
	want := fmt.Sprintf("pg-standby postgres: %s/PG_VERSION holds %q, not a PostgreSQL version number\n", data, ver)
	if code != exitRefused || string(out) != want {
		t.Errorf("pg-standby postgres: %d\n got %q\nwant %q", code, out, want)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Errorf("the planted postgres ran")
	}
}

// TestAttackPassfileMode: a password file with group or world access is
// ignored by libpq and the walreceiver: init --check refuses it up front.
func TestAttackPassfileMode(t *testing.T) {
	pass := filepath.Join(t.TempDir(), "pgpass")
	os.WriteFile(pass, []byte("*:*:*:*:S3cret\n"), 0o644)
	if os.Geteuid() == 0 {
		asPostgres(t, pass)
	}
	check := func(passfile string) (int, string) {
		cmd := exec.Command(binary, "init", "--check", "--pgdata", filepath.Join(t.TempDir(), "d"), "--primary-conninfo", attackConninfo)
		cmd.Env = append(os.Environ(), "PGPASSFILE="+passfile, "GORACE=atexit_sleep_ms=0")
		out, _ := cmd.CombinedOutput()
		return cmd.ProcessState.Sys().(syscall.WaitStatus).ExitStatus(), string(out)
	}
	code, out := check(pass)
	want := "pg-standby init: password file " + pass + " (PGPASSFILE) has group or world access (mode 0644): libpq and the standby's walreceiver ignore " +
		"such a file, so the standby could not authenticate; run chmod 0600 " + pass + "\n"
	if code != exitConfig || out != want {
		t.Errorf("init --check with a 0644 password file: %d\n got %q\nwant %q", code, out, want)
	}
	if os.Geteuid() != 0 {
		return
	}
	// As root: a link (planted by postgres) to a file only root can read.
	rootOnly := filepath.Join(t.TempDir(), "root-pgpass")
	os.WriteFile(rootOnly, []byte("*:*:*:*:RootSecret\n"), 0o600)
	link := filepath.Join(testpg.TempDir(t), ".pgpass")
	os.Symlink(rootOnly, link)
	asPostgres(t, link)
	uid, _ := pgOwner(t)
	code, out = check(link)
	want = fmt.Sprintf("pg-standby init: password file %s (PGPASSFILE) belongs to uid 0, not to uid %d that the standby runs as, which could not read it; "+
		"give it to that user (mode 0600)\n", link, uid)
	if code != exitConfig || out != want {
		t.Errorf("init --check with a link to a root-only password file: %d\n got %q\nwant %q", code, out, want)
	}
}

// TestInitWarnsExposedPassword: a password in a primary_conninfo others can
// read (an admin's conf.d file, mode 0644, that wins) gets a warning.
func TestInitWarnsExposedPassword(t *testing.T) {
	root := t.TempDir()
	data := filepath.Join(t.TempDir(), "d")
	run := func() (int, string) {
		cmd := exec.Command(binary, "init", "15-x", "--pgdata", data, "--port", "5999", "--primary-conninfo-file", "-")
		cmd.Stdin = strings.NewReader(attackConninfo + " password=S3cret\n")
		cmd.Env = append(os.Environ(), "GORACE=atexit_sleep_ms=0", "PG_CLUSTER_CONF_ROOT="+root)
		out, _ := cmd.CombinedOutput()
		return cmd.ProcessState.Sys().(syscall.WaitStatus).ExitStatus(), string(out)
	}
	if code, out := run(); code != 0 || strings.Contains(out, "warning") {
		t.Fatalf("init: %d\n%s", code, out)
	}
	extra := filepath.Join(root, "15", "x", "conf.d", "zz-admin.conf")
	os.WriteFile(extra, []byte("primary_conninfo = '"+attackConninfo+" password=S3cret'\n"), 0o644)
	code, out := run()
	want := "pg-standby init: warning: " + extra + " holds a password in primary_conninfo and is readable by other users (mode 0644): " +
		"run chmod 0600 " + extra + ", or move the password to ~postgres/.pgpass (mode 0600)\n"
	if code != 0 || !strings.Contains(out, want) {
		t.Errorf("init with a readable password file: %d\n%s\nwant %q", code, out, want)
	}
}

// TestAttackRunOnLiveClusterInOtherPIDNamespace: the worker, as postgres,
// on a pending instance whose directory a live postgres in another PID
// namespace uses: refused (exit 77) before any write; postmaster.pid stays.
func TestAttackRunOnLiveClusterInOtherPIDNamespace(t *testing.T) {
	testpg.RequireRoot(t, "needs root: the attack is on root-run code")
	testpg.Require(t)
	dir := filepath.Join(testpg.TempDir(t), "data")
	bin := testpg.BinDir()
	if out, err := exec.Command("runuser", "-u", "postgres", "--", filepath.Join(bin, "initdb"), "-D", dir, "-A", "trust", "-U", "postgres", "--no-sync").CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	srv := exec.Command("unshare", "-p", "-f", "--kill-child", "--mount-proc", "runuser", "-u", "postgres", "--",
		filepath.Join(bin, "postgres"), "-D", dir, "-k", dir, "-p", freePort(t), "-c", "listen_addresses=")
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	pidFile := filepath.Join(dir, "postmaster.pid")
	t.Cleanup(func() {
		srv.Process.Kill()
		srv.Wait()
		// A killed postmaster leaves its segment: remove it (line 7: KEY ID).
		if b, err := os.ReadFile(pidFile); err == nil {
			if lines := strings.Split(string(b), "\n"); len(lines) >= 7 {
				if f := strings.Fields(lines[6]); len(f) == 2 {
					exec.Command("ipcrm", "-m", f[1]).Run()
				}
			}
		}
	})
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if b, _ := os.ReadFile(pidFile); bytes.Contains(b, []byte("ready")) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("postgres in its PID namespace did not start")
		}
	}
	os.WriteFile(filepath.Join(dir, "basebackup.signal"), nil, 0o600)
	asPostgres(t, filepath.Join(dir, "basebackup.signal"))
	code, out := runWorker(t, "run", "--pgdata", dir)
	if code != exitRefused || !strings.Contains(out, "refusing data directory "+dir+": its server's shared memory segment") {
		t.Errorf("run on a live cluster in another PID namespace: %d\n%s", code, out)
	}
	if _, err := os.Stat(pidFile); err != nil {
		t.Errorf("postmaster.pid of the live cluster: %v", err)
	}
	t.Logf("%d %s", code, strings.TrimSpace(out))
}

// freePort is testpg.FreePort: no two tests running in parallel get the same.
func freePort(t *testing.T) string {
	t.Helper()
	return strconv.Itoa(testpg.FreePort(t))
}

// TestAttackConditionSIGTERM: the guard ends at SIGTERM and within its own
// bound even when what it waits for hangs (here /usr/bin/systemctl, replaced
// in a private mount namespace by a program that never returns).
func TestAttackConditionSIGTERM(t *testing.T) {
	testpg.RequireRoot(t, "needs root: the attack is on root-run code")
	hang := filepath.Join(scratch(t), "systemctl")
	os.WriteFile(hang, []byte("#!/bin/sh\nexec sleep 600\n"), 0o755)
	pending := t.TempDir()
	os.WriteFile(filepath.Join(pending, "basebackup.signal"), nil, 0o600)
	start := func() (*exec.Cmd, *bytes.Buffer) {
		cmd := exec.Command("unshare", "-m", "--propagation", "private", "/bin/sh", "-c",
			`mount --bind "$1" /usr/bin/systemctl && exec "$2" condition "$3"`, "sh", hang, binary, pending)
		cmd.Env = append(os.Environ(), "GORACE=atexit_sleep_ms=0")
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd, &out
	}
	cmd, out := start()
	time.Sleep(time.Second)
	t0 := time.Now()
	cmd.Process.Signal(syscall.SIGTERM)
	cmd.Wait()
	ws := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if took := time.Since(t0); took > 3*time.Second || !ws.Signaled() || ws.Signal() != syscall.SIGTERM {
		t.Errorf("condition after SIGTERM: %v after %s\n%s", ws, took, out)
	}
	t.Logf("SIGTERM: %v after %s", ws, time.Since(t0).Round(time.Millisecond))

	cmd, out = start()
	t0 = time.Now()
	cmd.Wait()
	took := time.Since(t0)
	// The guard's own 10 s, plus starting a -race binary on a loaded machine;
	// the sleeping systemctl would take 600 s.
	if took > conditionTimeout+15*time.Second || cmd.ProcessState.ExitCode() != 1 || !strings.Contains(out.String(), "could not start pg-standby@") {
		t.Errorf("condition with a hanging systemctl: status %d after %s\n%s", cmd.ProcessState.ExitCode(), took, out)
	}
	t.Logf("hanging systemctl: status %d after %s: %s", cmd.ProcessState.ExitCode(), took.Round(time.Millisecond), strings.TrimSpace(out.String()))
}

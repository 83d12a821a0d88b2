package replconn_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"golang.org/x/sys/unix"

	"github.com/pg-standby/pg-standby/internal/replconn"
	"github.com/pg-standby/pg-standby/internal/testpg"
)

func connect(t *testing.T, conninfo string) (*pgconn.PgConn, error) {
	t.Helper()
	cfg, err := replconn.ParseConninfo(conninfo)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := replconn.Connect(ctx, cfg, slogDiscard())
	if err == nil {
		t.Cleanup(func() { conn.Close(context.Background()) })
		if _, err := replconn.IdentifySystem(ctx, conn); err != nil {
			t.Fatalf("IDENTIFY_SYSTEM over %q: %v", conninfo, err)
		}
	}
	return conn, err
}

// standbyOf makes a hot standby of p with pg_basebackup -R (it listens on
// its unix socket only).
func standbyOf(t *testing.T, p *testpg.Server) *testpg.Server {
	t.Helper()
	dir := testpg.TempDir(t)
	out, err := exec.Command(filepath.Join(testpg.BinDir(), "pg_basebackup"), "-D", dir, "-R", "-c", "fast", "-d", p.ConnString()).CombinedOutput()
	if err != nil {
		t.Fatalf("pg_basebackup: %v\n%s", err, out)
	}
	return testpg.StartStandby(t, dir)
}

// downPort is a TCP port nothing listens on.
func downPort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return port
}

// TestTargetSessionAttrs: with the first host down, a hot standby (unix
// socket) second and a primary third, each target_session_attrs picks the
// server libpq picks, over a physical replication connection.
// PostgreSQL 15 only: standbyOf uses the host's pg_basebackup.
func TestTargetSessionAttrs(t *testing.T) {
	testpg.Require(t)
	p := testpg.Start(t, testpg.Options{})
	s := standbyOf(t, p)
	down := downPort(t)
	all := fmt.Sprintf("host=127.0.0.1,%s,127.0.0.1 port=%d,%d,%d user=replicator password=%s connect_timeout=5",
		s.SocketDir, down, s.Port, p.Port, p.Password)
	primaryOnly := fmt.Sprintf("host=127.0.0.1,127.0.0.1 port=%d,%d user=replicator password=%s", down, p.Port, p.Password)
	standbyOnly := fmt.Sprintf("host=127.0.0.1,%s port=%d,%d user=replicator", s.SocketDir, down, s.Port)
	for _, c := range []struct {
		conninfo, tsa string
		standby       bool
		err           error
	}{
		{all, "any", true, nil},
		{all, "read-write", false, nil},
		{all, "primary", false, nil},
		{all, "read-only", true, nil},
		{all, "standby", true, nil},
		{all, "prefer-standby", true, nil},
		{primaryOnly, "prefer-standby", false, nil},
		{primaryOnly, "standby", false, replconn.ErrNotStandby},
		{primaryOnly, "read-only", false, replconn.ErrReadWrite},
		{standbyOnly, "read-write", false, replconn.ErrReadOnly},
		{standbyOnly, "primary", false, replconn.ErrInStandby},
	} {
		name := c.tsa
		if c.conninfo == primaryOnly {
			name += " of down,primary"
		} else if c.conninfo == standbyOnly {
			name += " of down,standby"
		}
		t.Run(name, func(t *testing.T) {
			conn, err := connect(t, c.conninfo+" target_session_attrs="+c.tsa)
			if c.err != nil {
				if !errors.Is(err, c.err) {
					t.Fatalf("error %v, want %v", err, c.err)
				}
				t.Logf("error: %v", err)
				return
			}
			if err != nil {
				t.Fatalf("connect: %v", err)
			}
			if got := conn.ParameterStatus("in_hot_standby") == "on"; got != c.standby {
				t.Errorf("connected to %v (in_hot_standby %v), want standby %v", conn.Conn().RemoteAddr(), got, c.standby)
			}
		})
	}
}

// TestPinSameServer: the second connection of a backup goes to the server
// the first reached, even when the host list would pick another now.
func TestPinSameServer(t *testing.T) {
	testpg.Require(t)
	p1 := testpg.Start(t, testpg.Options{})
	p2 := testpg.Start(t, testpg.Options{})
	cfg, err := replconn.ParseConninfo(fmt.Sprintf("host=127.0.0.1,127.0.0.1 port=%d,%d user=replicator password=%s load_balance_hosts=random", p1.Port, p2.Port, p1.Password))
	if err != nil {
		t.Fatal(err)
	}
	p2.SQL(t, fmt.Sprintf("ALTER ROLE replicator PASSWORD '%s'", p1.Password))
	ctx := context.Background()
	for range 10 {
		first, err := replconn.Connect(ctx, cfg, slogDiscard())
		if err != nil {
			t.Fatal(err)
		}
		second, err := replconn.Connect(ctx, replconn.Pin(cfg, first), slogDiscard())
		if err != nil {
			t.Fatal(err)
		}
		if a, b := first.Conn().RemoteAddr().String(), second.Conn().RemoteAddr().String(); a != b {
			t.Errorf("first connection to %s, second to %s", a, b)
		}
		first.Close(ctx)
		second.Close(ctx)
	}
}

// TestLoadBalanceHosts: random spreads connections over both primaries;
// disable (the default) always takes the first; pgconn alone would send the
// option to the server, which refuses it.
func TestLoadBalanceHosts(t *testing.T) {
	testpg.Require(t)
	p1 := testpg.Start(t, testpg.Options{})
	p2 := testpg.Start(t, testpg.Options{})
	p2.SQL(t, fmt.Sprintf("ALTER ROLE replicator PASSWORD '%s'", p1.Password))
	base := fmt.Sprintf("host=127.0.0.1,127.0.0.1 port=%d,%d user=replicator password=%s", p1.Port, p2.Port, p1.Password)
	count := func(opt string) map[int]int {
		seen := map[int]int{}
		for range 20 {
			conn, err := connect(t, base+" "+opt)
			if err != nil {
				t.Fatalf("%s: %v", opt, err)
			}
			seen[conn.Conn().RemoteAddr().(*net.TCPAddr).Port]++
			conn.Close(context.Background())
		}
		return seen
	}
	if seen := count("load_balance_hosts=random"); seen[p1.Port] == 0 || seen[p2.Port] == 0 {
		t.Errorf("load_balance_hosts=random: connections per port %v, want both used", seen)
	}
	if seen := count("load_balance_hosts=disable"); seen[p1.Port] != 20 {
		t.Errorf("load_balance_hosts=disable: connections per port %v, want all to %d", seen, p1.Port)
	}
	if _, err := replconn.ParseConninfo(base + " load_balance_hosts=sometimes"); err == nil || !strings.Contains(err.Error(), "load_balance_hosts") {
		t.Errorf("load_balance_hosts=sometimes: %v, want an error naming it", err)
	}
}

func sockopt(t *testing.T, conn *pgconn.PgConn, level, opt int) int {
	t.Helper()
	raw, err := conn.Conn().(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var v int
	var serr error
	if err := raw.Control(func(fd uintptr) { v, serr = unix.GetsockoptInt(int(fd), level, opt) }); err != nil || serr != nil {
		t.Fatal(err, serr)
	}
	return v
}

// TestKeepalivesAndTimeouts: the keepalive options and tcp_user_timeout are
// set on the socket as libpq sets them (pgconn alone sends them to the
// server, which refuses the connection); connect_timeout bounds a server
// that accepts and never answers.
func TestKeepalivesAndTimeouts(t *testing.T) {
	testpg.Require(t)
	p := testpg.Start(t, testpg.Options{})
	conn, err := connect(t, p.ConnString()+" sslmode=disable keepalives=1 keepalives_idle=7 keepalives_interval=3 keepalives_count=4 tcp_user_timeout=9000")
	if err != nil {
		t.Fatalf("connect with keepalive options: %v", err)
	}
	for _, o := range []struct {
		name       string
		level, opt int
		want       int
	}{
		{"SO_KEEPALIVE", unix.SOL_SOCKET, unix.SO_KEEPALIVE, 1},
		{"TCP_KEEPIDLE", unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, 7},
		{"TCP_KEEPINTVL", unix.IPPROTO_TCP, unix.TCP_KEEPINTVL, 3},
		{"TCP_KEEPCNT", unix.IPPROTO_TCP, unix.TCP_KEEPCNT, 4},
		{"TCP_USER_TIMEOUT", unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, 9000},
	} {
		if got := sockopt(t, conn, o.level, o.opt); got != o.want {
			t.Errorf("%s = %d, want %d", o.name, got, o.want)
		}
	}
	off, err := connect(t, p.ConnString()+" sslmode=disable keepalives=0")
	if err != nil {
		t.Fatalf("connect with keepalives=0: %v", err)
	}
	if got := sockopt(t, off, unix.SOL_SOCKET, unix.SO_KEEPALIVE); got != 0 {
		t.Errorf("keepalives=0: SO_KEEPALIVE = %d", got)
	}

	mute, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer mute.Close()
	go func() {
		for {
			c, err := mute.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	began := time.Now()
	_, err = connect(t, fmt.Sprintf("host=127.0.0.1 port=%d user=replicator connect_timeout=1 sslmode=disable", mute.Addr().(*net.TCPAddr).Port))
	if err == nil || time.Since(began) > 5*time.Second {
		t.Errorf("connect_timeout=1 to a mute server: %v after %v", err, time.Since(began))
	}
}

// TestServiceAndPassfile: service= with PGSERVICEFILE and passfile= supply
// host, port and password as libpq reads them.
func TestServiceAndPassfile(t *testing.T) {
	testpg.Require(t)
	p := testpg.Start(t, testpg.Options{Auth: "scram-sha-256"})
	dir := t.TempDir()
	svc := filepath.Join(dir, "pg_service.conf")
	write(t, svc, fmt.Sprintf("[standby_src]\nhost=127.0.0.1\nport=%d\nuser=replicator\npassword=%s\n", p.Port, p.Password))
	t.Setenv("PGSERVICEFILE", svc)
	if _, err := connect(t, "service=standby_src"); err != nil {
		t.Errorf("service=standby_src: %v", err)
	}
	// Not in the user's file: libpq takes it from $PGSYSCONFDIR/pg_service.conf.
	sys := t.TempDir()
	write(t, filepath.Join(sys, "pg_service.conf"), fmt.Sprintf("[system_src]\nhost=127.0.0.1\nport=%d\nuser=replicator\npassword=%s\n", p.Port, p.Password))
	t.Setenv("PGSYSCONFDIR", sys)
	if _, err := connect(t, "service=system_src"); err != nil {
		t.Errorf("service=system_src from PGSYSCONFDIR: %v", err)
	}
	if _, err := connect(t, "service=nowhere"); err == nil {
		t.Errorf("service=nowhere: connected")
	}
	pass := filepath.Join(dir, "pgpass")
	write(t, pass, fmt.Sprintf("127.0.0.1:%d:*:replicator:%s\n", p.Port, p.Password))
	conninfo := fmt.Sprintf("host=127.0.0.1 port=%d user=replicator passfile='%s'", p.Port, pass)
	if _, err := connect(t, conninfo); err != nil {
		t.Errorf("passfile: %v", err)
	}
	// libpq ignores a password file others can read: so does the backup.
	if err := os.Chmod(pass, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, notes, err := replconn.ParseConninfoNotes(conninfo)
	if err != nil {
		t.Fatal(err)
	}
	want := "password file " + pass + " has group or world access (mode 0644): libpq, which the standby's walreceiver uses, ignores it, so pg-standby does too; chmod 0600 " + pass + " (owned by the user the standby runs as)"
	if cfg.Password != "" || len(notes) != 1 || notes[0] != want {
		t.Errorf("passfile mode 0644: password kept %v, notes %q, want [%q]", cfg.Password != "", notes, want)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if conn, err := replconn.Connect(ctx, cfg, slogDiscard()); err == nil {
		conn.Close(ctx)
		t.Errorf("connected with the password of a mode 0644 passfile")
	}
	// A password given in the conninfo is not the file's business.
	if _, notes, _ := replconn.ParseConninfoNotes(conninfo + " password=" + p.Password); len(notes) != 0 {
		t.Errorf("explicit password: notes %q", notes)
	}
}

func TestConninfoPassfileKey(t *testing.T) {
	t.Setenv("PGPASSFILE", "/env/pgpass")
	for in, want := range map[string]string{
		"host=a passfile=/x/y":                    "/x/y",
		`host=a passfile = '/with space/it\'s'`:   "/with space/it's",
		"passfile=/first host=b passfile=/second": "/second",
		"host=a": "/env/pgpass",
		"postgresql://u@h/db?passfile=%2Fq%2Fpass":     "/q/pass",
		"postgresql://u@h/db?sslmode=disable":          "/env/pgpass",
		"host=a application_name='passfile=/not/this'": "/env/pgpass",
	} {
		if got := replconn.PassfilePath(in); got != want {
			t.Errorf("PassfilePath(%q) = %q, want %q", in, got, want)
		}
	}
}

func write(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestSSL: a server with ssl = on and a certificate made here; sslmode,
// sslrootcert, sslcert and sslkey behave as libpq's (client certificate
// authentication by a hostssl ... cert line).
func TestSSL(t *testing.T) {
	testpg.Require(t)
	certs := testpg.TempDir(t)
	ca, caKey := testpg.MakeCert(t, certs, "ca", nil, nil)
	testpg.MakeCert(t, certs, "server", ca, caKey)
	testpg.MakeCert(t, certs, "replicator", ca, caKey)
	testpg.MakeCert(t, certs, "otherca", nil, nil)
	testpg.Chown(t, certs)
	p := testpg.Start(t, testpg.Options{
		Conf: map[string]string{"ssl": "on", "ssl_cert_file": filepath.Join(certs, "server.crt"),
			"ssl_key_file": filepath.Join(certs, "server.key"), "ssl_ca_file": filepath.Join(certs, "ca.crt")},
		HBA: []string{"hostssl replication replicator 127.0.0.1/32 cert"},
	})
	base := fmt.Sprintf("host=127.0.0.1 port=%d user=replicator", p.Port)
	f := func(name string) string { return filepath.Join(certs, name) }
	client := fmt.Sprintf(" sslcert=%s sslkey=%s", f("replicator.crt"), f("replicator.key"))
	// hostaddr: dialled by address, verified against the host name (the
	// certificate holds 127.0.0.1 only, so the name "db.invalid" must fail
	// verify-full, and sslmode=require with it must connect without DNS).
	if _, err := connect(t, fmt.Sprintf("host=db.invalid hostaddr=127.0.0.1 port=%d user=replicator sslmode=require%s", p.Port, client)); err != nil {
		t.Errorf("hostaddr with an unresolvable host name: %v", err)
	}
	if _, err := connect(t, fmt.Sprintf("host=db.invalid hostaddr=127.0.0.1 port=%d user=replicator sslmode=verify-full sslrootcert=%s%s", p.Port, f("ca.crt"), client)); err == nil || !strings.Contains(err.Error(), "db.invalid") {
		t.Errorf("hostaddr, verify-full against a name the certificate lacks: %v", err)
	}
	if _, err := replconn.ParseConninfo("host=a,b hostaddr=127.0.0.1"); err == nil {
		t.Errorf("two hosts, one hostaddr: accepted")
	}
	for _, c := range []struct {
		opts string
		ok   bool
	}{
		{"sslmode=verify-full sslrootcert=" + f("ca.crt") + client, true},
		{"sslmode=require" + client, true},
		{"sslmode=verify-full sslrootcert=" + f("otherca.crt") + client, false},
		{"sslmode=verify-full sslrootcert=" + f("ca.crt"), false}, // no client certificate for the cert line
		{"sslmode=disable", true},                                 // no TLS: the host ... trust line
	} {
		_, err := connect(t, base+" "+c.opts)
		t.Logf("%s: %v", c.opts, err)
		if (err == nil) != c.ok {
			t.Errorf("%s: error %v, want ok %v", c.opts, err, c.ok)
		}
	}
}

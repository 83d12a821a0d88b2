package testpg

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// Options configure a primary started by Start.
type Options struct {
	Auth   string            // "trust" (default) or "scram-sha-256" for TCP connections
	Conf   map[string]string // extra/overriding postgresql.conf settings, e.g. {"wal_level":"minimal","max_wal_senders":"0"}
	HBA    []string          // extra pg_hba.conf lines, put BEFORE the defaults
	Initdb []string          // extra initdb args

	// Version is the PostgreSQL version to run; the zero value means
	// VersionOf(t).
	Version Version

	// InitdbDefaults leaves out initdb's --data-checksums, so that the
	// version's own default holds (off before 18, on from 18).
	InitdbDefaults bool
}

// Server is a running PostgreSQL server owned by a test.
type Server struct {
	DataDir   string
	SocketDir string
	Port      int
	Password  string // the replicator's password ("" for a standby: it is the primary's)

	t         testing.TB
	v         Version
	logFile   string
	pgctlOpts string // pg_ctl -o options (standbys)

	mu      sync.Mutex
	stopped bool // Stop was called: final
	pid     int  // postmaster pid of the last start, 0 if unknown
	reaper  *reaper
}

// initdbSem bounds concurrent initdb runs of this process: initdb is CPU- and
// IO-heavy, and running more at once than there are CPUs only makes each one
// (and everything else) slower.
var initdbSem = make(chan struct{}, max(2, runtime.NumCPU()))

// Start is Start with opts.Version = v.
func (v Version) Start(t testing.TB, opts Options) *Server {
	t.Helper()
	opts.Version = v
	return Start(t, opts)
}

// Version is the PostgreSQL version the server runs.
func (s *Server) Version() Version { return s.v }

// Start initdb's and starts a primary as described in the package
// documentation; the server is stopped in t.Cleanup.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	v := opts.Version
	if v.Major == 0 {
		v = VersionOf(t)
	}
	v.Skip(t)
	auth := opts.Auth
	if auth == "" {
		auth = "trust"
	}
	if auth != "trust" && auth != "scram-sha-256" {
		t.Fatalf("testpg: Options.Auth %q: want \"trust\" or \"scram-sha-256\"", auth)
	}
	began := time.Now()
	s := &Server{t: t, v: v, DataDir: TempDir(t), SocketDir: TempDir(t), Password: randomPassword()}
	s.logFile = filepath.Join(s.DataDir, "server.log")

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	// The superuser authenticates over the unix socket only (trust); TCP rules
	// are written below. (initdb --auth-host=scram-sha-256 would demand a
	// superuser password, so pg_hba.conf is written here instead.)
	args := []string{"-D", s.DataDir, "-U", "postgres", "-A", "trust",
		"-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions"}
	if !opts.InitdbDefaults {
		args = append(args, "--data-checksums")
	}
	initdbSem <- struct{}{}
	_, err := v.runPG(ctx, "initdb", append(args, opts.Initdb...))
	<-initdbSem
	if err != nil {
		t.Fatalf("testpg: %v", err)
	}
	if err := writeHBA(s.DataDir, auth, opts.HBA); err != nil {
		t.Fatalf("testpg: %v", err)
	}
	confPath := filepath.Join(s.DataDir, "postgresql.conf")
	initConf, err := os.ReadFile(confPath)
	if err != nil {
		t.Fatalf("testpg: %v", err)
	}
	settings := map[string]string{
		"listen_addresses":        "127.0.0.1",
		"unix_socket_directories": s.SocketDir,
		"wal_level":               "replica",
		"max_wal_senders":         "10",
		"max_replication_slots":   "10",
		"shared_buffers":          "32MB",
		"log_min_messages":        "warning",
		"logging_collector":       "off",
	}
	if auth == "scram-sha-256" {
		settings["password_encryption"] = "scram-sha-256"
	}
	for k, v := range opts.Conf {
		settings[strings.ToLower(k)] = v
	}

	s.registerCleanup(t)
	const attempts = 5
	for i := 1; ; i++ {
		s.Port = pickPort(t)
		settings["port"] = fmt.Sprint(s.Port)
		if err := os.WriteFile(confPath, append(initConf, confBlock(settings)...), 0o600); err != nil {
			t.Fatalf("testpg: write postgresql.conf: %v", err)
		}
		logStart := s.logSize()
		err := s.start()
		if err == nil {
			break
		}
		newLog := s.logSince(logStart)
		if i < attempts && strings.Contains(newLog, "Address already in use") {
			t.Logf("testpg: port %d taken, retrying", s.Port)
			continue
		}
		t.Fatalf("testpg: start server: %v\n--- server log ---\n%s", err, newLog)
	}
	s.SQL(t, fmt.Sprintf("CREATE ROLE replicator WITH LOGIN REPLICATION PASSWORD %s", quoteLiteral(s.Password)))
	t.Logf("testpg: PostgreSQL %d primary on 127.0.0.1:%d, data %s (started in %v)", v.Major, s.Port, s.DataDir, time.Since(began).Round(time.Millisecond))
	return s
}

// ConnString is a libpq key=value conninfo for the replication role over TCP
// 127.0.0.1. It has no replication=... key: the caller adds it.
func (s *Server) ConnString() string {
	return fmt.Sprintf("host=127.0.0.1 port=%d user=replicator password=%s dbname=postgres connect_timeout=10",
		s.Port, s.Password)
}

// registerCleanup stops the server at the end of the test and then, if the
// test failed, logs the tail of the server log.
func (s *Server) registerCleanup(t testing.TB) {
	t.Cleanup(func() {
		s.Stop(t)
		if t.Failed() {
			t.Logf("testpg: last lines of server log %s:\n%s", s.logFile, s.LogTail(40))
		}
	})
}

func writeHBA(dataDir, auth string, extra []string) error {
	var b strings.Builder
	b.WriteString("# written by testpg\n")
	for _, l := range extra {
		b.WriteString(l + "\n")
	}
	b.WriteString("local all all trust\n")
	b.WriteString("local replication all trust\n")
	fmt.Fprintf(&b, "host replication replicator 127.0.0.1/32 %s\n", auth)
	fmt.Fprintf(&b, "host all all 127.0.0.1/32 %s\n", auth)
	if err := os.WriteFile(filepath.Join(dataDir, "pg_hba.conf"), []byte(b.String()), 0o600); err != nil {
		return fmt.Errorf("write pg_hba.conf: %w", err)
	}
	return nil
}

// confBlock renders settings (sorted) to append to postgresql.conf; later
// lines override initdb's.
func confBlock(settings map[string]string) string {
	keys := make([]string, 0, len(settings))
	for k := range settings {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString("\n# added by testpg\n")
	for _, k := range keys {
		fmt.Fprintf(&b, "%s = %s\n", k, confValue(settings[k]))
	}
	return b.String()
}

// confValue quotes a setting unless it is quoted already.
func confValue(v string) string {
	if len(v) >= 2 && v[0] == '\'' && v[len(v)-1] == '\'' {
		return v
	}
	return quoteLiteral(v)
}

func quoteLiteral(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

func randomPassword() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // never fails (crypto/rand.Read panics rather than returning an error)
	return hex.EncodeToString(b)
}

// FreePort is a TCP port free on 127.0.0.1 that no other caller in this
// process (Start included) has been handed, for a test's own servers (etcd,
// Patroni): tests running in parallel do not pick the same one.
func FreePort(t testing.TB) int {
	t.Helper()
	return freePort(t)
}

// pickPort is freePort; tests replace it to provoke a port collision.
var pickPort = freePort

var (
	portsMu sync.Mutex
	ports   = map[int]bool{}
)

// freePort returns a TCP port free on 127.0.0.1 that this process has not
// handed out before. Another process may still take it before the server
// binds it; Start retries then.
func freePort(t testing.TB) int {
	t.Helper()
	portsMu.Lock()
	defer portsMu.Unlock()
	for range 100 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("testpg: find a free port: %v", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		_ = l.Close()
		if !ports[port] {
			ports[port] = true
			return port
		}
	}
	t.Fatal("testpg: no free port found")
	return 0
}

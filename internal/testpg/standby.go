package testpg

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// StartStandby starts a postgres server on an existing data directory produced
// by a base backup (with standby.signal and its own postgresql.conf holding
// primary_conninfo). It calls Chown first, picks a new port and socket dir and
// passes them on the command line (pg_ctl -o "-p PORT -k DIR -c
// listen_addresses=”"), never editing the directory's configuration files,
// and waits (pg_ctl -w, timeout 60s) until the server accepts connections,
// i.e. reached consistency as a hot standby. The server log is written outside
// the data directory (LogTail). The server is stopped in t.Cleanup.
//
// The standby listens on its unix socket only: use SQL, not ConnString.
func StartStandby(t testing.TB, dataDir string) *Server {
	t.Helper()
	return VersionOf(t).StartStandby(t, dataDir)
}

// StartStandby is StartStandby with version v.
func (v Version) StartStandby(t testing.TB, dataDir string) *Server {
	t.Helper()
	v.Skip(t)
	Chown(t, dataDir)
	began := time.Now()
	s := &Server{t: t, v: v, DataDir: dataDir, SocketDir: TempDir(t)}
	s.logFile = filepath.Join(s.SocketDir, "server.log")
	s.Port = freePort(t)
	s.pgctlOpts = fmt.Sprintf("-p %d -k %s -c listen_addresses=''", s.Port, shellQuote(s.SocketDir))
	s.registerCleanup(t)
	if err := s.start(); err != nil {
		t.Fatalf("testpg: start standby: %v\n--- server log ---\n%s", err, s.LogTail(40))
	}
	t.Logf("testpg: PostgreSQL %d standby on socket %s port %d, data %s (started in %v)", v.Major, s.SocketDir, s.Port, dataDir, time.Since(began).Round(time.Millisecond))
	return s
}

// shellQuote quotes s for /bin/sh (pg_ctl passes -o through a shell).
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

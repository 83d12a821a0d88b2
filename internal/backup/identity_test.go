package backup_test

import (
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pg-standby/pg-standby/internal/backup"
	"github.com/pg-standby/pg-standby/internal/oracle"
	"github.com/pg-standby/pg-standby/internal/progress"
	"github.com/pg-standby/pg-standby/internal/testpg"
)

// switchProxy is one port in front of several clusters: each TCP connection
// goes to the address route gives for its number (1, 2, ...).
type switchProxy struct {
	l     net.Listener
	route func(n int) string
	mu    sync.Mutex
	n     int
	conns []net.Conn
	wg    sync.WaitGroup
}

func startSwitchProxy(t *testing.T, route func(n int) string) *switchProxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	px := &switchProxy{l: l, route: route}
	px.wg.Add(1)
	go px.accept()
	t.Cleanup(px.close)
	return px
}

func (px *switchProxy) accept() {
	defer px.wg.Done()
	for {
		c, err := px.l.Accept()
		if err != nil {
			return
		}
		px.mu.Lock()
		px.n++
		target := px.route(px.n)
		px.mu.Unlock()
		s, err := net.Dial("tcp", target)
		if err != nil {
			c.Close()
			continue
		}
		px.mu.Lock()
		px.conns = append(px.conns, c, s)
		px.mu.Unlock()
		px.wg.Add(2)
		go func() { defer px.wg.Done(); io.Copy(s, c); s.(*net.TCPConn).CloseWrite() }()
		go func() { defer px.wg.Done(); io.Copy(c, s); c.(*net.TCPConn).CloseWrite() }()
	}
}

func (px *switchProxy) close() {
	px.l.Close()
	px.mu.Lock()
	for _, c := range px.conns {
		c.Close()
	}
	px.mu.Unlock()
	px.wg.Wait()
}

// conninfo is s's conninfo through the proxy; without SSL negotiation,
// one connection of the worker is one TCP connection.
func (px *switchProxy) conninfo(s *testpg.Server) string {
	_, port, _ := net.SplitHostPort(px.l.Addr().String())
	return strings.Replace(s.ConnString(), fmt.Sprintf("port=%d", s.Port), "port="+port, 1) + " sslmode=disable"
}

func addr(s *testpg.Server) string { return fmt.Sprintf("127.0.0.1:%d", s.Port) }

func systemID(t *testing.T, s *testpg.Server) string {
	return s.SQL(t, "SELECT system_identifier FROM pg_control_system()")
}

// TestWALConnectionOtherSystem: when the WAL connection reaches another
// cluster than the backup connection (one address in front of two
// clusters), the attempt fails before it writes, as a configuration error
// that names both systems and primary_conninfo, and is not retried.
func TestWALConnectionOtherSystem(t *testing.T) {
	testpg.ForEachVersion(t, func(t *testing.T, v testpg.Version) {
		a := testpg.Start(t, testpg.Options{})
		b := testpg.Start(t, testpg.Options{})
		px := startSwitchProxy(t, func(n int) string {
			if n == 1 {
				return addr(a) // the backup connection
			}
			return addr(b)
		})
		dir := newInstance(t, px.conninfo(a))
		_, err := run(t, backup.Options{DataDir: dir})
		if err == nil {
			t.Fatal("the backup succeeded with WAL from another cluster")
		}
		idA, idB := systemID(t, a), systemID(t, b)
		if backup.KindOf(err) != backup.Config || !strings.Contains(err.Error(), idA) || !strings.Contains(err.Error(), idB) ||
			!strings.Contains(err.Error(), "primary_conninfo in ") {
			t.Errorf("error (%s): %v\nwant a configuration error naming systems %s and %s and primary_conninfo", backup.KindOf(err), err, idA, idB)
		}
		oracle.FailedAttempt(t, dir)
	})
}

// TestResumeOtherSystemBetweenAttempts: the first attempt copies half of
// cluster A; then another cluster, B, answers on the same port. The retry
// must not patch A's files with B's changed blocks: it takes a full backup
// of B over the directory, which verifies and has B's content.
func TestResumeOtherSystemBetweenAttempts(t *testing.T) {
	testpg.ForEachVersion(t, func(t *testing.T, v testpg.Version) {
		testpg.RequireIncremental(t, v)
		conf := map[string]string{"summarize_wal": "on", "autovacuum": "off"}
		a := testpg.Start(t, testpg.Options{Conf: conf})
		tables := loadTables(t, a, 6)
		// B: the same tables (the same relfilenodes) with other rows, then
		// more WAL than A had when the first attempt started, so that B
		// accepts the range the journal uploads (before basebackup.signal
		// named the system, the retry then rebuilt 129 of B's files on A's
		// bytes, on 17).
		b := testpg.Start(t, testpg.Options{Conf: conf})
		for _, tb := range tables {
			b.SQL(t, "CREATE TABLE "+tb+" AS SELECT g, repeat(md5((g * 7)::text), 2) AS pad FROM generate_series(1, 150000) g")
		}
		b.SQL(t, "CREATE TABLE filler AS SELECT g, repeat('f', 200) AS pad FROM generate_series(1, 200000) g")
		var target atomic.Value
		target.Store(addr(a))
		px := startSwitchProxy(t, func(int) string { return target.Load().(string) })
		dir := newInstance(t, px.conninfo(a))
		if entries := interrupt(t, dir, 0.5, 0); len(entries) == 0 {
			t.Fatal("the interrupted attempt recorded no completed file")
		}
		target.Store(addr(b))
		tr := progress.NewTracker()
		logger, log := newCaptureLog(t)
		if _, err := run(t, backup.Options{DataDir: dir, Progress: tr, Log: logger}); err != nil {
			t.Fatalf("retry against B: %v\n%s", err, log.String())
		}
		if tr.Reused.Load() != 0 || tr.Snapshot().Kind != "" {
			t.Errorf("retry against B kept %d bytes of A's files (kind %q); want a full backup", tr.Reused.Load(), tr.Snapshot().Kind)
		}
		idA, idB := systemID(t, a), systemID(t, b)
		if want := fmt.Sprintf("the primary is system %s, but earlier attempts copied system %s into this directory: primary_conninfo in ", idB, idA); !strings.Contains(log.String(), want) {
			t.Errorf("the retry's log does not say %q:\n%s", want, log.String())
		}
		verifyBackup(t, dir)
		want := oracle.TableSums(t, b, tables...)
		b.SQL(t, "CREATE TABLE after_switch AS SELECT 1 AS x")
		s := testpg.StartStandby(t, dir)
		s.WaitFor(t, "SELECT x FROM after_switch", "1", time.Minute)
		if got := oracle.TableSums(t, s, tables...); got != want {
			t.Errorf("content differs from B's:\nstandby:\n%s\nB:\n%s", got, want)
		}
	})
}

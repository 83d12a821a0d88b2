package backup_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pg-standby/pg-standby/internal/backup"
	"github.com/pg-standby/pg-standby/internal/basebackup"
	"github.com/pg-standby/pg-standby/internal/instance"
	"github.com/pg-standby/pg-standby/internal/manifest"
	"github.com/pg-standby/pg-standby/internal/oracle"
	"github.com/pg-standby/pg-standby/internal/testpg"
	"github.com/pg-standby/pg-standby/internal/wal"
)

// What the supported versions do differently, each against the real server.

// TestManifestVersionPerServer: PostgreSQL 15 sends a version 1 manifest
// without System-Identifier, 17 and 18 version 2 with the system identifier
// that IDENTIFY_SYSTEM and pg_control report; the backup's start LSN is the
// one backup_label names (compared parsed, never as text).
func TestManifestVersionPerServer(t *testing.T) {
	testpg.ForEachVersion(t, func(t *testing.T, v testpg.Version) {
		p := testpg.Start(t, testpg.Options{})
		dir := newInstance(t, p.ConnString())
		res, err := run(t, backup.Options{DataDir: dir})
		if err != nil {
			t.Fatalf("backup: %v", err)
		}
		sysid := p.SQL(t, "SELECT system_identifier FROM pg_control_system()")
		if res.SystemID != sysid {
			t.Errorf("Result.SystemID %s, pg_control_system %s", res.SystemID, sysid)
		}
		raw, err := os.ReadFile(filepath.Join(dir, instance.Manifest))
		if err != nil {
			t.Fatal(err)
		}
		m, err := manifest.Parse(raw)
		if err != nil {
			t.Fatalf("parse the server's manifest: %v", err)
		}
		wantVer, wantSys := 1, "0"
		if v.Major >= 17 {
			wantVer, wantSys = 2, sysid
		}
		if m.Version != wantVer || strconv.FormatUint(m.SystemIdentifier, 10) != wantSys {
			t.Errorf("PostgreSQL %d manifest: version %d, System-Identifier %d; want %d, %s",
				v.Major, m.Version, m.SystemIdentifier, wantVer, wantSys)
		}
		label, err := os.ReadFile(filepath.Join(dir, "backup_label"))
		if err != nil {
			t.Fatal(err)
		}
		start := regexp.MustCompile(`(?m)^START WAL LOCATION: (\S+) `).FindSubmatch(label)
		if start == nil {
			t.Fatalf("no START WAL LOCATION in backup_label:\n%s", label)
		}
		lsn, err := wal.ParseLSN(string(start[1]))
		if err != nil || lsn != res.Start {
			t.Errorf("backup_label starts at %s (%v), Result.Start %v", start[1], err, res.Start)
		}
		// The zero-padded form PostgreSQL 19 prints names the same location.
		padded := fmt.Sprintf("%X/%08X", uint64(res.Start)>>32, uint32(res.Start))
		if l, err := wal.ParseLSN(padded); err != nil || l != res.Start {
			t.Errorf("ParseLSN(%q) = %v, %v; want %v", padded, l, err, res.Start)
		}
		t.Logf("PostgreSQL %d: manifest version %d, System-Identifier %d, start %s (backup_label %s)",
			v.Major, m.Version, m.SystemIdentifier, res.Start, start[1])
	})
}

// TestManifestSystemIdentifierMismatch: when IDENTIFY_SYSTEM names another
// system than the version 2 manifest of the same connection (forged in
// transit: a real server never does this), the backup is refused and not
// declared good.
func TestManifestSystemIdentifierMismatch(t *testing.T) {
	testpg.ForEachVersion(t, func(t *testing.T, v testpg.Version) {
		if v.Major < 17 {
			t.Skipf("PostgreSQL %d's manifest (version 1) has no System-Identifier", v.Major)
		}
		p := testpg.Start(t, testpg.Options{})
		sysid := p.SQL(t, "SELECT system_identifier FROM pg_control_system()")
		forged := []byte(sysid)
		forged[len(forged)-1] = '0' + (forged[len(forged)-1]-'0'+1)%10
		addr := startRewriter(t, fmt.Sprintf("127.0.0.1:%d", p.Port), []byte(sysid), forged)
		host, port, _ := net.SplitHostPort(addr)
		conninfo := strings.Replace(p.ConnString(), fmt.Sprintf("host=127.0.0.1 port=%d", p.Port),
			fmt.Sprintf("host=%s port=%s", host, port), 1)
		dir := newInstance(t, conninfo)
		_, err := run(t, backup.Options{DataDir: dir})
		if err == nil {
			t.Fatal("backup succeeded with a manifest of another system")
		}
		t.Logf("error (%s): %v", backup.KindOf(err), err)
		if !strings.Contains(err.Error(), sysid) || !strings.Contains(err.Error(), string(forged)) {
			t.Errorf("error does not name both system identifiers (%s, %s): %v", sysid, forged, err)
		}
		if backup.KindOf(err) != backup.Protocol || !strings.Contains(err.Error(), "primary_conninfo in ") {
			t.Errorf("error (%s): want a protocol violation, not retried, that names primary_conninfo", backup.KindOf(err))
		}
		oracle.FailedAttempt(t, dir)
	})
}

// startRewriter is a TCP proxy to target that replaces the first occurrence
// of from (same length as to) in what the server sends on each connection:
// IDENTIFY_SYSTEM's answer comes before the manifest.
func startRewriter(t *testing.T, target string, from, to []byte) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	track := func(c net.Conn) { mu.Lock(); conns = append(conns, c); mu.Unlock() }
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			track(c)
			track(s)
			wg.Add(2)
			go func() { defer wg.Done(); io.Copy(s, c); s.Close() }()
			go func() { defer wg.Done(); rewriteCopy(c, s, from, to); c.Close() }()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return l.Addr().String()
}

// rewriteCopy copies src to dst, replacing the first from by to. It holds
// back a tail that may begin a match split across reads (and only that: the
// server's one-byte answer to SSLRequest must pass at once).
func rewriteCopy(dst io.Writer, src io.Reader, from, to []byte) {
	buf := make([]byte, 0, 64<<10)
	done := false
	chunk := make([]byte, 32<<10)
	for {
		n, err := src.Read(chunk)
		buf = append(buf, chunk[:n]...)
		if !done {
			if i := bytes.Index(buf, from); i >= 0 {
				copy(buf[i:], to)
				done = true
			}
		}
		keep := 0
		if !done && err == nil {
			keep = partialMatch(buf, from)
		}
		if _, werr := dst.Write(buf[:len(buf)-keep]); werr != nil {
			return
		}
		buf = append(buf[:0], buf[len(buf)-keep:]...)
		if err != nil {
			return
		}
	}
}

// TestWALSummariesDirectory: from 17 on base.tar carries an empty
// pg_wal/summaries, which the server needs (summarize_wal, pg_available_wal_summaries);
// the backup keeps it, pg_verifybackup passes and a standby summarizing WAL
// starts on it.
func TestWALSummariesDirectory(t *testing.T) {
	testpg.ForEachVersion(t, func(t *testing.T, v testpg.Version) {
		conf := map[string]string{}
		var standbyConf []string
		if v.Major >= 17 {
			conf["summarize_wal"] = "on"
			standbyConf = append(standbyConf, "summarize_wal = on")
		}
		p := testpg.Start(t, testpg.Options{Conf: conf})
		p.SQL(t, "CREATE TABLE summarized AS SELECT g FROM generate_series(1, 10000) g")
		if v.Major >= 17 {
			// Summaries exist on the primary: the server must not send them.
			p.SQL(t, "CHECKPOINT")
			p.WaitFor(t, "SELECT count(*) > 0 FROM pg_available_wal_summaries()", "t", time.Minute)
		}
		dir := newInstance(t, p.ConnString(), standbyConf...)
		if _, err := run(t, backup.Options{DataDir: dir}); err != nil {
			t.Fatalf("backup: %v", err)
		}
		fi, err := os.Stat(filepath.Join(dir, "pg_wal/summaries"))
		switch {
		case v.Major >= 17 && (err != nil || !fi.IsDir()):
			t.Fatalf("PostgreSQL %d: no pg_wal/summaries directory in the backup: %v", v.Major, err)
		case v.Major < 17 && err == nil:
			t.Errorf("PostgreSQL %d: pg_wal/summaries in the backup", v.Major)
		}
		if v.Major >= 17 {
			if entries, err := os.ReadDir(filepath.Join(dir, "pg_wal/summaries")); err != nil || len(entries) != 0 {
				t.Errorf("pg_wal/summaries: %d entries (%v), want it empty", len(entries), err)
			}
		}
		verifyBackup(t, dir)
		s := testpg.StartStandby(t, dir)
		s.WaitFor(t, "SELECT count(*) FROM summarized", "10000", time.Minute)
		if v.Major >= 17 {
			s.SQL(t, "SELECT count(*) FROM pg_available_wal_summaries()")
		}
	})
}

// TestInitdbDefaultChecksums: with initdb's defaults, data checksums are on
// from PostgreSQL 18 and off before. With them on, a corrupt page on the
// primary fails the backup (kind corrupt); without them the server cannot
// tell, and the copy succeeds. Either way the standby reports the primary's
// setting (it is in pg_control).
func TestInitdbDefaultChecksums(t *testing.T) {
	testpg.ForEachVersion(t, func(t *testing.T, v testpg.Version) {
		p := testpg.Start(t, testpg.Options{InitdbDefaults: true})
		want := "off"
		if v.Major >= 18 {
			want = "on"
		}
		if got := p.SQL(t, "SHOW data_checksums"); got != want {
			t.Fatalf("PostgreSQL %d initdb default: data_checksums %s, want %s", v.Major, got, want)
		}
		p.SQL(t, "CREATE TABLE rows AS SELECT g FROM generate_series(1, 1000) g")
		dir := newInstance(t, p.ConnString())
		if _, err := run(t, backup.Options{DataDir: dir}); err != nil {
			t.Fatalf("backup: %v", err)
		}
		verifyBackup(t, dir)
		s := testpg.StartStandby(t, dir)
		if got := s.SQL(t, "SHOW data_checksums"); got != want {
			t.Errorf("standby: data_checksums %s, want the primary's %s", got, want)
		}
		s.WaitFor(t, "SELECT count(*) FROM rows", "1000", time.Minute)
		s.Stop(t)

		p.SQL(t, "CREATE TABLE victim AS SELECT g, repeat('x', 100) AS pad FROM generate_series(1, 1000) g")
		rel := p.SQL(t, "SELECT pg_relation_filepath('victim')")
		p.SQL(t, "CHECKPOINT")
		f, err := os.OpenFile(filepath.Join(p.DataDir, rel), os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteAt([]byte(strings.Repeat("corrupt!", 64)), 4096); err != nil {
			t.Fatal(err)
		}
		f.Close()
		dir2 := newInstance(t, p.ConnString())
		_, err = run(t, backup.Options{DataDir: dir2})
		var cf *basebackup.ChecksumFailureError
		switch {
		case want == "on" && (!errors.As(err, &cf) || backup.KindOf(err) != backup.Corrupt):
			t.Errorf("PostgreSQL %d, checksums on by default: backup of a corrupt page: %v, want a checksum failure", v.Major, err)
		case want == "off" && err != nil:
			t.Errorf("PostgreSQL %d, no checksums: backup failed: %v", v.Major, err)
		}
	})
}

// partialMatch is the length of the longest tail of buf that is a proper
// prefix of from.
func partialMatch(buf, from []byte) int {
	for k := min(len(buf), len(from)-1); k > 0; k-- {
		if bytes.HasPrefix(from, buf[len(buf)-k:]) {
			return k
		}
	}
	return 0
}

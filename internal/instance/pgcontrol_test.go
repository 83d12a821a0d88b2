package instance

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pg-standby/pg-standby/internal/testpg"
	"github.com/pg-standby/pg-standby/internal/wal"
)

// controldata runs the version's pg_controldata on dir: the oracle.
func controldata(t *testing.T, v testpg.Version, dir string) map[string]string {
	t.Helper()
	out, err := v.Output(context.Background(), "pg_controldata", dir)
	if err != nil {
		t.Fatalf("pg_controldata %s: %v\n%s", dir, err, out)
	}
	m := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if k, val, ok := strings.Cut(line, ":"); ok {
			m[strings.TrimSpace(k)] = strings.TrimSpace(val)
		}
	}
	return m
}

// checkAgainstControldata compares every field ReadControl gives with the oracle's.
func checkAgainstControldata(t *testing.T, v testpg.Version, dir string, c *Control) {
	t.Helper()
	want := controldata(t, v, dir)
	lsn := func(s string) wal.LSN {
		l, err := wal.ParseLSN(s)
		if err != nil {
			t.Fatalf("pg_controldata LSN %q: %v", s, err)
		}
		return l
	}
	num := func(s string) uint64 {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("pg_controldata number %q: %v", s, err)
		}
		return n
	}
	for _, f := range []struct {
		field    string
		got, exp any
	}{
		{"pg_control version number", uint64(c.Version), num(want["pg_control version number"])},
		{"Database system identifier", c.SystemID, num(want["Database system identifier"])},
		{"Database cluster state", c.State.String(), want["Database cluster state"]},
		{"Latest checkpoint location", c.Checkpoint, lsn(want["Latest checkpoint location"])},
		{"Latest checkpoint's REDO location", c.Redo, lsn(want["Latest checkpoint's REDO location"])},
		{"Latest checkpoint's TimeLineID", uint64(c.TLI), num(want["Latest checkpoint's TimeLineID"])},
		{"Minimum recovery ending location", c.MinRecovery, lsn(want["Minimum recovery ending location"])},
		{"Min recovery ending loc's timeline", uint64(c.MinRecoveryTLI), num(want["Min recovery ending loc's timeline"])},
	} {
		if f.got != f.exp {
			t.Errorf("PostgreSQL %d, %s: ReadControl gives %v, pg_controldata %v", v.Major, f.field, f.got, f.exp)
		}
	}
}

// TestReadControlMatchesPgControldata: a running and a stopped primary, a
// stopped standby (another state, a minRecoveryPoint), against the oracle.
func TestReadControlMatchesPgControldata(t *testing.T) {
	testpg.ForEachVersion(t, func(t *testing.T, v testpg.Version) {
		testpg.Require(t)
		p := testpg.Start(t, testpg.Options{})
		p.SQL(t, "CREATE TABLE t AS SELECT g FROM generate_series(1, 1000) g; CHECKPOINT")
		c, err := ReadControl(p.DataDir)
		if err != nil {
			t.Fatal(err)
		}
		if c.State != DBInProduction {
			t.Errorf("running primary: state %v", c.State)
		}
		checkAgainstControldata(t, v, p.DataDir, c)

		sb := filepath.Join(testpg.TempDir(t), "sb")
		if out, err := v.Output(context.Background(), "pg_basebackup", "-d", p.ConnString(), "-D", sb, "-R", "-X", "stream", "-c", "fast"); err != nil {
			t.Fatalf("pg_basebackup: %v\n%s", err, out)
		}
		s := v.StartStandby(t, sb)
		p.SQL(t, "INSERT INTO t SELECT g FROM generate_series(1, 1000) g; CHECKPOINT")
		s.WaitFor(t, "SELECT count(*) FROM t", "2000", time.Minute)
		s.SQL(t, "CHECKPOINT")
		s.Stop(t)
		p.Stop(t)
		for _, dir := range []string{p.DataDir, sb} {
			c, err := ReadControl(dir)
			if err != nil {
				t.Fatal(err)
			}
			checkAgainstControldata(t, v, dir, c)
			t.Logf("PostgreSQL %d %s: %+v", v.Major, filepath.Base(dir), *c)
		}
		if c, _ := ReadControl(sb); c.State != DBShutdownedInRecovery || c.MinRecovery == 0 {
			t.Errorf("stopped standby: state %v, minRecoveryPoint %s; want shut down in recovery with a minRecoveryPoint", c.State, c.MinRecovery)
		}
	})
}

// TestParseControlRefuses: a flipped byte, a short file, an unknown version.
func TestParseControlRefuses(t *testing.T) {
	b := make([]byte, pgControlSize)
	if _, err := ParseControl(b); err == nil || !strings.Contains(err.Error(), "version 0") {
		t.Errorf("zero file: %v, want unknown version", err)
	}
	b[offVersion], b[offVersion+1] = 0x14, 0x05 // 1300
	if _, err := ParseControl(b); err == nil || !strings.Contains(err.Error(), "CRC-32C") {
		t.Errorf("bad CRC: %v, want a CRC error", err)
	}
	if _, err := ParseControl(b[:100]); err == nil {
		t.Error("100 bytes: parsed")
	}
	dir := t.TempDir()
	if _, err := ReadControl(dir); !errors.Is(err, ErrNoControl) {
		t.Errorf("no global/: %v, want ErrNoControl", err)
	}
	os.Mkdir(filepath.Join(dir, "global"), 0o700)
	os.Symlink("/etc/passwd", filepath.Join(dir, PgControl))
	if _, err := ReadControl(dir); err == nil || errors.Is(err, ErrNoControl) {
		t.Errorf("pg_control a symlink: %v, want refused", err)
	}
	os.Remove(filepath.Join(dir, PgControl))
	os.WriteFile(filepath.Join(dir, PgControl), make([]byte, pgControlSize+1), 0o600)
	if _, err := ReadControl(dir); err == nil || !strings.Contains(err.Error(), "not 8192 bytes") {
		t.Errorf("8193 bytes: %v", err)
	}
}

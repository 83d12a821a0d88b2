package backup_test

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pg-standby/pg-standby/internal/backup"
	"github.com/pg-standby/pg-standby/internal/basebackup"
	"github.com/pg-standby/pg-standby/internal/testpg"
)

// TestChecksumFailureOnPrimary corrupts a data page on a primary with data
// checksums: the server reports XX001, and the backup is not declared good.
func TestChecksumFailureOnPrimary(t *testing.T) {
	testpg.ForEachVersion(t, func(t *testing.T, v testpg.Version) {
		testpg.Require(t)
		p := testpg.Start(t, testpg.Options{})
		p.SQL(t, "CREATE TABLE victim AS SELECT g, repeat('x', 100) AS pad FROM generate_series(1, 1000) g")
		rel := p.SQL(t, "SELECT pg_relation_filepath('victim')")
		p.SQL(t, "CHECKPOINT")
		// Garbage in the middle of the first page; the server reads it from disk while sending.
		f, err := os.OpenFile(filepath.Join(p.DataDir, rel), os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteAt([]byte(strings.Repeat("corrupt!", 64)), 4096); err != nil {
			t.Fatal(err)
		}
		f.Close()

		dir := newInstance(t, p.ConnString())
		_, err = run(t, backup.Options{DataDir: dir})
		var cf *basebackup.ChecksumFailureError
		if !errors.As(err, &cf) || backup.KindOf(err) != backup.Corrupt {
			t.Fatalf("backup of a corrupt primary: %v, want a checksum failure of kind corrupt", err)
		}
		t.Logf("error: %v", err)
		for _, name := range []string{"global/pg_control", "standby.signal"} {
			if exists(filepath.Join(dir, name)) {
				t.Errorf("%s exists after a failed backup", name)
			}
		}
		if !exists(filepath.Join(dir, "basebackup.signal")) {
			t.Errorf("basebackup.signal removed after a failed backup")
		}
	})
}

// TestPermanentSlot creates primary_slot_name on request, streams through
// it, and the standby then uses it.
func TestPermanentSlot(t *testing.T) {
	testpg.ForEachVersion(t, func(t *testing.T, v testpg.Version) {
		testpg.Require(t)
		p := testpg.Start(t, testpg.Options{})
		dir := newInstance(t, p.ConnString(), "primary_slot_name = 'standby_one'")
		if _, err := run(t, backup.Options{DataDir: dir, CreateSlot: true}); err != nil {
			t.Fatalf("backup: %v", err)
		}
		if got := p.SQL(t, "SELECT slot_type || ' ' || temporary FROM pg_replication_slots WHERE slot_name = 'standby_one'"); got != "physical false" {
			t.Fatalf("slot standby_one on the primary: %q, want a permanent physical slot", got)
		}
		verifyBackup(t, dir)
		s := testpg.StartStandby(t, dir)
		p.SQL(t, "CREATE TABLE via_slot AS SELECT 1 AS x")
		s.WaitFor(t, "SELECT x FROM via_slot", "1", time.Minute)
		p.WaitFor(t, "SELECT active FROM pg_replication_slots WHERE slot_name = 'standby_one'", "t", time.Minute)
	})
}

// TestServerCompression takes the backup with each server-side compression
// method (Debian's PostgreSQL 15 is built with lz4 and zstd).
func TestServerCompression(t *testing.T) {
	testpg.ForEachVersion(t, func(t *testing.T, v testpg.Version) {
		testpg.Require(t)
		p := testpg.Start(t, testpg.Options{})
		p.Pgbench(t, "-i", "-s", "1", "-q")
		ts := p.CreateTablespace(t, "tsc")
		p.SQL(t, "CREATE TABLE in_tsc TABLESPACE tsc AS SELECT 1 AS x")
		for _, c := range []string{"gzip", "lz4", "zstd:level=1"} {
			dir := newInstance(t, p.ConnString(), "pg_standby.compression = '"+c+"'")
			res, err := run(t, backup.Options{DataDir: dir, TablespaceMapping: map[string]string{ts: newLocation(t)}})
			if err != nil {
				t.Fatalf("%s: %v", c, err)
			}
			t.Logf("%s: %d files, %d bytes", c, res.Files, res.Bytes)
			verifyBackup(t, dir)
		}
	})
}

// TestHotStandbySettingsWarned: a primary with more connections than the
// instance allows gets a warning before the copy, naming the setting.
func TestHotStandbySettingsWarned(t *testing.T) {
	testpg.ForEachVersion(t, func(t *testing.T, v testpg.Version) {
		testpg.Require(t)
		p := testpg.Start(t, testpg.Options{Conf: map[string]string{"max_connections": "150"}})
		dir := newInstance(t, p.ConnString())
		var logs strings.Builder
		opt := backup.Options{DataDir: dir, Log: slog.New(slog.NewTextHandler(&logs, nil))}
		if _, err := run(t, opt); err != nil {
			t.Fatalf("backup: %v", err)
		}
		if !strings.Contains(logs.String(), "max_connections is 100 here (PostgreSQL's default) but 150 on the primary") {
			t.Errorf("no warning about max_connections in:\n%s", logs.String())
		}
		if strings.Contains(logs.String(), "max_wal_senders is") {
			t.Errorf("a warning about a setting that is high enough:\n%s", logs.String())
		}
	})
}

// TestDirectIOOff takes the backup through the page cache when the instance
// says pg_standby.direct_io = off, and names a bad value with its file.
func TestDirectIOOff(t *testing.T) {
	testpg.ForEachVersion(t, func(t *testing.T, v testpg.Version) {
		testpg.Require(t)
		p := testpg.Start(t, testpg.Options{})
		p.Pgbench(t, "-i", "-s", "1", "-q")
		dir := newInstance(t, p.ConnString(), "pg_standby.direct_io = off")
		if _, err := run(t, backup.Options{DataDir: dir}); err != nil {
			t.Fatalf("backup with direct_io off: %v", err)
		}
		verifyBackup(t, dir)

		bad := newInstance(t, p.ConnString(), "pg_standby.direct_io = sometimes")
		_, err := run(t, backup.Options{DataDir: bad})
		if err == nil || !strings.Contains(err.Error(), "pg_standby.direct_io in "+bad+"/postgresql.conf line") || !strings.Contains(err.Error(), `"sometimes" is not a boolean`) {
			t.Fatalf("bad pg_standby.direct_io: %v", err)
		}
	})
}

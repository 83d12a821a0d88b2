package health

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// TestNotRunningSaysWhy: no postmaster; the server log (as pg_ctlcluster
// writes it) has the last FATAL line, which the report carries.
func TestNotRunningSaysWhy(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(t.TempDir(), "postgresql-15-standby.log")
	text := "2026-12-01 20:00:00.000 UTC [100] FATAL:  an older failure\n" +
		"2026-12-01 20:01:00.000 UTC [200] LOG:  starting PostgreSQL 15.18\n" +
		"2026-12-01 20:01:00.100 UTC [200] FATAL:  recovery aborted because of insufficient parameter settings\n" +
		"2026-12-01 20:01:00.101 UTC [200] LOG:  database system is shut down\n"
	if err := os.WriteFile(log, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	r := Probe(context.Background(), dir, log)
	if r.Postmaster != "not-running" || r.Reason != "postgres is not running (no postmaster.pid)" ||
		r.ServerLog != "FATAL: recovery aborted because of insufficient parameter settings" {
		t.Errorf("report %+v", r)
	}
	// A stale postmaster.pid (no such process) is no postmaster either.
	if err := os.WriteFile(filepath.Join(dir, "postmaster.pid"), []byte("999999999\n"+dir+"\n1\n5432\n/tmp\n\n0\nready\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := Probe(context.Background(), dir, ""); r.Postmaster != "not-running" || r.Reason != "postgres is not running (stale postmaster.pid: pid 999999999 is no postgres in "+dir+")" {
		t.Errorf("stale pid file: %+v", r)
	}
}

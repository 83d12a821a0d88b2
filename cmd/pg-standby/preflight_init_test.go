package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/pg-standby/pg-standby/internal/testpg"
)

// TestInitCheckWarns: init --check reports the hot-standby settings the copy
// will raise and the WAL that no slot keeps, and still creates the instance.
func TestInitCheckWarns(t *testing.T) {
	testpg.Require(t)
	p := testpg.Start(t, testpg.Options{Conf: map[string]string{"max_connections": "200"}})
	dir := filepath.Join(testpg.TempDir(t), "sb")
	code, out := runWorker(t, "init", "--check", "--pgdata", dir, "--primary-conninfo", p.ConnString(), "--port", "1")
	if code != 0 {
		t.Fatalf("init --check: status %d\n%s", code, out)
	}
	for _, want := range []string{
		"pg-standby init: warning: max_connections is 100 here (PostgreSQL's default) but 200 on the primary: a hot standby refuses to start with less, so pg-standby sets max_connections = 200 in " + dir + "/postgresql.auto.conf after the copy",
		"pg-standby init: warning: no replication slot (primary_slot_name is not set) and the primary keeps only wal_keep_size = 0 of WAL",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("init --check output lacks %q:\n%s", want, out)
		}
	}
	code, out = runWorker(t, "init", "--check", "--pgdata", filepath.Join(testpg.TempDir(t), "sb2"), "--primary-conninfo", p.ConnString(), "--port", "1", "--slot", "sb2", "--create-slot")
	if code != 0 || strings.Contains(out, "no replication slot") {
		t.Errorf("init --check --slot: status %d, output:\n%s", code, out)
	}
}

package backup_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pg-standby/pg-standby/internal/backup"
	"github.com/pg-standby/pg-standby/internal/testpg"
)

// TestHotStandbySettingsRaised: the primary allows 200 connections and 12
// worker processes, the instance PostgreSQL's 100 and 8 (one of them set in
// its postgresql.conf): the copy raises both in postgresql.auto.conf, says
// so, and the standby actually starts with the primary's values.
func TestHotStandbySettingsRaised(t *testing.T) {
	testpg.ForEachVersion(t, func(t *testing.T, _ testpg.Version) {
		testpg.Require(t)
		p := testpg.Start(t, testpg.Options{Conf: map[string]string{"max_connections": "200", "max_worker_processes": "12"}})
		dir := newInstance(t, p.ConnString(), "max_worker_processes = 8")
		var logs strings.Builder
		opt := backup.Options{DataDir: dir, Log: slog.New(slog.NewTextHandler(&logs, nil))}
		if _, err := run(t, opt); err != nil {
			t.Fatalf("backup: %v", err)
		}
		for _, want := range []string{
			"max_connections is 100 here (PostgreSQL's default) but 200 on the primary: a hot standby refuses to start with less, so pg-standby sets max_connections = 200 in " + dir + "/postgresql.auto.conf after the copy",
			"raised max_connections from 100 (PostgreSQL's default) to the primary's 200 in " + dir + "/postgresql.auto.conf",
			"raised max_worker_processes from 8 (" + dir + "/postgresql.conf line 2) to the primary's 12 in " + dir + "/postgresql.auto.conf",
		} {
			if !strings.Contains(logs.String(), want) {
				t.Errorf("log lacks %q:\n%s", want, logs.String())
			}
		}
		auto, err := os.ReadFile(filepath.Join(dir, "postgresql.auto.conf"))
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("postgresql.auto.conf:\n%s", auto)
		verifyBackup(t, dir)
		s := testpg.StartStandby(t, dir)
		if got := s.SQL(t, "SHOW max_connections") + " " + s.SQL(t, "SHOW max_worker_processes"); got != "200 12" {
			t.Errorf("standby runs with max_connections, max_worker_processes = %s, want 200 12", got)
		}
	})
}

// TestNoSlotWarned: no slot and wal_keep_size 0 gives the warning, with the
// fix; a slot, a restore_command or a large wal_keep_size do not.
func TestNoSlotWarned(t *testing.T) {
	testpg.Require(t)
	p := testpg.Start(t, testpg.Options{})
	kept := testpg.Start(t, testpg.Options{Conf: map[string]string{"wal_keep_size": "2GB"}})
	want := "no replication slot (primary_slot_name is not set) and the primary keeps only wal_keep_size = 0 of WAL for standbys: " +
		"a standby that is stopped or falls behind by more WAL than that (or the primary's max_wal_size = 1GB) finds it removed " +
		"(\"requested WAL segment … has already been removed\") and can only be re-seeded; use a slot " +
		"(pg-standby init INSTANCE --slot NAME --create-slot, or primary_slot_name and --create-slot) or raise wal_keep_size on the primary"
	for _, c := range []struct {
		name   string
		server *testpg.Server
		extra  []string
		warned bool
	}{
		{"no slot", p, nil, true},
		{"slot", p, []string{"primary_slot_name = 'sb1'"}, false},
		{"restore_command", p, []string{"restore_command = 'cp /archive/%f %p'"}, false},
		{"wal_keep_size 2GB", kept, nil, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			var logs strings.Builder
			dir := newInstance(t, c.server.ConnString(), c.extra...)
			if _, err := run(t, backup.Options{DataDir: dir, CreateSlot: true, Log: slog.New(slog.NewTextHandler(&logs, nil))}); err != nil {
				t.Fatalf("backup: %v", err)
			}
			if got := strings.Contains(logs.String(), strings.ReplaceAll(want, `"`, `\"`)); got != c.warned {
				t.Errorf("warned %v, want %v:\n%s", got, c.warned, logs.String())
			}
		})
	}

	// init --check reports the same, through Preflight.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgconn.Connect(ctx, p.ConnString()+" replication=true")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	notes := backup.Preflight(ctx, conn, "", "/nowhere")
	if len(notes) != 1 || notes[0] != want {
		t.Errorf("Preflight = %q, want [%q]", notes, want)
	}
}

package backup_test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/pg-standby/pg-standby/internal/backup"
	"github.com/pg-standby/pg-standby/internal/instance"
	"github.com/pg-standby/pg-standby/internal/testpg"
)

// TestRefusals: each bad input fails with a clear message and the right kind
// (so the right exit status), and leaves the directory exactly as it was.
func TestRefusals(t *testing.T) {
	testpg.ForEachVersion(t, func(t *testing.T, v testpg.Version) {
		testpg.Require(t)
		p := testpg.Start(t, testpg.Options{HBA: []string{"host replication norepl 127.0.0.1/32 trust"}})
		p.SQL(t, "CREATE ROLE norepl LOGIN")
		scram := testpg.Start(t, testpg.Options{Auth: "scram-sha-256"})
		minimal := testpg.Start(t, testpg.Options{Conf: map[string]string{"wal_level": "minimal", "max_wal_senders": "0"}})
		oneSender := testpg.Start(t, testpg.Options{Conf: map[string]string{"max_wal_senders": "1"}})
		tsPrimary := testpg.Start(t, testpg.Options{})
		tsLoc := tsPrimary.CreateTablespace(t, "ts")
		tsPrimary.SQL(t, "CREATE TABLE in_ts TABLESPACE ts AS SELECT 1 AS x")
		conn := func(s *testpg.Server, kv ...string) string { return s.ConnString() + " " + strings.Join(kv, " ") }

		foreign := newLocation(t)
		writeFile(t, filepath.Join(foreign, "precious"), "not ours")

		cases := []struct {
			name    string
			setup   func(t *testing.T) (dir string, opt backup.Options)
			kind    backup.Kind
			message string
		}{
			{"no primary_conninfo", func(t *testing.T) (string, backup.Options) {
				return newInstance(t, ""), backup.Options{}
			}, backup.Config, "primary_conninfo is not set"},
			{"empty primary_conninfo", func(t *testing.T) (string, backup.Options) {
				return newInstance(t, "", "primary_conninfo = ''"), backup.Options{}
			}, backup.Config, "primary_conninfo is not set"},
			{"invalid primary_conninfo", func(t *testing.T) (string, backup.Options) {
				return newInstance(t, "host=127.0.0.1 port=notaport"), backup.Options{}
			}, backup.Config, "primary_conninfo in"},
			{"cluster without basebackup.signal", func(t *testing.T) (string, backup.Options) {
				dir := newInstance(t, conn(p))
				os.Remove(filepath.Join(dir, "basebackup.signal"))
				os.Mkdir(filepath.Join(dir, "global"), 0o700)
				writeFile(t, filepath.Join(dir, "PG_VERSION"), "15\n")
				writeFile(t, filepath.Join(dir, "global", "pg_control"), "control")
				return dir, backup.Options{}
			}, backup.Refused, "holds a PostgreSQL cluster that is not a standby"},
			{"not an instance", func(t *testing.T) (string, backup.Options) {
				dir := newInstance(t, conn(p))
				os.Remove(filepath.Join(dir, "basebackup.signal"))
				return dir, backup.Options{}
			}, backup.Refused, "not a pg-standby instance"},
			{"live postmaster", func(t *testing.T) (string, backup.Options) {
				dir := newInstance(t, conn(p))
				writeFile(t, filepath.Join(dir, "postmaster.pid"), strconv.Itoa(os.Getpid())+"\n"+dir+"\n")
				return dir, backup.Options{}
			}, backup.Refused, "is running on it"},
			{"another worker", func(t *testing.T) (string, backup.Options) {
				dir := newInstance(t, conn(p))
				in, _ := instance.New(dir, "")
				lock, err := in.Lock()
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(lock.Release)
				return dir, backup.Options{}
			}, backup.Refused, "another pg-standby worker"},
			{"wrong password", func(t *testing.T) (string, backup.Options) {
				return newInstance(t, conn(scram, "password=wrong")), backup.Options{}
			}, backup.Config, "check user and password in primary_conninfo"},
			{"role without REPLICATION", func(t *testing.T) (string, backup.Options) {
				return newInstance(t, conn(p, "user=norepl")), backup.Options{}
			}, backup.Config, "needs the REPLICATION attribute"},
			{"wal_level minimal", func(t *testing.T) (string, backup.Options) {
				return newInstance(t, conn(minimal)), backup.Options{}
			}, backup.Config, "set wal_level = replica too"},
			{"max_wal_senders too low", func(t *testing.T) (string, backup.Options) {
				return newInstance(t, conn(oneSender)), backup.Options{}
			}, backup.Config, "raise max_wal_senders"},
			{"missing slot", func(t *testing.T) (string, backup.Options) {
				return newInstance(t, conn(p), "primary_slot_name = 'no_such_slot'"), backup.Options{}
			}, backup.Config, `replication slot "no_such_slot" (primary_slot_name) does not exist`},
			{"tablespace location of the primary itself", func(t *testing.T) (string, backup.Options) {
				return newInstance(t, conn(tsPrimary)), backup.Options{}
			}, backup.Refused, "is not empty and was not written by an earlier attempt"},
			{"tablespace mapped onto foreign files", func(t *testing.T) (string, backup.Options) {
				return newInstance(t, conn(tsPrimary)), backup.Options{TablespaceMapping: map[string]string{tsLoc: foreign}}
			}, backup.Refused, "pg-standby never deletes files it did not write"},
			{"tablespace mapping for no tablespace", func(t *testing.T) (string, backup.Options) {
				return newInstance(t, conn(tsPrimary)), backup.Options{TablespaceMapping: map[string]string{"/nowhere": newLocation(t)}}
			}, backup.Config, "names no tablespace of the primary"},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				dir, opt := c.setup(t)
				before, foreignBefore := snapshot(t, dir), snapshot(t, foreign)
				opt.DataDir = dir
				_, err := run(t, opt)
				if err == nil {
					t.Fatalf("backup succeeded, want a %s error containing %q", c.kind, c.message)
				}
				t.Logf("error: %v", err)
				if !strings.Contains(err.Error(), c.message) {
					t.Errorf("error %q does not contain %q", err, c.message)
				}
				if got := backup.KindOf(err); got != c.kind {
					t.Errorf("kind = %s, want %s", got, c.kind)
				}
				if after := snapshot(t, dir); after != before {
					t.Errorf("directory changed:\nbefore:\n%s\nafter:\n%s", before, after)
				}
				if after := snapshot(t, foreign); after != foreignBefore {
					t.Errorf("foreign tablespace directory changed")
				}
			})
		}
		if got := tsPrimary.SQL(t, "SELECT count(*) FROM pg_replication_slots"); got != "0" {
			t.Errorf("%s slots left on the primary after refusals", got)
		}
	})
}

package backup_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/pg-standby/pg-standby/internal/backup"
	"github.com/pg-standby/pg-standby/internal/instance"
	"github.com/pg-standby/pg-standby/internal/oracle"
	"github.com/pg-standby/pg-standby/internal/progress"
	"github.com/pg-standby/pg-standby/internal/testpg"
)

// TestResyncTablespaceByChangedBlocks: a block-mode resync of a copy with a
// user tablespace seeds the journal with the tablespace's relation files
// too (the link's location), so they are reconstructed in place rather
// than received whole; the result passes the oracles.
func TestResyncTablespaceByChangedBlocks(t *testing.T) {
	testpg.ForEachVersion(t, func(t *testing.T, v testpg.Version) {
		testpg.RequireIncremental(t, v)
		p, loc, tables := tablespacePrimary(t, 1)
		dir, m1 := newInstance(t, p.ConnString()), newLocation(t)
		mapping := map[string]string{loc: m1}
		if _, err := run(t, backup.Options{DataDir: dir, TablespaceMapping: mapping}); err != nil {
			t.Fatalf("first backup: %v", err)
		}
		ctl, err := instance.ReadControl(dir)
		if err != nil {
			t.Fatal(err)
		}
		rs := &instance.Resync{Mode: instance.ResyncBlock, SystemID: ctl.SystemID, Prior: ctl.Redo, PriorTLI: ctl.TLI,
			State: ctl.State, Checkpoint: ctl.Checkpoint, MinRecovery: ctl.MinRecovery, MinRecoveryTLI: ctl.MinRecoveryTLI, Created: time.Now()}
		if err := (&instance.Instance{DataDir: dir}).StartResync(rs, []string{"postgresql.conf"}); err != nil {
			t.Fatal(err)
		}
		p.SQL(t, "UPDATE ts_load_0 SET pad = 'changed' WHERE g % 500 = 0")
		// Entries postgres would never name a tablespace are not ones.
		for _, junk := range []string{"0123", "+5", "notes"} {
			if err := os.Symlink(newLocation(t), filepath.Join(dir, "pg_tblspc", junk)); err != nil {
				t.Fatal(err)
			}
		}

		tr := progress.NewTracker()
		log, rec := oracle.CaptureLog(t)
		if _, err := run(t, backup.Options{DataDir: dir, TablespaceMapping: mapping, Progress: tr, Log: log}); err != nil {
			t.Fatalf("resync: %v", err)
		}
		if n := reconstructedIn(rec); n < 4 {
			t.Errorf("the log says %d files were reconstructed in tablespaces, want at least the 4 tables'", n)
		}
		t.Logf("PostgreSQL %d: resync received %d bytes, reused %d", v.Major, tr.Streamed.Load(), tr.Reused.Load())
		checkStandby(t, p, dir, tables)
	})
}

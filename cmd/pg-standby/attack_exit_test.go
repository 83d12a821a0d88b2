package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	fp "github.com/pg-standby/pg-standby/internal/fakeprimary"
	"github.com/pg-standby/pg-standby/internal/pgconf"
	"github.com/pg-standby/pg-standby/internal/testpg"
)

// TestAttackExitProtocol: pg-standby run against a primary whose stream
// breaks the archive rules exits 76 after one attempt, retries or not; a
// stream cut short exits 1 after every retry.
func TestAttackExitProtocol(t *testing.T) {
	waiting(t) // the truncated stream waits out the run's two back-offs, 15 s
	base := []fp.Entry{{Name: "PG_VERSION", Data: "15\n"}, {Name: "../escape", Data: "evil"}}
	man := fp.Manifest(fp.RenderManifest([]fp.ManifestFile{{Path: "PG_VERSION", Data: "15\n"}}, 1, fp.DefaultStart, fp.DefaultEnd))
	good := fp.Tar([]fp.Entry{{Name: "PG_VERSION", Data: "15\n"}, {Name: "global/", Type: '5'}, {Name: "global/pg_control", Data: strings.Repeat("c", 8192)}}, false)
	for _, c := range []struct {
		name    string
		script  fp.Script
		code    int
		backups int
		want    string
	}{
		{"forbidden member", fp.Script{Stream: append(fp.Archive("base.tar", "", fp.Tar(base, false), 4096), man...)}, exitProtocol, 1,
			`msg="backup failed: tar archive: tar member \"../escape\": path leaves the directory"`},
		{"truncated stream", fp.Script{Stream: fp.Archive("base.tar", "", good[:512*3+100], 4096), Cut: true}, exitTransient, 3,
			`msg="backup failed: receive base backup stream: unexpected EOF; the connection to the primary 127.0.0.1:`},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.backups > 1 {
				testpg.SkipShort(t, "waits out the run's 5 s back-offs")
			}
			srv := fp.Start(t, c.script)
			dir := filepath.Join(testpg.TempDir(t), "standby")
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			conf := "primary_conninfo = " + pgconf.Quote(srv.ConnString()) + "\n"
			if err := os.WriteFile(filepath.Join(dir, "postgresql.conf"), []byte(conf), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "basebackup.signal"), nil, 0o600); err != nil {
				t.Fatal(err)
			}
			testpg.Chown(t, dir)
			code, out := runWorker(t, "run", "--pgdata", dir, "--retries", "2")
			if code != c.code || !strings.Contains(out, c.want) {
				t.Errorf("status %d, want %d with %q\n%s", code, c.code, c.want, out)
			}
			n := 0
			for _, cmd := range srv.Commands() {
				if strings.HasPrefix(cmd, "BASE_BACKUP") {
					n++
				}
			}
			if n != c.backups {
				t.Errorf("%d BASE_BACKUP commands, want %d", n, c.backups)
			}
		})
	}
}

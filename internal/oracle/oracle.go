// Package oracle holds the judgements tests make of a backup, shared by the
// packages that take one (backup, extract, cmd/pg-standby): PostgreSQL's own
// pg_verifybackup on the result, snapshots of directory trees to prove that
// a refusal or an attack changed nothing, and what a failed attempt must
// leave behind. It is for tests only.
package oracle

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"

	"github.com/pg-standby/pg-standby/internal/instance"
	"github.com/pg-standby/pg-standby/internal/testpg"
)

// VerifyBackup runs pg_verifybackup of the test's PostgreSQL version on dir,
// ignoring the instance's own configuration files.
func VerifyBackup(t testing.TB, dir string) {
	t.Helper()
	v := testpg.VersionOf(t)
	args := []string{"pg_verifybackup"}
	for _, f := range instance.ConfigFiles {
		args = append(args, "-i", f)
	}
	out, err := v.Output(context.Background(), args[0], append(args[1:], dir)...)
	if err != nil {
		t.Fatalf("PostgreSQL %d pg_verifybackup %s: %v", v.Major, dir, err)
	}
	if !strings.Contains(out, "backup successfully verified") {
		t.Fatalf("PostgreSQL %d pg_verifybackup %s: %s", v.Major, dir, out)
	}
}

// Snapshot renders the tree at dir, one sorted line per entry: path, mode,
// owner, size, content hash or link target. The subtrees skip (paths as
// given to Snapshot, under dir) show as one "(skipped)" line each.
func Snapshot(t testing.TB, dir string, skip ...string) string {
	t.Helper()
	return snapshot(t, dir, false, skip)
}

// SnapshotPending is Snapshot, but basebackup.signal counts without the
// record of failed attempts (attempts, written, last error and when), all a
// failed attempt may change in it.
func SnapshotPending(t testing.TB, dir string, skip ...string) string {
	t.Helper()
	return snapshot(t, dir, true, skip)
}

func snapshot(t testing.TB, dir string, pending bool, skip []string) string {
	var lines []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		for _, s := range skip {
			if p == s {
				lines = append(lines, "(skipped) "+rel)
				return filepath.SkipDir
			}
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		line := fmt.Sprintf("%s %v", rel, fi.Mode())
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			line += fmt.Sprintf(" %d:%d", st.Uid, st.Gid)
		}
		switch {
		case fi.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			if pending && d.Name() == instance.BackupSignal {
				b = withoutAttempts(b)
			}
			line += fmt.Sprintf(" %d %x", len(b), sha256.Sum256(b))
		case fi.Mode()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			line += " -> " + target
		}
		lines = append(lines, line)
		return nil
	})
	if err != nil {
		t.Fatalf("snapshot %s: %v", dir, err)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// withoutAttempts is basebackup.signal without its record of attempts.
func withoutAttempts(b []byte) []byte {
	var keep []string
	for _, l := range strings.Split(string(b), "\n") {
		switch k, _, _ := strings.Cut(l, " "); {
		case k == "last-error", k == "last-failure", k == "attempts", k == "written", strings.HasPrefix(l, "#"):
		default:
			keep = append(keep, l)
		}
	}
	return []byte(strings.Join(keep, "\n"))
}

// FailedAttempt checks what a failed attempt leaves in the data directory:
// still pending (basebackup.signal), never startable (no pg_control, no
// standby.signal).
func FailedAttempt(t testing.TB, dataDir string) {
	t.Helper()
	for _, name := range []string{instance.PgControl, instance.StandbySignal} {
		if _, err := os.Lstat(filepath.Join(dataDir, name)); err == nil {
			t.Errorf("%s exists after a failed attempt", name)
		}
	}
	if _, err := os.Lstat(filepath.Join(dataDir, instance.BackupSignal)); err != nil {
		t.Errorf("%s gone after a failed attempt: %v", instance.BackupSignal, err)
	}
}

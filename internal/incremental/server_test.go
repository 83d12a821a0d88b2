package incremental

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pg-standby/pg-standby/internal/manifest"
	"github.com/pg-standby/pg-standby/internal/testpg"
)

// forEach17 runs fn on the selected versions that have incremental backup.
func forEach17(t *testing.T, fn func(t *testing.T, v testpg.Version)) {
	testpg.ForEachVersion(t, func(t *testing.T, v testpg.Version) {
		if v.Major < MinMajor {
			t.Skipf("PostgreSQL %d has no incremental backup (UPLOAD_MANIFEST, summarize_wal: 17+)", v.Major)
		}
		fn(t, v)
	})
}

func run(t *testing.T, v testpg.Version, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := v.Output(ctx, name, args...)
	if err != nil {
		t.Fatalf("%v", err)
	}
	return out
}

func replConnect(t *testing.T, s *testpg.Server) *pgconn.PgConn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgconn.Connect(ctx, s.ConnString()+" replication=true")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

const before = `
CREATE TABLE upd(id int PRIMARY KEY, v text) WITH (fillfactor = 50);
INSERT INTO upd SELECT g, repeat('x', 100) FROM generate_series(1, 20000) g;
CREATE TABLE trunc_t(id int, v text);
INSERT INTO trunc_t SELECT g, repeat('y', 200) FROM generate_series(1, 20000) g;
CREATE TABLE dropme(id int, v text);
INSERT INTO dropme SELECT g, 'old' FROM generate_series(1, 10000) g;
CREATE TABLE ext(id int, v text);
INSERT INTO ext SELECT g, 'e' FROM generate_series(1, 1000) g;
CREATE TABLE untouched(id int, v text);
INSERT INTO untouched SELECT g, repeat('u', 100) FROM generate_series(1, 20000) g;
CREATE UNLOGGED TABLE unl(id int);
INSERT INTO unl SELECT generate_series(1, 5000);
VACUUM (FREEZE); CHECKPOINT;`

const between = `
UPDATE upd SET v = 'z' WHERE id <= 300;
DELETE FROM trunc_t WHERE id > 5000;
VACUUM trunc_t;
DROP TABLE dropme;
CREATE TABLE dropme(id int, v text);
INSERT INTO dropme SELECT g, 'new' FROM generate_series(1, 500) g;
INSERT INTO ext SELECT g, repeat('e', 500) FROM generate_series(1, 20000) g;
INSERT INTO unl SELECT generate_series(1, 1000);
CREATE DATABASE fc STRATEGY FILE_COPY;
VACUUM unl;`

// sqlEach runs the statements of script one by one (VACUUM and CREATE
// DATABASE refuse a transaction block).
func sqlEach(t *testing.T, s *testpg.Server, script string) {
	t.Helper()
	for _, stmt := range strings.Split(script, ";") {
		if stmt = strings.TrimSpace(stmt); stmt != "" {
			s.SQL(t, stmt)
		}
	}
}

// settle waits until the WAL summarizer has summarized everything written so
// far: summaries are coarse (one file per stretch of WAL between checkpoint
// redo points), and the server reads every summary that overlaps the range,
// so changes just before the prior backup could otherwise count as after it.
func settle(t *testing.T, s *testpg.Server) {
	t.Helper()
	lsn := s.SQL(t, "SELECT pg_current_wal_insert_lsn()")
	s.SQL(t, "CHECKPOINT")
	s.WaitFor(t, "SELECT summarized_lsn >= '"+lsn+"' FROM pg_get_wal_summarizer_state()", "t", time.Minute)
}

// startPrimary starts a primary; the tests that count blocks turn
// autovacuum off, so that only their own statements change blocks.
func startPrimary(t *testing.T, v testpg.Version, conf map[string]string) *testpg.Server {
	return v.Start(t, testpg.Options{Conf: conf})
}

// TestCombineMatchesPgCombinebackup is test (a): an incremental backup of
// the real pg_basebackup, reconstructed in place over a copy of the full one
// by this package, is byte for byte pg_combinebackup's result, and
// pg_verifybackup accepts it with this package's manifest.
func TestCombineMatchesPgCombinebackup(t *testing.T) {
	forEach17(t, func(t *testing.T, v testpg.Version) {
		s := startPrimary(t, v, map[string]string{"summarize_wal": "on", "autovacuum": "off"})
		sqlEach(t, s, before)
		settle(t, s)
		dir := testpg.TempDir(t)
		full, inc, comb, mine := filepath.Join(dir, "full"), filepath.Join(dir, "inc"), filepath.Join(dir, "comb"), filepath.Join(dir, "mine")
		conn := fmt.Sprintf("host=127.0.0.1 port=%d user=replicator", s.Port)
		run(t, v, "pg_basebackup", "-d", conn, "-D", full, "-c", "fast", "-X", "fetch", "--no-sync")
		sqlEach(t, s, between)
		run(t, v, "pg_basebackup", "-d", conn, "-D", inc, "-c", "fast", "-X", "fetch", "--no-sync", "--incremental="+filepath.Join(full, "backup_manifest"))
		run(t, v, "pg_combinebackup", "--no-sync", "-o", comb, full, inc)
		if out, err := exec.Command("cp", "-a", full, mine).CombinedOutput(); err != nil {
			t.Fatalf("cp: %v %s", err, out)
		}
		st := applyBackup(t, inc, mine, DefaultParams())
		t.Logf("PostgreSQL %d: %d INCREMENTAL files (%d bytes standing for %d; %d blocks received, %d kept, %d zero), %d whole files (%d bytes)",
			v.Major, st.incFiles, st.incBytes, st.incResult, st.received, st.kept, st.zero, st.wholeFiles, st.wholeBytes)
		if st.incFiles == 0 || st.kept == 0 {
			t.Fatalf("the incremental backup reconstructed nothing: %+v", st)
		}
		compareTrees(t, comb, mine)
		run(t, v, "pg_verifybackup", mine)

		// The result starts (recovering from its own pg_wal to consistency)
		// and holds what the primary holds.
		if err := os.WriteFile(filepath.Join(mine, "standby.signal"), nil, 0o600); err != nil {
			t.Fatal(err)
		}
		standby := v.StartStandby(t, mine)
		if got, want := standby.SQL(t, contentQuery), s.SQL(t, contentQuery); got != want {
			t.Fatalf("content: result %q, primary %q", got, want)
		}
	})
}

// contentQuery sums up every table the tests write, and the FILE_COPY database.
const contentQuery = `SELECT (SELECT count(*) || ':' || sum(hashtext(v)) FROM upd) || ' ' ||
(SELECT count(*) || ':' || sum(hashtext(v)) FROM trunc_t) || ' ' ||
(SELECT count(*) || ':' || sum(hashtext(v)) FROM dropme) || ' ' ||
(SELECT count(*) || ':' || sum(hashtext(v)) FROM ext) || ' ' ||
(SELECT count(*) || ':' || sum(hashtext(v)) FROM untouched) || ' ' ||
(SELECT count(*) FROM pg_database WHERE datname = 'fc') || ' ' ||
(SELECT count(*) FROM upd WHERE v = 'z')`

type applyStats struct {
	incFiles, wholeFiles            int
	incBytes, incResult, wholeBytes int64
	received, kept, zero            int
}

// applyBackup lays the backup in src over dst as the pipeline's stage will:
// INCREMENTAL.<name> is reconstructed in place, other files replace dst's,
// files and directories src does not have are removed; backup_label loses its
// INCREMENTAL lines, and backup_manifest is written for the result.
func applyBackup(t *testing.T, src, dst string, p Params) applyStats {
	t.Helper()
	root, err := os.OpenRoot(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	var st applyStats
	keep := map[string]bool{}
	err = filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		if rel == "." || rel == "backup_manifest" {
			return nil
		}
		if d.IsDir() {
			keep[rel] = true
			if err := root.Mkdir(rel, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
				return err
			}
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if target, ok := TargetName(rel); ok {
			keep[target] = true
			res, err := reconstructFrom(root, target, data, p)
			if err != nil {
				return err
			}
			st.incFiles++
			st.incBytes += int64(len(data))
			st.incResult += res.Size
			st.received += res.Received
			st.kept += res.Kept
			st.zero += res.ZeroFilled
			return nil
		}
		keep[rel] = true
		if rel == "backup_label" {
			if data, err = StripIncrementalLabel(data); err != nil {
				return err
			}
		}
		st.wholeFiles++
		st.wholeBytes += int64(len(data))
		return root.WriteFile(rel, data, 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
	removeUnkept(t, dst, keep)
	writeResultManifest(t, root, filepath.Join(src, "backup_manifest"), keep)
	return st
}

// reconstructFrom feeds data to a Rebuilder in chunks, as a tar stage would.
func reconstructFrom(root *os.Root, target string, data []byte, p Params) (Result, error) {
	st, err := root.Stat(target)
	if err != nil {
		return Result{}, err
	}
	r, err := NewRebuilder(root, target, st.Size(), int64(len(data)), p)
	if err != nil {
		return Result{}, err
	}
	for off := 0; off < len(data); off += 10000 {
		if err := r.Write(data[off:min(off+10000, len(data))]); err != nil {
			r.Abort()
			return Result{}, err
		}
	}
	return r.Close()
}

func removeUnkept(t *testing.T, dst string, keep map[string]bool) {
	t.Helper()
	var gone []string
	filepath.WalkDir(dst, func(path string, d fs.DirEntry, err error) error {
		rel, _ := filepath.Rel(dst, path)
		if err != nil || rel == "." || keep[rel] {
			return err
		}
		gone = append(gone, path)
		if d.IsDir() {
			return filepath.SkipDir
		}
		return nil
	})
	for _, p := range gone {
		if err := os.RemoveAll(p); err != nil {
			t.Fatal(err)
		}
	}
}

// writeResultManifest describes every file of the result except pg_wal's
// (pg_verifybackup checks WAL by parsing it), with the incremental backup's
// system identifier and WAL range, and checksums read from disk.
func writeResultManifest(t *testing.T, root *os.Root, incManifest string, keep map[string]bool) {
	t.Helper()
	data, err := os.ReadFile(incManifest)
	if err != nil {
		t.Fatal(err)
	}
	m, err := manifest.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	var files []ManifestFile
	for rel := range keep {
		if fi, err := root.Stat(rel); err != nil || fi.IsDir() || rel == "pg_wal" || strings.HasPrefix(rel, "pg_wal/") {
			continue
		}
		f, err := FileEntry(root, filepath.ToSlash(rel))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	SortFiles(files)
	out, err := RenderManifest(&Manifest{SystemID: m.SystemIdentifier, Files: files, WALRanges: m.WALRanges})
	if err != nil {
		t.Fatal(err)
	}
	if err := root.WriteFile("backup_manifest", out, 0o600); err != nil {
		t.Fatal(err)
	}
}

// compareTrees fails unless every file of want (but backup_manifest) is in
// got with the same bytes, and got has no other file.
func compareTrees(t *testing.T, want, got string) {
	t.Helper()
	seen := 0
	err := filepath.WalkDir(want, func(path string, d fs.DirEntry, err error) error {
		rel, _ := filepath.Rel(want, path)
		if err != nil || d.IsDir() || rel == "backup_manifest" {
			return err
		}
		seen++
		a, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		b, err := os.ReadFile(filepath.Join(got, rel))
		if err != nil {
			return fmt.Errorf("pg_combinebackup has %s, we do not: %w", rel, err)
		}
		if !bytes.Equal(a, b) {
			return fmt.Errorf("%s differs: pg_combinebackup %d bytes, ours %d", rel, len(a), len(b))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	ours := 0
	filepath.WalkDir(got, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && d.Name() != "backup_manifest" {
			ours++
		}
		return err
	})
	if ours != seen {
		t.Fatalf("pg_combinebackup wrote %d files, we have %d", seen, ours)
	}
	t.Logf("%d files identical to pg_combinebackup's", seen)
}

// FileEntry reads root/name to describe it in a manifest: its size,
// modification time and CRC-32C, computed from the bytes on disk (after
// reconstruction), never taken from the server.
func FileEntry(root *os.Root, name string) (ManifestFile, error) {
	f, err := root.Open(name)
	if err != nil {
		return ManifestFile{}, fmt.Errorf("checksum %s: %w", name, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return ManifestFile{}, fmt.Errorf("checksum %s: %w", name, err)
	}
	if !st.Mode().IsRegular() {
		return ManifestFile{}, fmt.Errorf("checksum %s: not a regular file (%v)", name, st.Mode().Type())
	}
	h := manifest.CRC32C.NewHash()
	n, err := io.Copy(h, f)
	if err != nil {
		return ManifestFile{}, fmt.Errorf("checksum %s: %w", name, err)
	}
	return ManifestFile{Path: name, Size: n, ModTime: st.ModTime(), Algorithm: manifest.CRC32C, Checksum: h.Sum(nil)}, nil
}

// SortFiles orders files by path, as a deterministic manifest wants.
func SortFiles(files []ManifestFile) {
	slices.SortFunc(files, func(a, b ManifestFile) int { return strings.Compare(a.Path, b.Path) })
}

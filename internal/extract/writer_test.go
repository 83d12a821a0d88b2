package extract_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/pg-standby/pg-standby/internal/directio"
	"github.com/pg-standby/pg-standby/internal/durable"
	"github.com/pg-standby/pg-standby/internal/extract"
	fp "github.com/pg-standby/pg-standby/internal/fakeprimary"
	"github.com/pg-standby/pg-standby/internal/manifest"
	"github.com/pg-standby/pg-standby/internal/progress"
	"github.com/pg-standby/pg-standby/internal/tarstream"
)

// TestWriterExistingFiles: a member whose path holds a file an earlier
// attempt left overwrites it (and gives it the backup's mode); one whose
// path holds a directory, a link or a FIFO is refused, naming what is in
// the way, and that is left as it was (the FIFO never opened).
func TestWriterExistingFiles(t *testing.T) {
	for _, c := range []struct {
		name, want string
		plant      func(path string) error
	}{
		{"file", "", func(p string) error { return os.WriteFile(p, []byte("an earlier attempt's"), 0o644) }},
		{"directory", "a directory is in the way", func(p string) error { return os.Mkdir(p, 0o700) }},
		{"link", "a symbolic link is in the way", func(p string) error { return os.Symlink("/etc/passwd", p) }},
		{"fifo", "a special file is in the way", func(p string) error { return syscall.Mkfifo(p, 0o600) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.Mkdir(filepath.Join(dir, "base"), 0o700); err != nil {
				t.Fatal(err)
			}
			target := filepath.Join(dir, "base", "1259")
			if err := c.plant(target); err != nil {
				t.Fatal(err)
			}
			before, _ := os.Lstat(target)
			err := extractTar(t, dir, []fp.Entry{{Name: "base/1259", Data: "the primary's"}})
			after, lerr := os.Lstat(target)
			if lerr != nil {
				t.Fatal(lerr)
			}
			if c.want == "" {
				got, _ := os.ReadFile(target)
				if err != nil || string(got) != "the primary's" || after.Mode().Perm() != 0o600 {
					t.Fatalf("err %v, contents %q, mode %v; want the member's, 0600", err, got, after.Mode().Perm())
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), target) {
				t.Fatalf("err %v, want %q naming %s", err, c.want, target)
			}
			if after.Mode() != before.Mode() || !os.SameFile(before, after) {
				t.Fatalf("what was in the way changed: %v, now %v", before.Mode(), after.Mode())
			}
		})
	}
}

// extractTar runs entries through a Writer on dir as one archive and
// returns the first error the chain reports.
func extractTar(t *testing.T, dir string, entries []fp.Entry) error {
	t.Helper()
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	p, finish := newChain(t, root, nil)
	_, err = p.Write(fp.Tar(entries, false))
	return errors.Join(err, finish())
}

// newChain is an archive's chain into a Writer on root, as a backup builds
// it (checksum, writer), with its own queue and syncer; finish closes the
// parser, the queue and the syncer and returns what they report.
func newChain(t *testing.T, root *os.Root, links map[string]string) (*tarstream.Parser, func() error) {
	t.Helper()
	syncer := durable.NewSyncer(1, 4)
	files, err := directio.NewQueue(directio.Config{BufferSize: 8192, Buffers: 2, Finished: syncer.Sync})
	if err != nil {
		t.Fatal(err)
	}
	res := extract.NewResult()
	cfg := &extract.Config{FileMode: 0o600, DirMode: 0o700, Files: files, Syncer: syncer}
	p := tarstream.NewParser(extract.NewChecksum(extract.NewWriter(cfg, res, root, "", links), res, "", manifest.CRC32C.NewHash, &progress.NewTracker().Streamed))
	return p, func() error { return errors.Join(p.Close(), files.Close(), syncer.Wait()) }
}

package backup

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/pg-standby/pg-standby/internal/durable"
	"github.com/pg-standby/pg-standby/internal/extract"
	"github.com/pg-standby/pg-standby/internal/instance"
	"github.com/pg-standby/pg-standby/internal/manifest"
	"github.com/pg-standby/pg-standby/internal/resume"
	"github.com/pg-standby/pg-standby/internal/walstream"
)

// verify checks every file written (and every kept file's streamed bytes)
// against the manifest, and the streamed WAL against its WAL ranges.
func (b *attempt) verify(t *dest, recv *walstream.Receiver) error {
	m, err := b.verifyManifest(t)
	if err != nil {
		return err
	}
	// CheckWAL's error says "streamed WAL does not cover the backup" itself.
	from, to := recv.Ranges()
	if err := manifest.CheckWAL(m, from, to); err != nil {
		return err
	}
	b.log.Info("manifest verified", "files", m.NumFiles, "kept_local", strings.Join(b.kept, ","))
	return nil
}

// verifyManifest reads the server's manifest once, checking the files as
// they are parsed (nothing of it is kept); a resuming attempt
// writes its result manifest in the same pass (startResult).
func (b *attempt) verifyManifest(t *dest) (*manifest.Manifest, error) {
	r, err := t.man.reader()
	if err != nil {
		return nil, err
	}
	out, err := t.startResult(b.sys.SystemID)
	if err != nil {
		return nil, err
	}
	defer out.close()
	m, mismatch, err := manifest.VerifyEach(r, t.res.Files, nil, out.file)
	if err != nil {
		return nil, fmt.Errorf("backup manifest from the primary: %w", err)
	}
	if m.SystemIdentifier != 0 && strconv.FormatUint(m.SystemIdentifier, 10) != b.sys.SystemID {
		return nil, &Error{Kind: Protocol, Err: fmt.Errorf("backup manifest is for system %d, but the primary identified as %s on the "+
			"same connection: something between this host and the primary rewrites what it sends (a proxy?); point %s at the primary itself",
			m.SystemIdentifier, b.sys.SystemID, b.conninfoSource())}
	}
	if mismatch != nil {
		return nil, fmt.Errorf("what was written does not match the backup manifest: %w", mismatch)
	}
	if err := out.finish(m.WALRanges); err != nil {
		return nil, err
	}
	return m, nil
}

// manifestSpool holds the manifest while it arrives and is verified, so that
// memory never holds its text (9 MB for 60,000 files); once verified it is
// renamed to backup_manifest, the name pg_basebackup gives it.
const manifestSpool = instance.Manifest + ".pg-standby"

// spool is a manifest on its way: created at its start, read back to be
// verified (the server's), then committed as backup_manifest or dropped.
type spool struct {
	root *os.Root
	name string // manifestSpool, or resultSpool (incremental.go)
	mode os.FileMode
	log  *slog.Logger
	f    *os.File
	n    int64
}

func (s *spool) create() error {
	f, err := s.root.OpenFile(s.name, os.O_RDWR|os.O_CREATE|os.O_TRUNC, s.mode)
	if err != nil {
		return fmt.Errorf("create %s: %w", s.name, err)
	}
	s.f = f
	return nil
}

// Write implements io.Writer for basebackup's manifest data.
func (s *spool) Write(p []byte) (int, error) {
	n, err := s.f.Write(p)
	s.n += int64(n)
	if err != nil {
		return n, fmt.Errorf("write %s: %w", s.name, err)
	}
	return n, nil
}

func (s *spool) reader() (io.Reader, error) {
	if _, err := s.f.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("read back %s: %w", s.name, err)
	}
	return io.LimitReader(s.f, s.n), nil
}

// commit makes the verified manifest backup_manifest: fsynced before the
// rename, the directory synced later with the others (syncDirs).
func (s *spool) commit() error {
	if err := s.f.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", s.name, err)
	}
	if err := s.f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", s.name, err)
	}
	s.f = nil
	if err := s.root.Rename(s.name, instance.Manifest); err != nil {
		return fmt.Errorf("rename %s to %s: %w", s.name, instance.Manifest, err)
	}
	return nil
}

// drop removes the spool of an attempt that did not get as far as commit
// (the next attempt receives the manifest anew), or one superseded.
func (s *spool) drop() {
	if s == nil || s.f == nil {
		return
	}
	s.f.Close()
	s.f = nil
	if err := s.root.Remove(s.name); err != nil && !errors.Is(err, fs.ErrNotExist) {
		s.log.Warn("could not remove a manifest spool", "path", s.name, "error", err)
	}
}

// prune removes what earlier attempts left that this backup does not have.
func (b *attempt) prune(t *dest) ([]string, error) {
	kept := b.kept
	keepBase := func(p string, isDir bool) bool {
		switch p {
		case instance.BackupSignal, instance.BackupSignal + ".pg-standby", instance.Manifest, manifestSpool, instance.PgControlPending, "pg_wal", resume.Name:
			return true
		}
		if strings.HasPrefix(p, "pg_wal/") || slices.Contains(kept, p) {
			return true
		}
		// Directories holding kept configuration (an include_dir, say).
		for _, k := range kept {
			if isDir && strings.HasPrefix(k, p+"/") {
				return true
			}
		}
		return false
	}
	removed, err := extract.Prune(t.root, "", t.res, keepBase)
	if err != nil {
		return nil, err
	}
	for _, sp := range t.spaces {
		r, err := extract.Prune(sp.root, sp.link+"/", t.res, nil)
		if err != nil {
			return nil, err
		}
		removed = append(removed, r...)
	}
	for _, p := range removed {
		b.log.Info("removed what an earlier attempt left and this backup does not have", "path", p)
	}
	return removed, nil
}

// syncDirs fsyncs every directory the backup wrote entries into.
func (t *dest) syncDirs() error {
	if err := durable.SyncDir(t.root, "."); err != nil {
		return err
	}
	for _, sp := range t.spaces {
		if err := durable.SyncDir(sp.root, "."); err != nil {
			return err
		}
	}
	for d := range t.res.Dirs {
		root, name := t.root, d
		for _, sp := range t.spaces {
			if rest, ok := strings.CutPrefix(d, sp.link+"/"); ok {
				root, name = sp.root, rest
			}
		}
		if err := durable.SyncDir(root, path.Clean(name)); err != nil {
			return err
		}
	}
	return nil
}

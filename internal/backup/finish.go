package backup

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/pg-standby/pg-standby/internal/durable"
	"github.com/pg-standby/pg-standby/internal/extract"
	"github.com/pg-standby/pg-standby/internal/instance"
	"github.com/pg-standby/pg-standby/internal/manifest"
)

// verify checks every file written (and every kept file's streamed bytes)
// against the manifest, and the streamed WAL against its WAL ranges.
func (b *attempt) verify(s *stream, kept []string) error {
	if _, err := s.man.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("read back %s: %w", manifestSpool, err)
	}
	// Files are checked as they are parsed: only the set of paths is kept.
	m, mismatch, err := manifest.VerifyReader(io.LimitReader(s.man, s.manLen), s.res.Files, nil)
	if err != nil {
		return fmt.Errorf("backup manifest from the primary: %w", err)
	}
	if m.SystemIdentifier != 0 && strconv.FormatUint(m.SystemIdentifier, 10) != b.sys.SystemID {
		return fmt.Errorf("backup manifest is for system %d, but the primary identified as %s", m.SystemIdentifier, b.sys.SystemID)
	}
	if mismatch != nil {
		return fmt.Errorf("what was written does not match the backup manifest: %w", mismatch)
	}
	from, to := s.recv.Ranges()
	mf, mt := map[uint32]manifest.LSN{}, map[uint32]manifest.LSN{}
	for tli, l := range from {
		mf[tli] = manifest.LSN(l)
	}
	for tli, l := range to {
		mt[tli] = manifest.LSN(l)
	}
	if err := manifest.CheckWAL(m, mf, mt); err != nil {
		return fmt.Errorf("streamed WAL does not cover the backup: %w", err)
	}
	b.log.Info("manifest verified", "files", m.NumFiles, "kept_local", strings.Join(kept, ","))
	return nil
}

// manifestSpool holds the manifest while it arrives and is verified, so that
// memory never holds its text (9 MB for 60,000 files); once verified it is
// renamed to backup_manifest, the name pg_basebackup gives it.
const manifestSpool = instance.Manifest + ".pg-standby"

func (s *stream) spoolManifest() error {
	f, err := s.root.OpenFile(manifestSpool, os.O_RDWR|os.O_CREATE|os.O_TRUNC, s.b.fileMode)
	if err != nil {
		return fmt.Errorf("create %s: %w", manifestSpool, err)
	}
	s.man = f
	return nil
}

// durableManifest makes the verified manifest backup_manifest: fsynced
// before the rename, the directory synced later with the others (syncDirs).
func durableManifest(root *os.Root, s *stream) error {
	if err := s.man.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", manifestSpool, err)
	}
	if err := s.man.Close(); err != nil {
		return fmt.Errorf("close %s: %w", manifestSpool, err)
	}
	s.man = nil
	if err := root.Rename(manifestSpool, instance.Manifest); err != nil {
		return fmt.Errorf("rename %s to %s: %w", manifestSpool, instance.Manifest, err)
	}
	return nil
}

// dropManifest removes the spool of an attempt that did not get as far as
// durableManifest; the next attempt receives the manifest anew.
func (s *stream) dropManifest() {
	if s.man == nil {
		return
	}
	s.man.Close()
	s.man = nil
	if err := s.root.Remove(manifestSpool); err != nil && !errors.Is(err, fs.ErrNotExist) {
		s.b.log.Warn("could not remove the manifest spool of a failed attempt", "path", manifestSpool, "error", err)
	}
}

// prune removes what earlier attempts left that this backup does not have.
func (b *attempt) prune(s *stream, kept []string) ([]string, error) {
	keepBase := func(p string, isDir bool) bool {
		switch p {
		case instance.BackupSignal, instance.BackupSignal + ".pg-standby", instance.Manifest, manifestSpool, instance.PgControlPending, "pg_wal":
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
	removed, err := extract.Prune(s.root, "", s.res, keepBase)
	if err != nil {
		return nil, err
	}
	for _, sp := range s.spaces {
		r, err := extract.Prune(sp.root, sp.link+"/", s.res, nil)
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
func syncDirs(s *stream) error {
	if err := durable.SyncDir(s.root, "."); err != nil {
		return err
	}
	for _, sp := range s.spaces {
		if err := durable.SyncDir(sp.root, "."); err != nil {
			return err
		}
	}
	for d := range s.res.Dirs {
		root, name := s.root, d
		for _, sp := range s.spaces {
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

package backup

import (
	"fmt"
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
	m, err := manifest.Parse(s.man.Bytes())
	if err != nil {
		return fmt.Errorf("backup manifest from the primary: %w", err)
	}
	if m.SystemIdentifier != 0 && strconv.FormatUint(m.SystemIdentifier, 10) != b.sys.SystemID {
		return fmt.Errorf("backup manifest is for system %d, but the primary identified as %s", m.SystemIdentifier, b.sys.SystemID)
	}
	if err := manifest.Verify(m, s.res.Files, nil); err != nil {
		return fmt.Errorf("what was written does not match the backup manifest: %w", err)
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
	b.log.Info("manifest verified", "files", len(m.Files), "kept_local", strings.Join(kept, ","))
	return nil
}

func durableManifest(root *os.Root, data []byte, mode os.FileMode) error {
	return durable.WriteFile(root, instance.Manifest, data, mode)
}

// prune removes what earlier attempts left that this backup does not have.
func (b *attempt) prune(s *stream, kept []string) ([]string, error) {
	keepBase := func(p string, isDir bool) bool {
		switch p {
		case instance.BackupSignal, instance.BackupSignal + ".pg-standby", instance.Manifest, instance.PgControlPending, "pg_wal":
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

package extract

import (
	"hash"
	"io/fs"

	"github.com/pg-standby/pg-standby/internal/directio"
	"github.com/pg-standby/pg-standby/internal/durable"
	"github.com/pg-standby/pg-standby/internal/manifest"
	"github.com/pg-standby/pg-standby/internal/progress"
)

// Config is shared by the writers of every archive of one backup.
type Config struct {
	// FileMode and DirMode follow the primary's data_directory_mode.
	FileMode, DirMode fs.FileMode
	// NewHash makes the hash the manifest's checksums use; nil for none.
	NewHash func() hash.Hash
	// Keep reports manifest paths whose local copy the instance keeps
	// (its own postgresql.conf, say): the primary's bytes are hashed, not written.
	Keep func(path string) bool
	// Divert maps a manifest path to the local name it is written under
	// instead (global/pg_control is made visible last, by the caller).
	Divert map[string]string
	// Files writes file contents; its Finished hands them to Syncer.
	Files  *directio.Queue
	Syncer *durable.Syncer
	// Progress gets the Streamed, Written and Unchanged byte counts.
	Progress *progress.Tracker
}

// Result is what the writers saw, keyed by manifest path.
type Result struct {
	Files map[string]manifest.Observed
	Dirs  map[string]bool
	Links map[string]string
}

// NewResult returns an empty Result.
func NewResult() *Result {
	return &Result{Files: map[string]manifest.Observed{}, Dirs: map[string]bool{}, Links: map[string]string{}}
}

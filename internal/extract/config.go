package extract

import (
	"io/fs"

	"github.com/pg-standby/pg-standby/internal/directio"
	"github.com/pg-standby/pg-standby/internal/durable"
	"github.com/pg-standby/pg-standby/internal/manifest"
)

// Config is shared by the writers of every archive of one backup.
type Config struct {
	// FileMode and DirMode follow the primary's data_directory_mode.
	FileMode, DirMode fs.FileMode
	// Files writes file contents; its Finished hands them to Syncer.
	Files  *directio.Queue
	Syncer *durable.Syncer
}

// Result is what one backup's chains saw, keyed by manifest path: Files the
// Checksum stages record, Dirs the Writers create, and Links, the tablespace
// links (pg_tblspc/<oid> → local location) the caller claimed, the only
// links a Writer of the base archive may create and Prune keeps.
type Result struct {
	Files map[string]manifest.Observed
	Dirs  map[string]bool
	Links map[string]string
}

// NewResult returns an empty Result.
func NewResult() *Result {
	return &Result{Files: map[string]manifest.Observed{}, Dirs: map[string]bool{}, Links: map[string]string{}}
}

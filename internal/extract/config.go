package extract

import (
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
	// Files writes file contents; its Finished hands them to Syncer.
	Files  *directio.Queue
	Syncer *durable.Syncer
	// Progress gets the Written and Unchanged byte counts.
	Progress *progress.Tracker
}

// Result is what the stages saw, keyed by manifest path: Files by the
// Checksum stage, Dirs and Links by the Writer.
type Result struct {
	Files map[string]manifest.Observed
	Dirs  map[string]bool
	Links map[string]string
}

// NewResult returns an empty Result.
func NewResult() *Result {
	return &Result{Files: map[string]manifest.Observed{}, Dirs: map[string]bool{}, Links: map[string]string{}}
}

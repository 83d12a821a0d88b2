package backup

import (
	"log/slog"

	"github.com/pg-standby/pg-standby/internal/instance"
	"github.com/pg-standby/pg-standby/internal/progress"
)

// Options configure one attempt.
type Options struct {
	// Instance, if set, is used as resolved; otherwise DataDir and ConfFile name it.
	Instance *instance.Instance
	DataDir  string
	// ConfFile is the instance's postgresql.conf; default DataDir/postgresql.conf.
	ConfFile string
	// Checkpoint is "fast" or "spread".
	Checkpoint string
	MaxRateKB  int64
	// ManifestChecksums defaults to CRC32C.
	ManifestChecksums string
	// TablespaceMapping maps a primary's tablespace location to a local one (-T OLD=NEW).
	TablespaceMapping map[string]string
	// Compression is server-side compression, METHOD[:DETAIL] (gzip, lz4,
	// zstd; e.g. "zstd:level=3"): less on the wire, more CPU on both ends.
	Compression string
	// CreateSlot creates primary_slot_name on the primary when it is missing.
	CreateSlot bool
	Label      string
	Log        *slog.Logger
	Progress   *progress.Tracker
	// SyncWorkers is the number of concurrent fsyncs; default 4.
	SyncWorkers int
	// DirectIO writes file contents with O_DIRECT (the default, nil) or,
	// when false, through the page cache.
	DirectIO *bool
	// Tune, if set, is called as the copy starts, with the server-side
	// compression method ("" for none); what it returns is called when the
	// copy ends. The command sets process-wide state there (GOMAXPROCS, the
	// memory limit): the library sets none.
	Tune func(compression string) (restore func())
	// CopyOnly ends with a bare copy, as pg_basebackup leaves one: pg_control
	// made visible last and basebackup.signal removed, but no standby
	// configuration written (a caller such as Patroni writes its own).
	CopyOnly bool
}

package basebackup

import (
	"fmt"
	"strings"

	"github.com/pg-standby/pg-standby/internal/instance"
)

// Options are the BASE_BACKUP options pg-standby uses. The command always
// asks for PROGRESS (so the tablespace list carries sizes), WAIT false (WAL
// is streamed beside the backup, so the server need not wait for archiving),
// a manifest and TARGET 'client'.
type Options struct {
	Label string
	// Checkpoint is "fast" or "spread" (the server's default).
	Checkpoint string
	// ManifestChecksums is CRC32C, SHA224, SHA256, SHA384, SHA512 or NONE.
	ManifestChecksums string
	// MaxRateKB limits the server's send rate in kB/s (instance.CheckMaxRate); 0 is unlimited.
	MaxRateKB int64
	// Compression is a server-side compression method ("gzip"); "" for none.
	Compression string
	// CompressionDetail is passed as COMPRESSION_DETAIL, e.g. "level=1".
	CompressionDetail string
	// Incremental asks for INCREMENTAL (PostgreSQL 17+): the manifest
	// uploaded before on the same connection says what to send as changed
	// blocks only.
	Incremental bool
}

// Command renders the BASE_BACKUP command in the parenthesized option syntax
// of PostgreSQL 15+.
func (o Options) Command() (string, error) {
	opts := []string{"LABEL " + quote(o.Label), "PROGRESS", "WAIT false", "MANIFEST 'yes'", "TARGET 'client'"}
	switch o.Checkpoint {
	case "":
		opts = append(opts, "CHECKPOINT 'spread'")
	default:
		if err := instance.CheckCheckpoint(o.Checkpoint); err != nil {
			return "", fmt.Errorf("checkpoint mode %q: %w", o.Checkpoint, err)
		}
		opts = append(opts, "CHECKPOINT "+quote(o.Checkpoint))
	}
	if o.ManifestChecksums != "" {
		opts = append(opts, "MANIFEST_CHECKSUMS "+quote(o.ManifestChecksums))
	}
	if o.MaxRateKB != 0 {
		if err := instance.CheckMaxRate(o.MaxRateKB); err != nil {
			return "", fmt.Errorf("max rate %d kB/s out of range: %w (32 kB/s to 1 GB/s)", o.MaxRateKB, err)
		}
		opts = append(opts, fmt.Sprintf("MAX_RATE %d", o.MaxRateKB))
	}
	if o.Compression != "" {
		opts = append(opts, "COMPRESSION "+quote(o.Compression))
		if o.CompressionDetail != "" {
			opts = append(opts, "COMPRESSION_DETAIL "+quote(o.CompressionDetail))
		}
	}
	if o.Incremental {
		opts = append(opts, "INCREMENTAL")
	}
	return "BASE_BACKUP (" + strings.Join(opts, ", ") + ")", nil
}

// quote renders a replication-command string literal.
func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

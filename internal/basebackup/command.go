package basebackup

import (
	"fmt"
	"strings"
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
	// MaxRateKB limits the server's send rate in kB/s (32..1048576); 0 is unlimited.
	MaxRateKB int64
	// Compression is a server-side compression method ("gzip"); "" for none.
	Compression string
	// CompressionDetail is passed as COMPRESSION_DETAIL, e.g. "level=1".
	CompressionDetail string
}

// Command renders the BASE_BACKUP command in the parenthesized option syntax
// of PostgreSQL 15+.
func (o Options) Command() (string, error) {
	opts := []string{"LABEL " + quote(o.Label), "PROGRESS", "WAIT false", "MANIFEST 'yes'", "TARGET 'client'"}
	switch o.Checkpoint {
	case "", "spread":
		opts = append(opts, "CHECKPOINT 'spread'")
	case "fast":
		opts = append(opts, "CHECKPOINT 'fast'")
	default:
		return "", fmt.Errorf("checkpoint mode %q: want fast or spread", o.Checkpoint)
	}
	if o.ManifestChecksums != "" {
		opts = append(opts, "MANIFEST_CHECKSUMS "+quote(o.ManifestChecksums))
	}
	if o.MaxRateKB != 0 {
		if o.MaxRateKB < 32 || o.MaxRateKB > 1048576 {
			return "", fmt.Errorf("max rate %d kB/s out of range: want 32 to 1048576 kB/s (32 kB/s to 1 GB/s)", o.MaxRateKB)
		}
		opts = append(opts, fmt.Sprintf("MAX_RATE %d", o.MaxRateKB))
	}
	if o.Compression != "" {
		opts = append(opts, "COMPRESSION "+quote(o.Compression))
		if o.CompressionDetail != "" {
			opts = append(opts, "COMPRESSION_DETAIL "+quote(o.CompressionDetail))
		}
	}
	return "BASE_BACKUP (" + strings.Join(opts, ", ") + ")", nil
}

// quote renders a replication-command string literal.
func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

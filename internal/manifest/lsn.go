package manifest

import "github.com/pg-standby/pg-standby/internal/wal"

// LSN is a WAL location; the manifest's WAL-Ranges use PostgreSQL's "X/Y" form.
type LSN = wal.LSN

// ParseLSN parses the "X/Y" form (see wal.ParseLSN).
func ParseLSN(s string) (LSN, error) { return wal.ParseLSN(s) }

package manifest

import "github.com/pg-standby/pg-standby/internal/wal"

// LSN is a WAL location; the manifest's WAL-Ranges use PostgreSQL's "X/Y"
// form, parsed by wal.ParseLSN.
type LSN = wal.LSN

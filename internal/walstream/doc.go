// Package walstream receives WAL over a physical replication connection
// beside the base backup, as pg_basebackup -X stream does, and writes it as
// segment files into the new instance's pg_wal.
package walstream

// Package manifest parses the backup manifest that a PostgreSQL server sends
// at the end of BASE_BACKUP (... MANIFEST 'yes') and checks what pg-standby
// wrote against it.
//
// The manifest is a JSON document written by the server in
// src/backend/backup/backup_manifest.c and read by PostgreSQL's own
// src/common/parse_manifest.c. This package follows the reader's rules, and
// is stricter wherever the server never produces the thing rejected (see
// Parse). The manifest comes from the server, which this package does not
// trust: Parse never panics, and rejects anything that could make a later
// comparison ambiguous (duplicate or escaping paths, malformed checksums).
//
// The package has three parts: checksum algorithms (algorithm.go), decoding
// (parse.go, with paths in path.go and the manifest's own checksum in
// checksum.go), and comparison (verify.go for files, wal.go for WAL ranges).
// WAL locations are wal.LSN (lsn.go only names the alias).
package manifest

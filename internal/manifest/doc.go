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
//
// Why a token parser and not one json.Decode of the whole document with
// DisallowUnknownFields: measured on the 60,000-file manifest (8.6 MB of
// text; go test -bench 60k -benchtime 5x, 2 cores), one Decode holds
// 26.1 MB live when it returns (json.Decoder buffers the whole value, plus
// the raw entries) and allocates 55 MB, before any conversion to File; the
// streaming parser holds 5.1 MB (the compact Files) and allocates 33.6 MB
// (11.0 MB in VerifyReader, the backup's path, which adds nothing live:
// duplicates are told by marks in what was written), at twice the CPU time
// (450 vs 213 ms). The copy runs under a 20 MiB memory limit, which the
// Decode alone would exceed. A struct decode also cannot see the top-level
// rules parse_manifest.c enforces (version first, checksum last, each field
// once, names matched exactly); entries are still decoded by encoding/json,
// one at a time, with unknown fields refused.
package manifest

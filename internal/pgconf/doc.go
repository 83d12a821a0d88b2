// Package pgconf reads a PostgreSQL instance's configuration the way a
// PostgreSQL 15 server resolves it at startup, so that pg-standby sees the
// same primary_conninfo (and everything else) the server would.
//
// The rules follow src/backend/utils/misc/guc-file.l and src/port/path.c of
// PostgreSQL 15, and were checked against Debian's postgres 15.18 binary:
//
//   - Each line holds one "name [=] value" with an optional "#" comment; the
//     lexer is reproduced token for token (see lexer.go), including its
//     longest-match quirks.
//   - include, include_if_exists and include_dir are processed where they
//     appear; paths are relative to the including file; nesting is limited to
//     depth 10.
//   - postgresql.auto.conf in the data directory is read after the main file,
//     and for every name the last setting read wins.
//
// Load returns an error wherever PostgreSQL would refuse to start: a syntax
// error anywhere, a missing include or include_dir, or too deep nesting.
package pgconf

// Package walstream receives WAL over a physical replication connection
// beside the base backup, as pg_basebackup -X stream does, and writes it as
// segment files into the new instance's pg_wal.
//
// Why not github.com/jackc/pglogrepl for the wire messages (ParseXLogData,
// ParsePrimaryKeepaliveMessage, SendStandbyStatusUpdate; read at
// v0.0.0-20251213150135-2e8d0df862c1):
//   - SendStandbyStatusUpdate replaces an apply position of 0 with the write
//     position. A backup applies nothing, and the primary shows the reported
//     apply position as replay_lsn (with synchronous_standby_names = '*' a
//     remote_apply commit would count it as applied); with pglogrepl the
//     receiver could not say "nothing applied". statusUpdate sends 0 (TestStatusUpdateLayout,
//     and fakeprimary checks every update the receiver sends).
//   - Its parsers are the same fixed layouts as decode (one 23-line function); since
//     decode returns a value, not an interface, neither allocates per message
//     (BenchmarkDecode: 0 allocs, 14 ns for 8 kB of XLogData, against 27 ns
//     for pglogrepl.ParseXLogData, which also converts the unused send time).
//   - Adopting it adds two modules (pglogrepl, a pseudo-version with no
//     tagged release, and github.com/jackc/pgio) and a second LSN type to
//     convert to and from wal.LSN at every call.
package walstream

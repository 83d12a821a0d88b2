// Package fakeprimary is a scripted, possibly hostile, PostgreSQL replication
// server for tests. It speaks just enough of the protocol for a pg-standby
// attempt: startup without authentication, IDENTIFY_SYSTEM, SHOW,
// CREATE_REPLICATION_SLOT, READ_REPLICATION_SLOT, BASE_BACKUP (two result
// sets, one COPY stream of whatever CopyData payloads the script holds, the
// end result set) and START_REPLICATION (zero-filled WAL up to the script's
// end position, then silence; or, with Script.WAL, per timeline scripted
// XLogData and keepalives, a timeline switch and TIMELINE_HISTORY). It
// records the standby status updates it receives (Statuses, WaitStatus).
//
// The archive helpers (Tar, Archive, Manifest) build both well-formed and
// malformed streams: names with "..", absolute paths, any type flag, raw size
// fields.
package fakeprimary

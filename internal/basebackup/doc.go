// Package basebackup speaks the PostgreSQL 15+ BASE_BACKUP replication command:
// it builds the command, reads the result sets around the COPY stream, decodes
// the tagged CopyData payloads into typed messages, and demultiplexes them.
//
// Start sends the command and returns where the backup starts; the caller
// prepares (claims tablespaces, records the attempt), then Backup.Stream
// receives. The COPY stream protocol (src/backend/backup/basebackup_copy.c):
// one CopyOutResponse carries every archive and the manifest; each CopyData
// payload starts with a tag byte — 'n' new archive, 'd' data, 'p' progress,
// 'm' manifest follows. Stream vets each announced archive's name against the
// tablespace list and asks its Receiver for the archive's chain, and bounds
// the manifest by the files the archives held.
//
// The connection is taken over from pgconn (Hijack) once it is idle before
// BASE_BACKUP: wire frames the messages, pgproto3 still decodes every body
// but archive data, and archive data is read straight from the socket into
// the chain's buffers (the tar parser's header block, the writer's aligned
// direct-I/O buffers), so each byte is copied once from the kernel to where
// it is written.
package basebackup

// Package basebackup speaks the PostgreSQL 15+ BASE_BACKUP replication command:
// it builds the command, reads the result sets around the COPY stream, and
// decodes the tagged CopyData payloads into typed messages.
//
// The COPY stream protocol (src/backend/backup/basebackup_copy.c): one
// CopyOutResponse carries every archive and the manifest; each CopyData
// payload starts with a tag byte — 'n' new archive, 'd' data, 'p' progress,
// 'm' manifest follows.
package basebackup

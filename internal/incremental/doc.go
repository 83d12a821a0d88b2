// Package incremental holds the building blocks of resume and resync by
// changed blocks on PostgreSQL 17+ (issue 15), which internal/backup wires
// into its archive chains:
//
//   - format.go: a streaming, bounded decoder of the INCREMENTAL.<name> files
//     the server writes (src/backend/backup/basebackup_incremental.c);
//   - reconstruct.go: rebuilding <name> in place from the prior file and the
//     increment, by pg_combinebackup's block rule
//     (src/bin/pg_combinebackup/reconstruct.c);
//   - manifest.go: the backup manifests this package writes: the one uploaded
//     before BASE_BACKUP (INCREMENTAL), and the one describing the combined
//     result (as src/bin/pg_combinebackup/write_manifest.c), plus the
//     backup_label rewrite;
//   - upload.go: UPLOAD_MANIFEST, the summarize_wal probe, and the SQLSTATE
//     classification that tells the caller to fall back to a full backup;
//   - timeline.go, summaries.go, prior.go: resync's checks (the primary's
//     timeline history, WAL summary coverage of a prior start) and the
//     prior files of a resynced standby as resume journal records.
//
// The server is not trusted: every length and block number it sends is
// checked before it sizes an allocation or an offset. docs/incremental.md
// explains why each block of the result is right.
package incremental

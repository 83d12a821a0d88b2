// Package backup runs one base backup attempt into a pg-standby instance:
// it connects to the primary named by the instance's primary_conninfo,
// streams BASE_BACKUP through the archive chain into the data directory and
// tablespaces while WAL streams beside it, verifies the manifest, makes
// everything durable and hands the directory over as a standby.
//
// attempt.copy is the walk in order: basebackup.Start, claim the
// tablespaces, record the attempt, then Backup.Stream. A byte from the
// socket passes Stream's demultiplexer, then the chain dest.Archive builds
// for its archive: decompress.Stage, tarstream.Parser, extract.Checksum,
// autoConfFilter (base archive), extract.Keep, extract.Writer, and from there
// directio.Queue and durable.Syncer.
package backup

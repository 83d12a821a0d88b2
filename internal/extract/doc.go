// Package extract holds the stages of an archive chain that act on members:
// Checksum records each file as the primary sent it (as astreamer_verify),
// Keep drops the files the instance keeps and renames diverted ones (as
// astreamer_inject), and Writer, the last stage, materializes members under
// one os.Root (the data directory or one tablespace location).
//
// The Writer overwrites what an earlier attempt left, file by file: a file
// that is already there is compared chunk by chunk with the incoming bytes
// and only differing chunks are written (a retry's "delta"), then truncated
// to size. Finished files go to a durable.Syncer.
package extract

// Package extract is the last stage of an archive chain: it materializes tar
// members under one os.Root (the data directory or one tablespace location).
//
// It overwrites what an earlier attempt left, file by file: a file that is
// already there is compared chunk by chunk with the incoming bytes and only
// differing chunks are written (a retry's "delta"), then truncated to size.
// Each file's checksum is taken as the bytes pass, for the manifest check,
// and finished files go to a durable.Syncer.
package extract

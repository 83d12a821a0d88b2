// Package decompress is the first stage of an archive chain when the server
// compresses (BASE_BACKUP's COMPRESSION option): it turns the pushed,
// compressed chunks back into the tar stream for the next stage, like
// PostgreSQL's astreamer gzip/lz4/zstd decompressors.
package decompress

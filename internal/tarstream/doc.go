// Package tarstream parses a tar archive pushed to it in chunks and passes
// each member on as labelled parts, like PostgreSQL's astreamer tar parser:
// one Header, any number of Contents, one Trailer per member, then one
// ArchiveEnd. Contents are sub-slices of the caller's chunk: nothing is
// buffered but the 512-byte header. A chunk may also come as a Source, read
// by the stage that keeps the bytes (Parser.WriteFrom).
package tarstream

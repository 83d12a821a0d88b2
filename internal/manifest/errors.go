package manifest

// FormatError is a manifest that Parse rejects: malformed JSON, a field or
// path against the rules, or a wrong Manifest-Checksum.
type FormatError struct{ Err error }

func (e *FormatError) Error() string { return e.Err.Error() }
func (e *FormatError) Unwrap() error { return e.Err }

// MaxSize caps every manifest held in memory, whatever the file count: about
// 1.5 million files at PostgreSQL's longest lines.
const MaxSize = 256 << 20

// SizeBound is the largest manifest a server can send for files files whose
// manifest paths total pathBytes, capped at MaxSize. backup_manifest.c writes
// one line per file of about 150 bytes of keys, size and time, plus the path
// (JSON-escaped: at most 6 bytes per byte, as \u00XX) and the checksum (at
// most 128 hex digits, SHA512); the header, WAL ranges and Manifest-Checksum
// take a few hundred bytes more. 512 bytes a line and 1 MiB leave room.
func SizeBound(files int, pathBytes int64) int64 {
	n := 1<<20 + int64(files)*512 + 6*pathBytes
	return min(n, MaxSize)
}

package manifest

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"unicode/utf8"
)

// renderOptions tweak how render writes a manifest.
type renderOptions struct {
	forceEncode bool // MANIFEST 'force-encode': every path as Encoded-Path
	zeroPadLSN  bool // PostgreSQL 19 prints LSNs as %X/%08X
}

// lastModified is the fixed mtime the tests write, in the server's format
// ("%Y-%m-%d %H:%M:%S %Z" of a GMT time).
const lastModified = "2024-05-06 07:08:09 GMT"

// render writes m the way backup_manifest.c does, byte for byte, including
// the trailing Manifest-Checksum line.
func render(m *Manifest, o renderOptions) []byte {
	return sign(renderBody(m, o))
}

// renderBody is everything the server hashes: the manifest up to and
// including the newline before the "Manifest-Checksum" line.
func renderBody(m *Manifest, o renderOptions) string {
	var b strings.Builder
	// InitializeBackupManifest
	fmt.Fprintf(&b, "{ \"PostgreSQL-Backup-Manifest-Version\": %d,\n", m.Version)
	if m.Version >= 2 {
		fmt.Fprintf(&b, "\"System-Identifier\": %d,\n", m.SystemIdentifier)
	}
	b.WriteString("\"Files\": [")
	// AddFileToBackupManifest
	for i, f := range m.Files {
		if i == 0 {
			b.WriteString("\n")
		} else {
			b.WriteString(",\n")
		}
		if !o.forceEncode && utf8.ValidString(f.Path) {
			b.WriteString("{ \"Path\": ")
			b.WriteString(escapeJSON(f.Path))
			b.WriteString(", ")
		} else {
			fmt.Fprintf(&b, "{ \"Encoded-Path\": \"%s\", ", hex.EncodeToString([]byte(f.Path)))
		}
		fmt.Fprintf(&b, "\"Size\": %d, \"Last-Modified\": \"%s\"", f.Size, lastModified)
		if f.Algorithm != None {
			fmt.Fprintf(&b, ", \"Checksum-Algorithm\": \"%s\", \"Checksum\": \"%s\"", f.Algorithm, hex.EncodeToString(f.Checksum))
		}
		b.WriteString(" }")
	}
	// AddWALInfoToBackupManifest
	b.WriteString("\n],\n")
	b.WriteString("\"WAL-Ranges\": [\n")
	lsn := func(l LSN) string {
		if o.zeroPadLSN {
			return fmt.Sprintf("%X/%08X", uint32(l>>32), uint32(l))
		}
		return l.String()
	}
	for i, r := range m.WALRanges {
		if i > 0 {
			b.WriteString(",\n")
		}
		fmt.Fprintf(&b, "{ \"Timeline\": %d, \"Start-LSN\": \"%s\", \"End-LSN\": \"%s\" }", r.Timeline, lsn(r.Start), lsn(r.End))
	}
	b.WriteString("\n],\n")
	return b.String()
}

// sign appends the Manifest-Checksum line to body, as SendBackupManifest
// does: SHA-256 of body in lower-case hex.
func sign(body string) []byte {
	sum := sha256.Sum256([]byte(body))
	return []byte(body + "\"Manifest-Checksum\": \"" + hex.EncodeToString(sum[:]) + "\"}\n")
}

// resign replaces a document's last line with a correct Manifest-Checksum
// line for everything before it; documents without two lines come back
// unchanged.
func resign(data []byte) []byte {
	s := string(data)
	if !strings.HasSuffix(s, "\n") {
		return data
	}
	i := strings.LastIndexByte(s[:len(s)-1], '\n')
	if i < 0 {
		return data
	}
	return sign(s[:i+1])
}

// escapeJSON quotes s as PostgreSQL's escape_json does: \" \\ \b \f \n \r
// \t, other control characters as \u00XX, everything else verbatim.
func escapeJSON(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		default:
			if c < ' ' {
				fmt.Fprintf(&b, `\u%04x`, c)
			} else {
				b.WriteByte(c)
			}
		}
	}
	b.WriteByte('"')
	return b.String()
}

// sum is alg's checksum of content, as the server computes it.
func sum(alg Algorithm, content string) []byte {
	h := alg.NewHash()
	if h == nil {
		return nil
	}
	h.Write([]byte(content))
	return h.Sum(nil)
}

// testFile is a file with content, from which manifest entries and
// observations are made.
type testFile struct {
	path    string
	content string
}

// sampleFiles look like a small data directory, including a tablespace and
// a path that is not valid UTF-8.
var sampleFiles = []testFile{
	{"backup_label", "START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\n"},
	{"PG_VERSION", "15\n"},
	{"global/pg_control", strings.Repeat("\x01", 8192)},
	{"base/1/1259", strings.Repeat("\x00", 8192)},
	{"base/5/pg_filenode.map", "map"},
	{"pg_tblspc/16384/PG_15_202209061/5/16385", strings.Repeat("t", 8192)},
	{"pg_wal/archive_status/000000010000000000000002.done", ""},
	{"postgresql.conf", "shared_buffers = 128MB\n"},
	{"odd-\xff name", "not UTF-8"},
	{"quote\"back\\slash\ttab", "escaped"},
	{"empty", ""},
}

// sampleManifest is a manifest of files with alg checksums.
func sampleManifest(version int, alg Algorithm, files []testFile) *Manifest {
	m := &Manifest{Version: version}
	if version >= 2 {
		m.SystemIdentifier = 7412345678901234567
	}
	for _, f := range files {
		m.Files = append(m.Files, File{Path: f.path, Size: int64(len(f.content)), Algorithm: alg, Checksum: sum(alg, f.content)})
	}
	m.WALRanges = []WALRange{{Timeline: 1, Start: 0x2000028, End: 0x2000100}}
	return m
}

// observe is what a correct writer reports for files.
func observe(alg Algorithm, files []testFile) map[string]Observed {
	o := make(map[string]Observed, len(files))
	for _, f := range files {
		o[f.path] = Observed{Size: int64(len(f.content)), Checksum: sum(alg, f.content)}
	}
	return o
}

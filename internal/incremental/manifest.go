package incremental

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/pg-standby/pg-standby/internal/manifest"
)

// ManifestFile is one "Files" entry of a manifest this package writes.
type ManifestFile struct {
	Path string // relative to the data directory, '/'-separated
	Size int64
	// ModTime is written as Last-Modified when set; the server ignores it
	// in an uploaded manifest, pg_verifybackup does not check it.
	ModTime   time.Time
	Algorithm manifest.Algorithm // None: no checksum fields
	Checksum  []byte
}

// Manifest is what RenderManifest writes: always version 2 with the system
// identifier, since the server refuses a version 1 manifest for an
// incremental backup (basebackup_incremental.c, manifest_process_version)
// and checks the identifier against its own.
type Manifest struct {
	SystemID  uint64
	Files     []ManifestFile
	WALRanges []manifest.WALRange
}

// RenderManifest writes m in the layout of backup_manifest.c and
// write_manifest.c: one file or WAL range per line, and last the
// Manifest-Checksum, the SHA-256 of everything before that line.
func RenderManifest(m *Manifest) ([]byte, error) {
	if len(m.WALRanges) == 0 {
		return nil, errNoWALRange
	}
	var b bytes.Buffer
	mw := NewManifestWriter(&b, m.SystemID)
	seen := make(map[string]bool, len(m.Files))
	for i := range m.Files {
		f := &m.Files[i]
		if seen[f.Path] {
			return nil, fmt.Errorf("render manifest: %q listed twice", f.Path)
		}
		seen[f.Path] = true
		if err := mw.File(f); err != nil {
			return nil, err
		}
	}
	if err := mw.Close(m.WALRanges); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

var errNoWALRange = errors.New("render manifest: no WAL range")

// ManifestWriter writes a manifest to w one entry at a time, byte for byte
// as RenderManifest lays it out, hashing as it goes for the
// Manifest-Checksum: memory holds one entry, whatever the number of files.
// The caller keeps paths unique. The first error sticks.
type ManifestWriter struct {
	w     io.Writer
	h     hash.Hash
	buf   bytes.Buffer // the entry being written
	files int
	err   error
}

// NewManifestWriter writes the manifest's head (version 2, systemID) to w.
func NewManifestWriter(w io.Writer, systemID uint64) *ManifestWriter {
	mw := &ManifestWriter{w: w, h: sha256.New()}
	fmt.Fprintf(&mw.buf, "{ \"PostgreSQL-Backup-Manifest-Version\": 2,\n\"System-Identifier\": %d,\n\"Files\": [", systemID)
	mw.flush(true)
	return mw
}

// File writes the next "Files" entry.
func (mw *ManifestWriter) File(f *ManifestFile) error {
	if mw.err != nil {
		return mw.err
	}
	if mw.files > 0 {
		mw.buf.WriteByte(',')
	}
	if err := renderFile(&mw.buf, f); err != nil {
		mw.buf.Reset()
		mw.err = err
		return err
	}
	mw.files++
	return mw.flush(true)
}

// Close ends the files, writes the WAL ranges, then the Manifest-Checksum
// of everything before it. It does not close w.
func (mw *ManifestWriter) Close(ranges []manifest.WALRange) error {
	if mw.err == nil && len(ranges) == 0 {
		mw.err = errNoWALRange
	}
	if mw.err != nil {
		return mw.err
	}
	mw.buf.WriteString("\n],\n\"WAL-Ranges\": [")
	for i, r := range ranges {
		if i > 0 {
			mw.buf.WriteByte(',')
		}
		fmt.Fprintf(&mw.buf, "\n{ \"Timeline\": %d, \"Start-LSN\": \"%s\", \"End-LSN\": \"%s\" }", r.Timeline, r.Start, r.End)
	}
	mw.buf.WriteString("\n],\n")
	if err := mw.flush(true); err != nil {
		return err
	}
	fmt.Fprintf(&mw.buf, "\"Manifest-Checksum\": \"%x\"}\n", mw.h.Sum(nil))
	if err := mw.flush(false); err != nil {
		return err
	}
	mw.err = errors.New("render manifest: written after Close")
	return nil
}

// flush writes the entry to w, hashed unless it is the checksum line.
func (mw *ManifestWriter) flush(hashed bool) error {
	if hashed {
		mw.h.Write(mw.buf.Bytes())
	}
	_, err := mw.w.Write(mw.buf.Bytes())
	mw.buf.Reset()
	if err != nil {
		mw.err = fmt.Errorf("write manifest: %w", err)
	}
	return mw.err
}

// ManifestReader renders a manifest while it is read (what UPLOAD_MANIFEST's
// CopyFrom reads), taking the files from next one at a time: memory holds
// about one read's worth of text, not the document.
type ManifestReader struct {
	mw     *ManifestWriter
	out    bytes.Buffer
	next   func() (ManifestFile, bool)
	ranges []manifest.WALRange
	err    error // io.EOF once all is rendered
}

// NewManifestReader is the manifest of systemID with the files next gives
// (false once there are no more) and ranges, as RenderManifest lays it out.
func NewManifestReader(systemID uint64, ranges []manifest.WALRange, next func() (ManifestFile, bool)) *ManifestReader {
	r := &ManifestReader{next: next, ranges: ranges}
	r.mw = NewManifestWriter(&r.out, systemID)
	return r
}

// Read implements io.Reader.
func (r *ManifestReader) Read(p []byte) (int, error) {
	for r.out.Len() < len(p) && r.err == nil {
		f, ok := r.next()
		switch {
		case !ok:
			r.err = r.mw.Close(r.ranges)
			if r.err == nil {
				r.err = io.EOF
			}
		default:
			r.err = r.mw.File(&f)
		}
	}
	if r.out.Len() > 0 {
		return r.out.Read(p)
	}
	return 0, r.err
}

// Err is the error that stopped rendering, nil if none did (so far).
func (r *ManifestReader) Err() error {
	if r.err == io.EOF {
		return nil
	}
	return r.err
}

func renderFile(b *bytes.Buffer, f *ManifestFile) error {
	if f.Path == "" || strings.HasPrefix(f.Path, "/") || f.Size < 0 {
		return fmt.Errorf("render manifest: bad entry %q size %d", f.Path, f.Size)
	}
	if f.Algorithm != manifest.None && len(f.Checksum) != f.Algorithm.Size() {
		return fmt.Errorf("render manifest: %q: %s checksum of %d bytes", f.Path, f.Algorithm, len(f.Checksum))
	}
	b.WriteString("\n{ ")
	if utf8.ValidString(f.Path) {
		b.WriteString(`"Path": `)
		writeJSONString(b, f.Path)
	} else {
		fmt.Fprintf(b, `"Encoded-Path": "%s"`, hex.EncodeToString([]byte(f.Path)))
	}
	fmt.Fprintf(b, `, "Size": %d`, f.Size)
	if !f.ModTime.IsZero() {
		fmt.Fprintf(b, `, "Last-Modified": "%s"`, f.ModTime.UTC().Format("2006-01-02 15:04:05 GMT"))
	}
	if f.Algorithm != manifest.None {
		fmt.Fprintf(b, `, "Checksum-Algorithm": "%s", "Checksum": "%s"`, f.Algorithm, hex.EncodeToString(f.Checksum))
	}
	b.WriteString(" }")
	return nil
}

// writeJSONString quotes s as JSON without HTML escaping (the server's
// escape_json leaves <, > and & alone; either form parses).
func writeJSONString(b *bytes.Buffer, s string) {
	enc := json.NewEncoder(b)
	enc.SetEscapeHTML(false)
	enc.Encode(s)           // a string always encodes
	b.Truncate(b.Len() - 1) // Encode's newline
}

// MaxBackupLabel bounds the backup_label read: the server writes a few
// hundred bytes.
const MaxBackupLabel = 64 << 10

// Lines an incremental backup_label has and a full one must not: postgres
// refuses to start from a backup_label that has them (xlogrecovery.c,
// read_backup_label).
var incrementalLabelLines = []string{"INCREMENTAL FROM LSN: ", "INCREMENTAL FROM TLI: "}

// StripIncrementalLabel returns backup_label's content without the
// INCREMENTAL FROM lines, as pg_combinebackup's write_backup_label does;
// every other line is kept byte for byte.
func StripIncrementalLabel(label []byte) ([]byte, error) {
	if len(label) > MaxBackupLabel {
		return nil, fmt.Errorf("backup_label of %d bytes: more than %d", len(label), MaxBackupLabel)
	}
	var out bytes.Buffer
	sc := bufio.NewScanner(bytes.NewReader(label))
	sc.Split(scanLinesKeepEOL)
	for sc.Scan() {
		line := sc.Text()
		drop := false
		for _, p := range incrementalLabelLines {
			drop = drop || strings.HasPrefix(line, p)
		}
		if !drop {
			out.WriteString(line)
		}
	}
	return out.Bytes(), sc.Err()
}

// scanLinesKeepEOL is bufio.ScanLines keeping the "\n".
func scanLinesKeepEOL(data []byte, atEOF bool) (int, []byte, error) {
	if i := bytes.IndexByte(data, '\n'); i >= 0 {
		return i + 1, data[:i+1], nil
	}
	if atEOF && len(data) > 0 {
		return len(data), data, nil
	}
	return 0, nil, nil
}

// Listable says whether a file of the data directory may be listed in an
// uploaded manifest, i.e. kept from a prior attempt and patched by an
// increment: a relation segment (base/<db>/, global/ or
// pg_tblspc/<spc>/<version dir>/<db>/, named <relfilenode>[_init][.<segno>])
// of the main or init fork. Every other file comes whole anyway; the FSM fork
// always comes whole (basebackup_incremental.c, GetFileBackupMethod); and the
// visibility map fork is left out on purpose: PostgreSQL 17/18 do not
// register the VM buffer when a heap change clears a VM bit, so the WAL
// summary misses that block and an increment would keep a stale all-visible
// bit (pgsql-hackers, "Why clearing the VM doesn't require registering vm
// buffer in wal record", 2026). Sending the VM whole costs one 8 kB page per
// 256 MB of heap.
func Listable(p string) bool {
	parts := strings.Split(p, "/")
	switch {
	case len(parts) == 2 && parts[0] == "global":
	case len(parts) == 3 && parts[0] == "base" && IsOID(parts[1]):
	case len(parts) == 5 && parts[0] == "pg_tblspc" && IsOID(parts[1]) && strings.HasPrefix(parts[2], "PG_") && IsOID(parts[3]):
	default:
		return false
	}
	name := parts[len(parts)-1]
	if i := strings.IndexByte(name, '.'); i >= 0 {
		if !IsOID(name[i+1:]) {
			return false
		}
		name = name[:i]
	}
	name = strings.TrimSuffix(name, "_init")
	return IsOID(name)
}

// IsOID: a non-empty decimal number without sign or leading zero that fits
// in 32 bits, as PostgreSQL writes OIDs, relfilenodes and segment numbers
// (the names of base/<db> and pg_tblspc/<oid> too). Anything else there was
// not made by postgres.
func IsOID(s string) bool {
	if s == "" || len(s) > 10 || s[0] == '0' {
		return false
	}
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return false
		}
	}
	// Ten digits compare as numbers when they compare as strings.
	return len(s) < 10 || s <= "4294967295"
}

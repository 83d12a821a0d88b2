package manifest

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/pg-standby/pg-standby/internal/wal"
)

// File is one entry of the manifest's "Files" array.
type File struct {
	Path      string // decoded relative path, '/' separated
	Size      int64
	Algorithm Algorithm
	Checksum  []byte // nil when Algorithm == None
}

// WALRange is one entry of the manifest's "WAL-Ranges" array: the WAL of
// Timeline from Start to End is needed to make the backup consistent.
type WALRange struct {
	Timeline   uint32
	Start, End LSN
}

// Manifest is a decoded backup manifest.
type Manifest struct {
	Version          int
	SystemIdentifier uint64 // 0 when the manifest (v1) has none
	Files            []File
	WALRanges        []WALRange
	NumFiles         int // from VerifyReader, which keeps no Files; else 0
}

// Top-level field names, in the order the server writes them.
const (
	keyVersion   = "PostgreSQL-Backup-Manifest-Version"
	keySystemID  = "System-Identifier"
	keyFiles     = "Files"
	keyWALRanges = "WAL-Ranges"
	keyChecksum  = "Manifest-Checksum"
)

// Parse decodes and validates a backup manifest, including its
// Manifest-Checksum. The format, as backup_manifest.c writes it:
//
//	{ "PostgreSQL-Backup-Manifest-Version": 2,
//	"System-Identifier": 7412345678901234567,
//	"Files": [
//	{ "Path": "backup_label", "Size": 225, "Last-Modified": "2024-01-02 03:04:05 GMT", "Checksum-Algorithm": "CRC32C", "Checksum": "a1b2c3d4" },
//	...
//	],
//	"WAL-Ranges": [
//	{ "Timeline": 1, "Start-LSN": "0/2000028", "End-LSN": "0/2000100" }
//	],
//	"Manifest-Checksum": "<sha-256 hex>"}
//
// Version 1 (PostgreSQL 13-16) has no System-Identifier; version 2
// (PostgreSQL 17+) has one. Paths that are not valid UTF-8 are written as
// "Encoded-Path", the hex of the raw bytes; tablespace files appear as
// pg_tblspc/<oid>/...; WAL segments are not listed (though when the backup
// includes WAL, its pg_wal/archive_status/*.done files are).
//
// As parse_manifest.c does, Parse requires the version first and
// Manifest-Checksum last, rejects unknown fields, a Checksum without a
// Checksum-Algorithm, bad hex and unknown algorithms, and accepts the
// fields inside a file or WAL range in any order, a repeated one replacing
// the earlier. Top-level field names must match exactly and appear once;
// inside entries they are matched as encoding/json matches struct fields,
// ignoring case.
//
// Parse is stricter than PostgreSQL about things the server never writes:
// numbers must be JSON integers and strings JSON strings; "Files", a
// non-empty "WAL-Ranges" and, in version 2 only, "System-Identifier" are
// required; paths must be clean relative paths ('/'-separated, no empty,
// "." or ".." components, no NUL) and unique; sizes must not be negative;
// a checksum must have exactly its algorithm's length; timelines must not be
// 0 and a WAL range must not end before it starts; the document must be
// valid UTF-8; and the Manifest-Checksum must be alone on the last line
// (see checkReader.verify).
//
// Errors name the field, the file (by index, and path once known) or WAL
// range, and the byte offset. Parse does not limit len(data); the caller
// should.
func Parse(data []byte) (*Manifest, error) {
	m, err := parse(data)
	if err != nil {
		return nil, &FormatError{Err: err}
	}
	return m, nil
}

func parse(data []byte) (*Manifest, error) {
	return parseStream(bytes.NewReader(data))
}

func newDecoder(r io.Reader) *json.Decoder {
	dec := json.NewDecoder(r)
	dec.UseNumber()
	dec.DisallowUnknownFields()
	return dec
}

// parser decodes the manifest as a stream: the top-level object token by
// token, so that its field names are matched exactly and their order and
// uniqueness checked, and each array entry with one Decode into a small
// struct, so that only the compact File and WALRange values are kept.
type parser struct {
	dec *json.Decoder
	// onFile, when set, receives each file instead of Manifest.Files.
	onFile func(*File)
	// seen reports whether a path came earlier in the document, and notes
	// it; nil: the parser keeps the set of paths itself.
	seen func(path string) bool
	cur  File // what onFile gets, so that no File escapes per entry

	// Where the parser is, for error messages.
	section string // "", keyFiles or keyWALRanges
	index   int    // entry index within section
	path    string // path of the current file, once known
}

// fail wraps err with the parser's position.
func (p *parser) fail(err error) error {
	off := p.dec.InputOffset()
	var se *json.SyntaxError
	if errors.As(err, &se) {
		off = se.Offset
	}
	switch {
	case p.section == "":
		return fmt.Errorf("manifest: %w (near byte %d)", err, off)
	case p.path != "":
		return fmt.Errorf("manifest: %s[%d] (%s): %w (near byte %d)", p.section, p.index, quote(p.path), err, off)
	default:
		return fmt.Errorf("manifest: %s[%d]: %w (near byte %d)", p.section, p.index, err, off)
	}
}

func (p *parser) failf(format string, args ...any) error {
	return p.fail(fmt.Errorf(format, args...))
}

func (p *parser) token() (json.Token, error) {
	t, err := p.dec.Token()
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		return nil, p.fail(err)
	}
	return t, nil
}

func (p *parser) expect(d json.Delim) error {
	t, err := p.token()
	if err != nil {
		return err
	}
	if t != d {
		return p.failf("expected %q, found %s", d, describe(t))
	}
	return nil
}

// key reads an object key; the decoder guarantees keys are strings.
func (p *parser) key() (string, error) {
	t, err := p.token()
	if err != nil {
		return "", err
	}
	k, ok := t.(string)
	if !ok {
		return "", p.failf("expected a field name, found %s", describe(t))
	}
	return k, nil
}

func (p *parser) str(field string) (string, error) {
	t, err := p.token()
	if err != nil {
		return "", err
	}
	s, ok := t.(string)
	if !ok {
		return "", p.failf("%s must be a string, found %s", field, describe(t))
	}
	return s, nil
}

func (p *parser) number(field string) (string, error) {
	t, err := p.token()
	if err != nil {
		return "", err
	}
	n, ok := t.(json.Number)
	if !ok {
		return "", p.failf("%s must be a number, found %s", field, describe(t))
	}
	return string(n), nil
}

// quote is strconv.Quote of at most the first 100 bytes of s, so that a
// hostile manifest cannot make error messages huge.
func quote(s string) string {
	const limit = 100
	if len(s) <= limit {
		return strconv.Quote(s)
	}
	return fmt.Sprintf("%s... (%d bytes)", strconv.Quote(s[:limit]), len(s))
}

// describe names a JSON token for error messages.
func describe(t json.Token) string {
	switch v := t.(type) {
	case json.Delim:
		return strconv.Quote(v.String())
	case string:
		return "string " + quote(v)
	case json.Number:
		return "number " + string(v)
	case bool:
		return strconv.FormatBool(v)
	case nil:
		return "null"
	}
	return fmt.Sprintf("%v", t)
}

// document parses the top-level object and returns the manifest and its
// Manifest-Checksum value (verified by the caller).
func (p *parser) document() (*Manifest, string, error) {
	if err := p.expect('{'); err != nil {
		return nil, "", err
	}
	m := &Manifest{}
	if !p.dec.More() {
		return nil, "", p.failf("manifest is an empty object")
	}
	k, err := p.key()
	if err != nil {
		return nil, "", err
	}
	if k != keyVersion {
		return nil, "", p.failf("first field must be %q, found %s", keyVersion, quote(k))
	}
	v, err := p.number(keyVersion)
	if err != nil {
		return nil, "", err
	}
	switch v {
	case "1":
		m.Version = 1
	case "2":
		m.Version = 2
	default:
		return nil, "", p.failf("unsupported manifest version %s (want 1 or 2)", v)
	}

	var (
		haveSysID, haveFiles, haveWAL, haveSum bool
		sum                                    string
	)
	for p.dec.More() {
		k, err := p.key()
		if err != nil {
			return nil, "", err
		}
		if haveSum {
			return nil, "", p.failf("field %s after %q, which must be last", quote(k), keyChecksum)
		}
		dup := false
		switch k {
		case keySystemID:
			dup, haveSysID = haveSysID, true
			if dup {
				break
			}
			if m.Version == 1 {
				return nil, "", p.failf("%s in a version 1 manifest", keySystemID)
			}
			s, err := p.number(keySystemID)
			if err != nil {
				return nil, "", err
			}
			if m.SystemIdentifier, err = strconv.ParseUint(s, 10, 64); err != nil {
				return nil, "", p.fail(fmt.Errorf("%s: %w", keySystemID, err))
			}
		case keyFiles:
			dup, haveFiles = haveFiles, true
			if !dup {
				if m.Files, err = p.files(); err != nil {
					return nil, "", err
				}
			}
		case keyWALRanges:
			dup, haveWAL = haveWAL, true
			if !dup {
				if m.WALRanges, err = p.walRanges(); err != nil {
					return nil, "", err
				}
			}
		case keyChecksum:
			haveSum = true
			if sum, err = p.str(keyChecksum); err != nil {
				return nil, "", err
			}
		case keyVersion:
			dup = true
		default:
			return nil, "", p.failf("unknown top-level field %s", quote(k))
		}
		if dup {
			return nil, "", p.failf("duplicate field %q", k)
		}
	}
	if err := p.expect('}'); err != nil {
		return nil, "", err
	}
	if t, err := p.dec.Token(); err != io.EOF {
		if err == nil {
			err = fmt.Errorf("found %s", describe(t))
		}
		return nil, "", p.fail(fmt.Errorf("trailing data after the manifest object: %w", err))
	}
	switch {
	case m.Version == 2 && !haveSysID:
		return nil, "", p.failf("version 2 manifest has no %q", keySystemID)
	case !haveFiles:
		return nil, "", p.failf("no %q", keyFiles)
	case !haveWAL:
		return nil, "", p.failf("no %q", keyWALRanges)
	case len(m.WALRanges) == 0:
		return nil, "", p.failf("%q is empty", keyWALRanges)
	case !haveSum:
		return nil, "", p.failf("no %q", keyChecksum)
	}
	return m, sum, nil
}

// rawFile is one "Files" entry as encoding/json decodes it. Pointers tell
// absent (or null) fields from empty ones; Size is an int64 so that only a
// JSON integer fits.
type rawFile struct {
	Path         *string `json:"Path"`
	EncodedPath  *string `json:"Encoded-Path"`
	Size         *int64  `json:"Size"`
	LastModified *string `json:"Last-Modified"`
	Algorithm    *string `json:"Checksum-Algorithm"`
	Checksum     *string `json:"Checksum"`
}

// rawWALRange is one "WAL-Ranges" entry as encoding/json decodes it.
type rawWALRange struct {
	Timeline *uint32 `json:"Timeline"`
	Start    *string `json:"Start-LSN"`
	End      *string `json:"End-LSN"`
}

// element decodes the next array element into v, which must be a pointer
// to a struct; unknown fields are errors.
func (p *parser) element(v any) error {
	if err := p.dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			if te.Field == "" {
				return p.failf("expected an object, found %s", te.Value)
			}
			return p.failf("%s must be a JSON %s, found %s", te.Field, jsonKind(te.Type.String()), te.Value)
		}
		return p.fail(err)
	}
	return nil
}

// jsonKind names the JSON value a rawFile or rawWALRange field takes.
func jsonKind(goType string) string {
	switch goType {
	case "int64":
		return "integer"
	case "uint32":
		return "integer from 1 to 4294967295"
	case "string":
		return "string"
	}
	return goType
}

// files parses the "Files" array, one entry at a time so that only the
// compact File values are kept.
func (p *parser) files() ([]File, error) {
	if err := p.expect('['); err != nil {
		return nil, err
	}
	var files []File
	seen := p.seen
	if seen == nil {
		set := make(map[string]struct{})
		seen = func(path string) bool {
			_, dup := set[path]
			set[path] = struct{}{}
			return dup
		}
	}
	p.section = keyFiles
	for p.index = 0; p.dec.More(); p.index++ {
		p.path = ""
		var raw rawFile
		if err := p.element(&raw); err != nil {
			return nil, err
		}
		f, err := p.file(&raw)
		if err != nil {
			return nil, err
		}
		if seen(f.Path) {
			return nil, p.failf("duplicate path")
		}
		if p.onFile != nil {
			p.cur = f
			p.onFile(&p.cur)
			continue
		}
		files = append(files, f)
	}
	p.section, p.path = "", ""
	if err := p.expect(']'); err != nil {
		return nil, err
	}
	return files, nil
}

// file checks one "Files" entry, following json_manifest_finalize_file:
// exactly one of Path and Encoded-Path, a Size, and a Checksum only with a
// Checksum-Algorithm. Last-Modified is ignored, as pg_verifybackup ignores
// it: it is the primary's mtime in GMT and says nothing about the bytes.
func (p *parser) file(raw *rawFile) (File, error) {
	var f File
	switch {
	case raw.Path != nil && raw.EncodedPath != nil:
		return f, p.failf("both Path and Encoded-Path")
	case raw.Path != nil:
		f.Path = *raw.Path
	case raw.EncodedPath != nil:
		path, err := decodeEncodedPath(*raw.EncodedPath)
		if err != nil {
			return f, p.fail(err)
		}
		f.Path = path
	default:
		return f, p.failf("no Path or Encoded-Path")
	}
	p.path = f.Path
	if err := checkPath(f.Path); err != nil {
		return f, p.fail(err)
	}

	if raw.Size == nil {
		return f, p.failf("no Size")
	}
	if *raw.Size < 0 {
		return f, p.failf("negative Size %d", *raw.Size)
	}
	f.Size = *raw.Size

	if raw.Algorithm == nil {
		if raw.Checksum != nil {
			return f, p.failf("Checksum without Checksum-Algorithm")
		}
		return f, nil
	}
	var err error
	if f.Algorithm, err = ParseAlgorithm(*raw.Algorithm); err != nil {
		return f, p.fail(err)
	}
	if f.Algorithm == None {
		if raw.Checksum != nil {
			return f, p.failf("Checksum with Checksum-Algorithm NONE")
		}
		return f, nil
	}
	if raw.Checksum == nil {
		return f, p.failf("Checksum-Algorithm %s without Checksum", f.Algorithm)
	}
	sum := *raw.Checksum
	if f.Checksum, err = hex.DecodeString(sum); err != nil {
		return f, p.fail(fmt.Errorf("Checksum %s is not hex: %w", quote(sum), err))
	}
	if len(f.Checksum) != f.Algorithm.Size() {
		return f, p.failf("Checksum %s is %d bytes, %s has %d", quote(sum), len(f.Checksum), f.Algorithm, f.Algorithm.Size())
	}
	return f, nil
}

// walRanges parses the "WAL-Ranges" array. The server writes one range per
// timeline the backup spans, newest first, with LSNs in "%X/%X" form.
func (p *parser) walRanges() ([]WALRange, error) {
	if err := p.expect('['); err != nil {
		return nil, err
	}
	var ranges []WALRange
	p.section = keyWALRanges
	for p.index = 0; p.dec.More(); p.index++ {
		var raw rawWALRange
		if err := p.element(&raw); err != nil {
			return nil, err
		}
		r, err := p.walRange(&raw)
		if err != nil {
			return nil, err
		}
		ranges = append(ranges, r)
	}
	p.section = ""
	if err := p.expect(']'); err != nil {
		return nil, err
	}
	return ranges, nil
}

// walRange checks one "WAL-Ranges" entry, following
// json_manifest_finalize_wal_range: all three fields are required.
func (p *parser) walRange(raw *rawWALRange) (WALRange, error) {
	var r WALRange
	switch {
	case raw.Timeline == nil:
		return r, p.failf("no Timeline")
	case raw.Start == nil:
		return r, p.failf("no Start-LSN")
	case raw.End == nil:
		return r, p.failf("no End-LSN")
	case *raw.Timeline == 0:
		return r, p.failf("Timeline is 0")
	}
	r.Timeline = *raw.Timeline
	var err error
	if r.Start, err = wal.ParseLSN(*raw.Start); err != nil {
		return r, p.fail(fmt.Errorf("Start-LSN: %w", err))
	}
	if r.End, err = wal.ParseLSN(*raw.End); err != nil {
		return r, p.fail(fmt.Errorf("End-LSN: %w", err))
	}
	if r.End < r.Start {
		return r, p.failf("End-LSN %s is before Start-LSN %s", r.End, r.Start)
	}
	return r, nil
}

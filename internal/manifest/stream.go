package manifest

import (
	"bytes"
	"crypto/sha256"
	"encoding"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"unicode/utf8"
)

// ParseReader is Parse over a stream: the manifest is read once, through a
// bounded buffer, while its UTF-8 is validated and its Manifest-Checksum
// computed, so memory holds only the decoded Manifest, not the text. It
// accepts and rejects exactly what Parse does. Like Parse, it does not limit
// how much it reads; the caller should (io.LimitReader, or a bounded file).
func ParseReader(r io.Reader) (*Manifest, error) {
	m, err := parseStream(r)
	if err != nil {
		return nil, &FormatError{Err: err}
	}
	return m, nil
}

func parseStream(r io.Reader) (*Manifest, error) {
	return parseStreamFiles(r, nil, nil)
}

// parseStreamFiles is parseStream handing each file to onFile, when set,
// instead of keeping it; seen, when set, tells duplicate paths (parser.seen).
func parseStreamFiles(r io.Reader, onFile func(*File), seen func(string) bool) (*Manifest, error) {
	cr := newCheckReader(r)
	p := parser{dec: newDecoder(cr), onFile: onFile, seen: seen}
	m, sum, perr := p.document()
	// Parse checks UTF-8 before anything else; read the rest so that an
	// invalid byte after a syntax error is still what is reported.
	if _, err := io.Copy(io.Discard, cr); err != nil && cr.badUTF8 < 0 {
		return nil, fmt.Errorf("manifest: read: %w", err)
	}
	if cr.badUTF8 >= 0 {
		return nil, fmt.Errorf("manifest: invalid UTF-8 near byte %d", cr.badUTF8)
	}
	if cr.readErr != nil {
		return nil, fmt.Errorf("manifest: read: %w", cr.readErr)
	}
	if perr != nil {
		return nil, perr
	}
	if err := cr.verify(sum); err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	return m, nil
}

// errBadUTF8 stops the decoder at the first invalid byte; parseStream
// reports the offset instead.
var errBadUTF8 = errors.New("invalid UTF-8")

// checkReader passes the manifest through to the decoder while validating
// its UTF-8 and hashing it with SHA-256. At every newline it saves the
// hash's state, so that at the end the hash of everything up to the
// second-to-last newline (what Manifest-Checksum covers) is at hand without
// keeping any of the text; it also keeps the start of the current and the
// last complete line, as verifyManifestChecksum inspects the last line.
type checkReader struct {
	r       io.Reader
	off     int64 // bytes read so far
	carry   []byte
	badUTF8 int64 // offset of the first invalid byte, or -1
	readErr error

	h        hash.Hash
	hashed   int64  // bytes of r written to h
	atNL     []byte // h's state after the last newline
	beforeNL []byte // h's state after the newline before it
	newlines int
	lastByte byte

	line, lastLine []byte // up to len(manifestChecksumKey) bytes of a line, leading " \t\r" dropped
}

func newCheckReader(r io.Reader) *checkReader {
	return &checkReader{r: r, badUTF8: -1, h: sha256.New(), carry: make([]byte, 0, utf8.UTFMax),
		line: make([]byte, 0, len(manifestChecksumKey)), lastLine: make([]byte, 0, len(manifestChecksumKey))}
}

func (c *checkReader) Read(b []byte) (int, error) {
	if c.badUTF8 >= 0 {
		return 0, errBadUTF8
	}
	n, err := c.r.Read(b)
	if err != nil && err != io.EOF {
		c.readErr = err
	}
	if n > 0 {
		c.scan(b[:n], err == io.EOF)
	} else if err == io.EOF && len(c.carry) > 0 {
		c.badUTF8 = c.off - int64(len(c.carry))
	}
	c.off += int64(n)
	if c.badUTF8 >= 0 {
		return 0, errBadUTF8
	}
	return n, err
}

// scan validates, hashes and tracks lines in b, the bytes at c.off.
func (c *checkReader) scan(b []byte, eof bool) {
	c.validate(b, eof)
	start := 0
	for {
		i := bytes.IndexByte(b[start:], '\n')
		if i < 0 {
			break
		}
		nl := start + i
		c.trackLine(b[start:nl])
		c.h.Write(b[start : nl+1])
		c.beforeNL, c.atNL = c.atNL, c.beforeNL
		c.atNL, _ = c.h.(encoding.BinaryAppender).AppendBinary(c.atNL[:0])
		c.newlines++
		c.lastLine, c.line = c.line, c.lastLine[:0]
		start = nl + 1
	}
	c.trackLine(b[start:])
	c.h.Write(b[start:])
	c.hashed += int64(len(b))
	c.lastByte = b[len(b)-1]
}

// trackLine keeps the start of the current line, leading " \t\r" dropped.
func (c *checkReader) trackLine(b []byte) {
	if len(c.line) == 0 {
		b = bytes.TrimLeft(b, " \t\r")
	}
	if room := cap(c.line) - len(c.line); len(b) > room {
		b = b[:room]
	}
	c.line = append(c.line, b...)
}

// validate finds the first invalid UTF-8 byte, carrying an incomplete
// sequence at the end of b over to the next read.
func (c *checkReader) validate(b []byte, eof bool) {
	base := c.off - int64(len(c.carry))
	buf := b
	if len(c.carry) > 0 {
		// Complete the carried rune from the front of b.
		k := min(len(b), utf8.UTFMax-len(c.carry))
		buf = append(c.carry, b[:k]...)
		for i := 0; i < len(c.carry); {
			if !utf8.FullRune(buf[i:]) && !eof && k == len(b) {
				c.carry = append(c.carry[:0], buf[i:]...)
				return
			}
			r, n := utf8.DecodeRune(buf[i:])
			if r == utf8.RuneError && n == 1 {
				c.badUTF8 = base + int64(i)
				return
			}
			i += n
			if i >= len(c.carry) {
				b = b[i-len(c.carry):]
				base += int64(i)
				break
			}
		}
		c.carry = c.carry[:0]
	}
	for i := 0; i < len(b); {
		if b[i] < utf8.RuneSelf {
			i++
			continue
		}
		if !eof && !utf8.FullRune(b[i:]) {
			c.carry = append(c.carry[:0], b[i:]...)
			return
		}
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n == 1 {
			c.badUTF8 = base + int64(i)
			return
		}
		i += n
	}
}

// verify checks the "Manifest-Checksum" value want against what was read. The server (SendBackupManifest) hashes with SHA-256 every byte it
// writes before the "Manifest-Checksum" field, and then writes that field on
// a line of its own, which ends the document:
//
//	"Manifest-Checksum": "<64 hex digits>"}\n
//
// So, as in parse_manifest.c's verify_manifest_checksum, the document must
// end with a newline and have at least two lines, and the hash covers
// everything up to and including the second-to-last newline. This package
// also requires that last line to hold the checksum field and nothing else
// before it, so no other part of the manifest escapes the checksum.
func (c *checkReader) verify(want string) error {
	if c.hashed == 0 || c.lastByte != '\n' {
		return errors.New("last line is not newline-terminated")
	}
	if c.newlines < 2 {
		return errors.New("expected at least 2 lines")
	}
	if !bytes.HasPrefix(c.lastLine, []byte(manifestChecksumKey)) {
		return fmt.Errorf("last line does not start with %s", manifestChecksumKey)
	}
	wantSum, err := hex.DecodeString(want)
	if err != nil || len(wantSum) != sha256.Size {
		return fmt.Errorf("invalid Manifest-Checksum %s: want %d hex digits", quote(want), 2*sha256.Size)
	}
	h := sha256.New()
	if err := h.(encoding.BinaryUnmarshaler).UnmarshalBinary(c.beforeNL); err != nil {
		return fmt.Errorf("restore manifest hash: %w", err)
	}
	got := h.Sum(nil)
	if !bytes.Equal(got, wantSum) {
		return fmt.Errorf("manifest checksum mismatch: Manifest-Checksum is %s, content hashes to %x", want, got)
	}
	return nil
}

package basebackup

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// Message is one decoded CopyData payload of the BASE_BACKUP stream.
type Message interface{ copyStreamMessage() }

// NewArchive ('n') starts an archive: the base directory (TablespacePath "")
// or one tablespace, named like "base.tar" or "16385.tar".
type NewArchive struct {
	Name           string
	TablespacePath string
}

// Data ('d') is a chunk of the current archive, or of the manifest after a
// ManifestStart. Bytes aliases the receive buffer: valid only until the next
// receive.
type Data struct{ Bytes []byte }

// Progress ('p') is the server's cumulative count of archive bytes sent.
type Progress struct{ BytesDone int64 }

// ManifestStart ('m') says every further Data message belongs to the manifest.
type ManifestStart struct{}

func (NewArchive) copyStreamMessage()    {}
func (Data) copyStreamMessage()          {}
func (Progress) copyStreamMessage()      {}
func (ManifestStart) copyStreamMessage() {}

// ProtocolError is a CopyData payload that does not follow the stream protocol.
type ProtocolError struct {
	Tag    byte
	Length int
	Reason string
}

func (e *ProtocolError) Error() string {
	if e.Length == 0 {
		return "base backup stream: empty CopyData message"
	}
	return fmt.Sprintf("base backup stream: CopyData message %q of %d bytes: %s", e.Tag, e.Length, e.Reason)
}

// StreamError is a stream whose messages come in an order or shape the
// protocol does not allow (an archive after the manifest, an unknown backend
// message): a broken or hostile server, never a cut connection.
type StreamError struct{ Reason string }

func (e *StreamError) Error() string { return "base backup stream: " + e.Reason }

// Violation returns a *StreamError.
func Violation(format string, args ...any) error {
	return &StreamError{Reason: fmt.Sprintf(format, args...)}
}

// Decode turns one CopyData payload into a Message. A Data message aliases p.
func Decode(p []byte) (Message, error) {
	if len(p) == 0 {
		return nil, &ProtocolError{}
	}
	c := cursor{tag: p[0], msg: p, rest: p[1:]}
	switch c.tag {
	case 'd':
		return Data{Bytes: c.rest}, nil
	case 'n':
		name, err := c.string()
		if err != nil {
			return nil, err
		}
		path, err := c.string()
		if err != nil {
			return nil, err
		}
		if err := c.end(); err != nil {
			return nil, err
		}
		return NewArchive{Name: name, TablespacePath: path}, nil
	case 'p':
		n, err := c.int64()
		if err != nil {
			return nil, err
		}
		if err := c.end(); err != nil {
			return nil, err
		}
		if n < 0 {
			return nil, c.fail("negative progress count")
		}
		return Progress{BytesDone: n}, nil
	case 'm':
		if err := c.end(); err != nil {
			return nil, err
		}
		return ManifestStart{}, nil
	default:
		return nil, c.fail("unknown message type")
	}
}

// cursor reads the fields of one payload; every error names the tag and length.
type cursor struct {
	tag  byte
	msg  []byte
	rest []byte
}

func (c *cursor) fail(reason string) error {
	return &ProtocolError{Tag: c.tag, Length: len(c.msg), Reason: reason}
}

func (c *cursor) string() (string, error) {
	i := bytes.IndexByte(c.rest, 0)
	if i < 0 {
		return "", c.fail("unterminated string")
	}
	s := string(c.rest[:i])
	c.rest = c.rest[i+1:]
	return s, nil
}

func (c *cursor) int64() (int64, error) {
	if len(c.rest) < 8 {
		return 0, c.fail("too short for an 8-byte integer")
	}
	n := int64(binary.BigEndian.Uint64(c.rest))
	c.rest = c.rest[8:]
	return n, nil
}

func (c *cursor) end() error {
	if len(c.rest) != 0 {
		return c.fail(fmt.Sprintf("%d unexpected trailing bytes", len(c.rest)))
	}
	return nil
}

package tarstream

import (
	"errors"
	"fmt"
)

type parserState uint8

const (
	inHeader parserState = iota
	inContents
	inPadding
	ended
)

// Parser is the raw-bytes end of an archive chain: Write takes arbitrary
// chunks of a tar stream and feeds parsed parts to next.
type Parser struct {
	next      Stage
	state     parserState
	hdr       [blockSize]byte
	hdrLen    int
	zeros     int // zero blocks seen in a row
	member    Member
	remaining int64
	padding   int64
}

// NewParser returns a Parser that feeds next.
func NewParser(next Stage) *Parser { return &Parser{next: next} }

// Write consumes one chunk of the archive.
func (p *Parser) Write(b []byte) (int, error) {
	n := len(b)
	for len(b) > 0 {
		switch p.state {
		case inHeader:
			c := copy(p.hdr[p.hdrLen:], b)
			p.hdrLen += c
			b = b[c:]
			if p.hdrLen < blockSize {
				continue
			}
			p.hdrLen = 0
			if err := p.header(); err != nil {
				return 0, err
			}
		case inContents:
			c := int64(len(b))
			if c > p.remaining {
				c = p.remaining
			}
			if err := p.next.Write(Contents, &p.member, b[:c]); err != nil {
				return 0, err
			}
			p.remaining -= c
			b = b[c:]
			if p.remaining == 0 {
				if err := p.endMember(); err != nil {
					return 0, err
				}
			}
		case inPadding:
			c := int64(len(b))
			if c > p.padding {
				c = p.padding
			}
			p.padding -= c
			b = b[c:]
			if p.padding == 0 {
				p.state = inHeader
			}
		case ended:
			// Only zero padding may follow the end-of-archive blocks.
			for _, c := range b {
				if c != 0 {
					return 0, &FormatError{Err: errors.New("tar archive: data after the end-of-archive marker")}
				}
			}
			b = nil
		}
	}
	return n, nil
}

func (p *Parser) header() error {
	if p.hdr == [blockSize]byte{} {
		p.zeros++
		if p.zeros == 2 {
			p.state = ended
			return p.next.Write(ArchiveEnd, nil, nil)
		}
		return nil
	}
	if p.zeros != 0 {
		return &FormatError{Err: errors.New("tar archive: a single zero block inside the archive")}
	}
	m, err := parseHeader(&p.hdr)
	if err != nil {
		return &FormatError{Err: fmt.Errorf("tar archive: %w", err)}
	}
	p.member = m
	if err := p.next.Write(Header, &p.member, nil); err != nil {
		return err
	}
	p.remaining = m.Size
	if m.Size == 0 {
		return p.endMember()
	}
	p.state = inContents
	return nil
}

func (p *Parser) endMember() error {
	if err := p.next.Write(Trailer, &p.member, nil); err != nil {
		return err
	}
	p.padding = (blockSize - p.member.Size%blockSize) % blockSize
	p.state = inPadding
	if p.padding == 0 {
		p.state = inHeader
	}
	return nil
}

// Close fails if the archive stopped before its end-of-archive marker (a
// truncated stream), then closes the next stage either way.
func (p *Parser) Close() error {
	var err error
	switch {
	case p.state == ended:
	case p.state == inContents:
		err = fmt.Errorf("tar archive truncated inside member %q (%d bytes missing)", p.member.Name, p.remaining)
	default:
		err = errors.New("tar archive truncated: no end-of-archive marker")
	}
	if cerr := p.next.Close(); err == nil {
		err = cerr
	}
	return err
}

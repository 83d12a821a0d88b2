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
	chunk     bytesSource // Write's chunk
}

// NewParser returns a Parser that feeds next.
func NewParser(next Stage) *Parser { return &Parser{next: next} }

// Write consumes one chunk of the archive.
func (p *Parser) Write(b []byte) (int, error) {
	p.chunk.b = b
	if err := p.WriteFrom(&p.chunk); err != nil {
		return 0, err
	}
	return len(b), nil
}

// WriteFrom consumes src whole: headers into the parser's own block,
// contents through the chain (straight into the writer's buffers where every
// stage passes a Source on), padding dropped.
func (p *Parser) WriteFrom(src Source) error {
	for src.Len() > 0 {
		var err error
		switch p.state {
		case inHeader:
			err = p.headerFrom(src)
		case inContents:
			c := int(min(p.remaining, int64(src.Len())))
			if err = WriteFrom(p.next, &p.member, src, c); err != nil {
				return err
			}
			if p.remaining -= int64(c); p.remaining == 0 {
				err = p.endMember()
			}
		case inPadding:
			c := int(min(p.padding, int64(src.Len())))
			if err = Skip(src, c); err != nil {
				return err
			}
			if p.padding -= int64(c); p.padding == 0 {
				p.state = inHeader
			}
		case ended:
			err = p.trailingZeros(src)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (p *Parser) headerFrom(src Source) error {
	c := min(blockSize-p.hdrLen, src.Len())
	if err := src.ReadFull(p.hdr[p.hdrLen : p.hdrLen+c]); err != nil {
		return err
	}
	if p.hdrLen += c; p.hdrLen < blockSize {
		return nil
	}
	p.hdrLen = 0
	return p.header()
}

// trailingZeros reads what follows the end-of-archive blocks: only zero
// padding may.
func (p *Parser) trailingZeros(src Source) error {
	for src.Len() > 0 {
		b, err := src.Next(src.Len())
		if err != nil {
			return err
		}
		for _, c := range b {
			if c != 0 {
				return &FormatError{Err: errors.New("tar archive: data after the end-of-archive marker")}
			}
		}
	}
	return nil
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

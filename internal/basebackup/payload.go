package basebackup

import (
	"errors"
	"fmt"
)

// lendSize bounds what payload.Next lends at a time.
const lendSize = 32 << 10

// payload is the unread rest of one archive CopyData message, n bytes in the
// read-ahead or still on the wire: the tarstream.Source the chain reads.
type payload struct {
	w    *wire
	n    int
	lend []byte // Next's buffer when the read-ahead is empty
}

func (p *payload) Len() int { return p.n }

func (p *payload) ReadFull(dst []byte) error {
	if len(dst) > p.n {
		return errors.New("base backup stream: read past the end of a CopyData message")
	}
	p.n -= len(dst)
	if err := p.w.readFull(dst); err != nil {
		return fmt.Errorf("receive base backup stream: %w", err)
	}
	return nil
}

// Next lends from the read-ahead while it holds bytes, else reads up to
// lendSize into its own buffer.
func (p *payload) Next(n int) ([]byte, error) {
	n = min(n, p.n)
	if w := p.w; w.rp < w.wp {
		b := w.ahead[w.rp : w.rp+min(n, w.wp-w.rp)]
		w.rp += len(b)
		p.n -= len(b)
		return b, nil
	}
	if p.lend == nil {
		p.lend = make([]byte, lendSize)
	}
	b := p.lend[:min(n, lendSize)]
	return b, p.ReadFull(b)
}

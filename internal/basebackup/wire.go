package basebackup

import (
	"encoding/binary"
	"errors"
	"io"
	"os"
	"syscall"

	"github.com/jackc/pgx/v5/pgproto3"
	"golang.org/x/sys/unix"

	"github.com/pg-standby/pg-standby/internal/replconn"
)

// aheadSize is the read-ahead: message headers and small bodies. A read of
// aheadDirect or more into a chain's buffer (a big file's contents, a
// CopyData message at a time) brings only aheadSmall more, as what lands
// here must be copied there again; a smaller one brings up to aheadSize, so
// that a run of small members (tar headers, small files, increments without
// blocks) costs a system call per read-ahead, not one or two per member.
const (
	aheadSize   = 64 << 10
	aheadSmall  = 512
	aheadDirect = 16 << 10
)

// wire frames the backend messages of a connection taken over from pgconn
// (the protocol's 'type, int32 length, body'). Bodies are read on request:
// whole (body) or, for archive data, by a payload the chain reads from.
type wire struct {
	r   io.Reader
	raw syscall.RawConn // the socket, for readv; nil under TLS

	ahead  [aheadSize]byte
	rp, wp int    // ahead[rp:wp] is read and not yet consumed
	copied int64  // bytes readFull took from ahead: a copy the read-ahead's sizing keeps small
	body   []byte // the last whole body, reused: valid until the next message

	// One readv: iov in, n and err out. The function is built once, as a
	// closure built per call would be a heap allocation per read.
	iov   [2][]byte
	n     int
	err   error
	readv func(fd uintptr) bool
}

func newWire(r io.Reader) *wire {
	w := &wire{r: r}
	if sc, ok := r.(syscall.Conn); ok {
		if raw, err := sc.SyscallConn(); err == nil {
			w.raw = raw
		}
	}
	w.readv = func(fd uintptr) bool {
		for {
			w.n, w.err = unix.Readv(int(fd), w.iov[:])
			if w.err != unix.EINTR {
				return w.err != unix.EAGAIN
			}
		}
	}
	return w
}

// header reads the next message's type and body length, bounded by
// replconn.MaxMessageBody as pgconn bounds it.
func (w *wire) header() (byte, int, error) {
	for w.wp-w.rp < 5 {
		if err := w.fill(); err != nil {
			return 0, 0, err
		}
	}
	typ := w.ahead[w.rp]
	n := int64(int32(binary.BigEndian.Uint32(w.ahead[w.rp+1:]))) - 4
	w.rp += 5
	if n < 0 {
		return 0, 0, Violation("message %q with a length of %d, less than the length field itself", typ, n+4)
	}
	if n > replconn.MaxMessageBody {
		return 0, 0, &pgproto3.ExceededMaxBodyLenErr{MaxExpectedBodyLen: replconn.MaxMessageBody, ActualBodyLen: int(n)}
	}
	return typ, int(n), nil
}

// fill reads at least one byte more into the read-ahead.
func (w *wire) fill() error {
	if w.rp == w.wp {
		w.rp, w.wp = 0, 0
	} else if w.wp == len(w.ahead) {
		w.wp = copy(w.ahead[:], w.ahead[w.rp:w.wp])
		w.rp = 0
	}
	n, err := w.r.Read(w.ahead[w.wp:])
	w.wp += n
	if n > 0 {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return err
}

// peek returns the next byte without consuming it.
func (w *wire) peek() (byte, error) {
	if w.rp == w.wp {
		if err := w.fill(); err != nil {
			return 0, err
		}
	}
	return w.ahead[w.rp], nil
}

// wholeBody reads a body of n bytes into w.body.
func (w *wire) wholeBody(n int) ([]byte, error) {
	if cap(w.body) < n {
		w.body = make([]byte, n)
	}
	w.body = w.body[:n]
	return w.body, w.readFull(w.body)
}

// readFull reads len(dst) bytes into dst: first what the read-ahead holds,
// then straight from the connection. The read-ahead's size follows the
// request's, not what a short read left of it: else most of a big file
// read while the sender is the slower side would land there and be copied.
func (w *wire) readFull(dst []byte) error {
	big := len(dst) >= aheadDirect
	c := copy(dst, w.ahead[w.rp:w.wp])
	w.rp += c
	w.copied += int64(c)
	dst = dst[c:]
	for len(dst) > 0 {
		n, err := w.readInto(dst, big)
		dst = dst[n:]
		if n == 0 {
			if err == nil || errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
	}
	return nil
}

// readInto reads into dst while the read-ahead is empty; big says the
// request was aheadDirect or more. On a socket one readv fills dst and,
// past it, the read-ahead (see aheadSize): the next header comes with the
// same system call.
func (w *wire) readInto(dst []byte, big bool) (int, error) {
	if w.raw == nil {
		return w.r.Read(dst)
	}
	w.rp, w.wp = 0, 0
	ahead := w.ahead[:]
	if big {
		ahead = ahead[:aheadSmall]
	}
	w.iov = [2][]byte{dst, ahead}
	err := w.raw.Read(w.readv)
	n := w.n
	if err == nil && w.err != nil {
		err = os.NewSyscallError("readv", w.err)
	}
	w.iov = [2][]byte{}
	if err != nil || n <= 0 {
		return 0, err
	}
	if n > len(dst) {
		w.wp = n - len(dst)
		n = len(dst)
	}
	return n, nil
}

// skip drops n bytes.
func (w *wire) skip(n int) error {
	for n > 0 {
		if w.rp == w.wp {
			if err := w.fill(); err != nil {
				return err
			}
		}
		c := min(n, w.wp-w.rp)
		w.rp += c
		n -= c
	}
	return nil
}

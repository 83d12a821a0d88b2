package directio

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// ioReq is one direct write out on a writer goroutine, and what came of it.
// The writer uses only the file's descriptor and the fields Open set; the
// File's state (direct, padded) changes on run's goroutine, in complete.
type ioReq struct {
	j         job
	unchanged bool // an earlier attempt left the same bytes: not written
	redo      bool // EINVAL: the filesystem refused a direct read or write
	err       error
}

// writer does direct writes until ios is closed, reading back into scratch.
func (q *Queue) writer(scratch []byte) {
	for r := range q.ios {
		r.do(scratch)
		q.ioDone <- r
	}
}

func (r *ioReq) do(scratch []byte) {
	fl, j := r.j.file, r.j
	data := j.buf[:j.n]
	if j.off < fl.oldSize {
		if r.unchanged, r.redo = fl.same(scratch, j.off, data, true); r.unchanged || r.redo {
			return
		}
	}
	padded := j.buf[:roundUp(j.n)]
	clear(padded[j.n:])
	if _, err := fl.f.WriteAt(padded, j.off); err != nil {
		if errors.Is(err, unix.EINVAL) {
			r.redo = true
		} else {
			r.err = fmt.Errorf("write %s: %w", fl.name, bare(err))
		}
	}
}

// complete takes a write back on run's goroutine: counts it, or redoes it
// there (do falls back to buffered writes), and frees its buffer.
func (q *Queue) complete(r *ioReq) {
	j := r.j
	switch {
	case r.err != nil:
		q.fail(r.err)
	case q.Err() != nil:
	case r.redo:
		if err := q.do(j); err != nil {
			q.fail(err)
		}
	case r.unchanged:
		q.cfg.Unchanged.Add(int64(j.n))
	default:
		if j.n != roundUp(j.n) {
			j.file.padded = true
		}
		q.cfg.Written.Add(int64(j.n))
	}
	q.free <- j.buf
}

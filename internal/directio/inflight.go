package directio

import "fmt"

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
	var err error
	if r.redo, err = fl.writeDirect(data, j.buf[:roundUp(j.n)], j.off); err != nil {
		r.err = fmt.Errorf("write %s: %w", fl.name, err)
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
		j.file.wroteDirect(j.n)
		q.cfg.Written.Add(int64(j.n))
	}
	q.free <- j.buf
}

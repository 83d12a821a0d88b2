package directio

import (
	"errors"
	"io/fs"
	"os"

	"golang.org/x/sys/unix"
)

// File is one file being written through a Queue. Its methods are called
// from one goroutine; every File ends with exactly one Finish or Abort.
type File struct {
	q    *Queue
	f    *os.File
	name string // for messages

	// Producer side.
	off int64  // file offset of buf[0]
	buf []byte // nil until the first byte
	n   int

	// Set by Open, then owned by the writing goroutine.
	oldSize int64 // size an earlier attempt left; -1 for a new file
	direct  bool
	padded  bool  // the last direct write went past the end: truncate
	dirty   int64 // buffered bytes written since the last writeback hint
}

// Open starts writing f, which holds oldSize bytes from an earlier attempt
// (-1 if it was just created). name is the path errors show. The Queue owns
// f from now on.
func (q *Queue) Open(f *os.File, name string, oldSize int64) *File {
	return q.OpenSized(f, name, oldSize, -1)
}

// OpenSized is Open for a file that will hold size bytes (-1: unknown). A
// file smaller than Config.DirectMin goes through the page cache: one
// direct write of a small file waits for the device, a buffered one does not.
func (q *Queue) OpenSized(f *os.File, name string, oldSize, size int64) *File {
	fl := &File{q: q, f: f, name: name, oldSize: oldSize}
	// A filesystem without O_DIRECT (tmpfs before Linux 6.6, some FUSE)
	// refuses it here; that file is written through the page cache.
	if !q.cfg.Buffered && (size < 0 || size >= q.cfg.DirectMin) {
		fl.direct = setDirect(f, true) == nil
		if !fl.direct {
			q.refuse(name)
		}
	}
	if fl.direct && size > oldSize {
		reserve(f, size)
	}
	return fl
}

// Write appends p. It blocks while every buffer is in flight.
func (fl *File) Write(p []byte) error {
	if err := fl.q.usable(); err != nil {
		return err
	}
	for len(p) > 0 {
		if fl.buf == nil {
			fl.buf = <-fl.q.free
		}
		c := copy(fl.buf[fl.n:], p)
		fl.n += c
		p = p[c:]
		if fl.n == len(fl.buf) {
			fl.flush()
		}
	}
	return nil
}

// Filler puts bytes into a slice it is given, all of it: a network message
// read straight into the write buffers (tarstream.Source does).
type Filler interface{ ReadFull(dst []byte) error }

// Fill appends the next n bytes of src, read straight into the write
// buffers: the one copy from the network, where Write would add a second.
func (fl *File) Fill(src Filler, n int) error {
	if err := fl.q.usable(); err != nil {
		return err
	}
	for n > 0 {
		if fl.buf == nil {
			fl.buf = <-fl.q.free
		}
		c := min(n, len(fl.buf)-fl.n)
		if err := src.ReadFull(fl.buf[fl.n : fl.n+c]); err != nil {
			return err
		}
		fl.n += c
		n -= c
		if fl.n == len(fl.buf) {
			fl.flush()
		}
	}
	return nil
}

func (fl *File) flush() {
	if fl.n == 0 {
		return
	}
	fl.q.jobs <- job{file: fl, off: fl.off, buf: fl.buf, n: fl.n}
	fl.off += int64(fl.n)
	fl.buf, fl.n = nil, 0
}

// Finish queues the rest of the file, its truncation to size and its hand-off
// to Config.Finished. It returns the queue's first error so far.
func (fl *File) Finish(size int64) error {
	fl.flush()
	fl.q.jobs <- job{file: fl, end: true, keep: true, size: size, sent: fl.off}
	return fl.q.Err()
}

// Abort closes the file once its queued writes are done, without syncing it.
func (fl *File) Abort() {
	if fl.buf != nil {
		fl.q.free <- fl.buf
		fl.buf, fl.n = nil, 0
	}
	fl.q.jobs <- job{file: fl, end: true}
}

// writeAt writes data at off; with O_DIRECT it writes padded, which is data
// followed by zeros up to the next Align boundary, and the file is truncated
// at the end. EINVAL from a direct write (a filesystem that took O_DIRECT but
// cannot honour it) switches the file to buffered writes.
func (fl *File) writeAt(data, padded []byte, off int64) error {
	if fl.direct {
		einval, err := fl.writeDirect(data, padded, off)
		if err != nil {
			return err
		}
		if !einval {
			fl.wroteDirect(len(data))
			return nil
		}
		if err := fl.buffered(); err != nil {
			return err
		}
	}
	if _, err := fl.f.WriteAt(data, off); err != nil {
		return bare(err)
	}
	fl.dirty += int64(len(data))
	if fl.dirty >= flushAfter {
		end := off + int64(len(data))
		startWriteback(fl.f, end-fl.dirty, fl.dirty)
		fl.dirty = 0
	}
	return nil
}

// writeDirect writes padded, data followed by zeros up to the next Align
// boundary, at off with O_DIRECT; einval says the filesystem refused it.
// It touches only the descriptor: writer goroutines call it too.
func (fl *File) writeDirect(data, padded []byte, off int64) (einval bool, err error) {
	clear(padded[len(data):])
	if _, err := fl.f.WriteAt(padded, off); err != nil {
		if errors.Is(err, unix.EINVAL) {
			return true, nil
		}
		return false, bare(err)
	}
	return false, nil
}

// wroteDirect notes a direct write of n bytes of data: a short one, the
// file's last, went past the end, so Finish truncates.
func (fl *File) wroteDirect(n int) {
	if n != roundUp(n) {
		fl.padded = true
	}
}

// buffered switches the file to page-cache writes.
func (fl *File) buffered() error {
	if err := setDirect(fl.f, false); err != nil {
		return err
	}
	fl.direct = false
	fl.q.refuse(fl.name)
	return nil
}

// bare drops the *fs.PathError around err: messages name the path already.
func bare(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

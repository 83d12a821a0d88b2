package directio

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// Config sizes a Queue and says where finished files go.
type Config struct {
	// BufferSize is the size of one write (rounded up to Align); 1 MiB when
	// zero: smaller direct writes leave the device idle between requests.
	BufferSize int
	// Buffers bounds the bytes in flight; 4 when zero.
	Buffers int
	// Inflight is how many direct writes may wait for the device at once;
	// DefaultInflight when zero, at most Buffers-1 (one fills meanwhile).
	Inflight int
	// Buffered turns direct I/O off: every write goes through the page cache.
	Buffered bool
	// DirectMin is the size from which OpenSized writes a file with O_DIRECT;
	// DefaultDirectMin when zero, negative for every file.
	DirectMin int64
	// Finished takes each completed file (fsync and close it) with its size
	// on disk, exact (durable.Syncer.Sync): it is called from the writing
	// goroutine in the order the files were finished.
	Finished func(f *os.File, size int64)
	// Written and Unchanged count bytes written and bytes found identical.
	Written, Unchanged *atomic.Int64
}

// DefaultInflight is two direct writes at once: with one, a device with
// some latency per request idles between a write's completion and the next
// one's submission (2 GiB in 1 MiB writes into one file on a loop-mounted
// ext4 here: 1.69-1.79 s one at a time, 1.33-1.36 s two, 1.29-1.31 s four;
// on the host's own disk 1.4 GB/s either way).
const DefaultInflight = 2

// Queue runs the writes of many files, in order, on one goroutine; direct
// writes of a file overlap up to Config.Inflight on writer goroutines.
type Queue struct {
	cfg     Config
	jobs    chan job
	mem     []byte      // all buffers, one mapping
	free    chan []byte // buffers not in flight
	scratch []byte      // for reading back what an earlier attempt wrote
	ios     chan *ioReq // direct writes, to the writer goroutines
	ioDone  chan *ioReq // and back, done
	done    chan struct{}
	once    sync.Once
	stopped atomic.Bool // err or closed is set: Files check this on every Write

	mu           sync.Mutex
	err          error
	closed       bool   // set by Close; Files refuse to write
	refused      int    // files a filesystem would not write with O_DIRECT
	firstRefused string // the first of them
}

// job is one write, or the end of a file when buf is nil.
type job struct {
	file *File
	off  int64
	buf  []byte // whole buffer; the first n bytes are data
	n    int
	end  bool  // last job of the file
	keep bool  // with end: fsync and hand on, else just close
	size int64 // with keep: the file's final size
	sent int64 // with end: the bytes the producer wrote
}

// NewQueue maps the buffers and starts the writing goroutine; Close stops it.
func NewQueue(cfg Config) (*Queue, error) {
	if cfg.BufferSize <= 0 {
		cfg.BufferSize = 1 << 20
	}
	cfg.BufferSize = roundUp(cfg.BufferSize)
	if cfg.Buffers <= 0 {
		cfg.Buffers = 4
	}
	if cfg.Inflight <= 0 {
		cfg.Inflight = DefaultInflight
	}
	cfg.Inflight = max(1, min(cfg.Inflight, cfg.Buffers-1))
	if cfg.DirectMin == 0 {
		cfg.DirectMin = DefaultDirectMin
	}
	if cfg.Written == nil {
		cfg.Written = new(atomic.Int64)
	}
	if cfg.Unchanged == nil {
		cfg.Unchanged = new(atomic.Int64)
	}
	// Pages are only resident once touched: a small backup uses little. Each
	// writer goroutine, and run's, has a scratch buffer for read-backs.
	n := cfg.Buffers + 1 + cfg.Inflight
	mem, err := alignedBuffer(n * cfg.BufferSize)
	if err != nil {
		return nil, fmt.Errorf("allocate %d write buffers of %d bytes: %w", n, cfg.BufferSize, err)
	}
	buf := func(i int) []byte { return mem[i*cfg.BufferSize : (i+1)*cfg.BufferSize : (i+1)*cfg.BufferSize] }
	q := &Queue{cfg: cfg, mem: mem, jobs: make(chan job, 64), free: make(chan []byte, cfg.Buffers), done: make(chan struct{}),
		ios: make(chan *ioReq, cfg.Inflight), ioDone: make(chan *ioReq, cfg.Inflight)}
	for i := range cfg.Buffers {
		q.free <- buf(i)
	}
	q.scratch = buf(cfg.Buffers)
	for i := range cfg.Inflight {
		go q.writer(buf(cfg.Buffers + 1 + i))
	}
	go q.run()
	return q, nil
}

// Err is the first write error so far, so a producer can stop early.
func (q *Queue) Err() error {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.err
}

// Close waits until every queued job is done, unmaps the buffers and returns
// the first error. Every File must have been finished or aborted; more calls
// are no-ops.
func (q *Queue) Close() error {
	q.once.Do(func() {
		close(q.jobs)
		<-q.done
		q.mu.Lock()
		q.closed = true
		q.mu.Unlock()
		q.stopped.Store(true)
		unix.Munmap(q.mem)
	})
	return q.Err()
}

// Refused reports how many files were written through the page cache because
// their filesystem refused O_DIRECT, and the first one's name.
func (q *Queue) Refused() (int, string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.refused, q.firstRefused
}

func (q *Queue) refuse(name string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.refused == 0 {
		q.firstRefused = name
	}
	q.refused++
}

// usable is nil while Files may write: no error so far and not closed.
func (q *Queue) usable() error {
	if !q.stopped.Load() {
		return nil
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.err == nil && q.closed {
		return errors.New("write after the queue was closed")
	}
	return q.err
}

// run takes the jobs in order. A direct write goes to a writer goroutine
// while up to Inflight are out; any other job first waits for them all, so
// a file ends, and is handed on, only after all its writes.
func (q *Queue) run() {
	defer close(q.done)
	defer close(q.ios)
	out := 0
	for j := range q.jobs {
		if j.buf != nil && j.file.direct && q.Err() == nil {
			if out == q.cfg.Inflight {
				q.complete(<-q.ioDone)
				out--
			}
			q.ios <- &ioReq{j: j}
			out++
			continue
		}
		for ; out > 0; out-- {
			q.complete(<-q.ioDone)
		}
		q.runJob(j)
	}
	for ; out > 0; out-- {
		q.complete(<-q.ioDone)
	}
}

// runJob does one job on run's goroutine and frees its buffer.
func (q *Queue) runJob(j job) {
	if q.Err() == nil {
		if err := q.do(j); err != nil {
			q.fail(err)
		}
	}
	if j.end && (!j.keep || q.Err() != nil) {
		j.file.f.Close() // not synced: a failed or abandoned copy
	}
	if j.buf != nil {
		q.free <- j.buf
	}
}

func (q *Queue) fail(err error) {
	q.mu.Lock()
	if q.err == nil {
		q.err = err
	}
	q.mu.Unlock()
	q.stopped.Store(true)
}

func (q *Queue) do(j job) error {
	fl := j.file
	if j.end {
		if !j.keep {
			return nil
		}
		// The size on disk, without an fstat: the truncation's, else what the
		// writes reached (a write skipped as unchanged lay inside oldSize).
		onDisk := max(fl.oldSize, j.sent)
		if fl.padded || fl.oldSize > j.size {
			if err := fl.f.Truncate(j.size); err != nil {
				return fmt.Errorf("truncate %s: %w", fl.name, err)
			}
			onDisk = j.size
		}
		q.cfg.Finished(fl.f, onDisk)
		return nil
	}
	data := j.buf[:j.n]
	if j.off < fl.oldSize {
		same, einval := fl.same(q.scratch, j.off, data, fl.direct)
		if einval {
			// A filesystem that took O_DIRECT but cannot read with it.
			if fl.buffered() == nil {
				same, _ = fl.same(q.scratch, j.off, data, false)
			}
		}
		if same {
			q.cfg.Unchanged.Add(int64(j.n))
			return nil
		}
	}
	if err := fl.writeAt(data, j.buf[:roundUp(j.n)], j.off); err != nil {
		return fmt.Errorf("write %s: %w", fl.name, err)
	}
	q.cfg.Written.Add(int64(j.n))
	return nil
}

// same reports whether the file already holds data at off, read into
// scratch (with O_DIRECT when direct). Any read error just means "write
// it"; einval says a direct read was refused.
func (fl *File) same(scratch []byte, off int64, data []byte, direct bool) (same, einval bool) {
	if off+int64(len(data)) > fl.oldSize {
		return false, false
	}
	buf := scratch[:len(data)]
	if direct {
		buf = scratch[:roundUp(len(data))]
	}
	n, err := fl.f.ReadAt(buf, off)
	if errors.Is(err, unix.EINVAL) && direct {
		return false, true
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return false, false
	}
	return n >= len(data) && bytes.Equal(scratch[:len(data)], data), false
}

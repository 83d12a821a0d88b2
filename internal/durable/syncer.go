package durable

import (
	"fmt"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Syncer fsyncs and closes files handed to it, off the write path, late and
// in batches: a file is held open until Window files are waiting, then the
// whole batch goes to the workers. On a journalling filesystem the first
// fsync of a batch commits the transaction that created all of its files,
// and the rest find their metadata already on disk; fsyncing each file as
// it finishes costs one journal commit per file. Open files are bounded by
// about two windows, so a slow disk slows the stream instead of piling up
// descriptors.
type Syncer struct {
	files   chan item
	window  int
	pending []item // Sync's batch, not yet handed to the workers
	wg      sync.WaitGroup
	fs      *os.File // with UseSyncfs: Wait syncs this filesystem once
	once    sync.Once
	mu      sync.Mutex
	err     error

	durable func([]Synced) error // see OnDurable
	written func([]Synced) error // see OnWritten
	lost    func([]Synced) error // see OnWritten
	minSize int64                // see OnWritten
	maxAge  time.Duration        // with OnDurable: a batch older than this goes, Sync or not
	firstAt time.Time            // when the oldest file of pending came
	bytes   int64                // with OnDurable: the size of pending's files
	pmu     sync.Mutex           // pending and firstAt: Sync's goroutine and the age timer
	age     *time.Timer          // flushes pending once it waited maxAge
	closed  bool                 // Wait has handed on the last batch
	batches chan *batch          // to the completer, in order
	doneC   chan struct{}        // the completer ended
}

// Synced is a file the Syncer made durable: its name and its size then.
type Synced struct {
	Name string
	Size int64
}

// batch is one window's files; done fills as the workers finish them.
type batch struct {
	wg   sync.WaitGroup
	mu   sync.Mutex
	done []Synced
	all  []Synced // with OnWritten: what it told written
}

type item struct {
	f    *os.File
	size int64  // as Sync was told: f's final size
	b    *batch // nil without OnDurable
}

// DefaultWindow is the batch size NewSyncer uses for a window of 0.
const DefaultWindow = 1024

// MaxBatchAge bounds how long a file waits in a batch when completions are
// reported (OnDurable): what a SIGKILL can lose of a trickle of small files.
const MaxBatchAge = 250 * time.Millisecond

// MaxBatchBytes bounds what a batch holds when completions are reported
// (OnDurable): what a SIGKILL can lose of a stream of large files, which
// would otherwise wait MaxBatchAge (at 500 MB/s, 125 MB). So a file of
// 8 MiB or more is recorded on its own, at the cost of one more fsync and
// journal append than a shared batch; the workers and the completer do them
// off the stream.
const MaxBatchBytes = 8 << 20

// NewSyncer starts workers goroutines that fsync batches of window files
// (DefaultWindow when 0; 1 syncs each file at once); Wait must be called to
// stop them.
func NewSyncer(workers, window int) *Syncer {
	if window <= 0 {
		window = DefaultWindow
	}
	s := &Syncer{files: make(chan item, window), window: window}
	for range workers {
		s.wg.Add(1)
		go s.work()
	}
	return s
}

// UseSyncfs makes the workers only close files, and Wait flush dir's whole
// filesystem with one syncfs(2): for a filesystem that SoleOnFS says holds
// nothing but this tree. Call it before the first Sync; dir is opened now,
// so syncfs reports every writeback error from here on.
func (s *Syncer) UseSyncfs(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open %s for syncfs: %w", dir, err)
	}
	s.fs = f
	return nil
}

// OnDurable makes the Syncer call fn, in order and from one goroutine, with
// each batch once every file of it is durable (a file whose fsync failed is
// left out). With syncfs, each batch then costs one syncfs of the
// filesystem, so that completions come during the copy and not only at the
// end. Call it before the first Sync; an error from fn fails the Syncer.
//
// A batch also goes once its oldest file waited MaxBatchAge, or its files
// hold MaxBatchBytes: with large files a window of 1024 would leave
// terabytes unrecorded at a SIGKILL.
func (s *Syncer) OnDurable(fn func([]Synced) error) {
	s.durable = fn
	s.maxAge = MaxBatchAge
	s.batches = make(chan *batch, 2)
	s.doneC = make(chan struct{})
	go s.complete()
}

// OnWritten makes the Syncer call written with each batch's files of at
// least min bytes as it leaves for its fsync: files whose every write
// returned, not yet durable (a batch with none is not reported). It runs on
// Sync's goroutine (or the age timer's), before OnDurable's call for the
// same batch; an error from it fails the Syncer. Call it before the first
// Sync, after OnDurable. A batch that is then not reported durable (an
// fsync or syncfs failed, here or in an earlier batch) goes to lost, from
// the completer's goroutine: a writeback error is reported once, so a
// later fsync of those files would not tell.
func (s *Syncer) OnWritten(min int64, written, lost func([]Synced) error) {
	s.minSize, s.written, s.lost = min, written, lost
}

// complete waits for each batch in turn and reports it durable.
func (s *Syncer) complete() {
	defer close(s.doneC)
	for b := range s.batches {
		b.wg.Wait()
		if s.fs != nil && len(b.done) > 0 {
			if err := syncFS(s.fs); err != nil {
				s.fail(fmt.Errorf("syncfs %s: %w", s.fs.Name(), err))
			}
		}
		if s.Err() == nil && len(b.done) > 0 {
			if err := s.durable(b.done); err != nil {
				s.fail(err)
			}
		}
		if s.lost != nil && s.Err() != nil && len(b.all) > 0 {
			if err := s.lost(b.all); err != nil {
				s.fail(err)
			}
		}
	}
}

func (s *Syncer) work() {
	defer s.wg.Done()
	for it := range s.files {
		f := it.f
		var err error
		if s.fs == nil {
			err = f.Sync()
		}
		if err != nil {
			err = fmt.Errorf("fsync %s: %w", f.Name(), err)
		}
		if err == nil && it.b != nil {
			it.b.add(f.Name(), it.size)
		}
		if cerr := f.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("close %s: %w", f.Name(), cerr)
		}
		if err != nil {
			s.fail(err)
		}
		if it.b != nil {
			it.b.wg.Done()
		}
	}
}

// add records a file as synced with the size its writer gave Sync.
func (b *batch) add(name string, size int64) {
	b.mu.Lock()
	b.done = append(b.done, Synced{Name: name, Size: size})
	b.mu.Unlock()
}

// startWriteback asks the kernel to start writing f's dirty pages without
// waiting (sync_file_range SYNC_FILE_RANGE_WRITE). Only a hint: durability
// comes from the fsync, so errors are ignored.
func startWriteback(f *os.File) {
	if rc, err := f.SyscallConn(); err == nil {
		rc.Control(func(fd uintptr) {
			unix.SyncFileRange(int(fd), 0, 0, unix.SYNC_FILE_RANGE_WRITE)
		})
	}
}

func (s *Syncer) fail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err == nil {
		s.err = err
	}
}

// Sync takes ownership of f: it is fsynced and closed in the background, by
// Wait at the latest. Calls come from one goroutine. size is f's final size,
// which the writer knows: it bounds the batch (MaxBatchBytes) and is what
// OnDurable reports, so neither costs an fstat per file. A size the caller
// is unsure of must come from its own fstat: the resume journal trusts it.
//
// Without syncfs the fsync comes late, in a batch, so f's writeback starts
// now; the fsyncs then find little left to write (60,964 small files on a
// non-sole ext4: 13-28 s with the hint, 34-58 s without). With syncfs the
// hint is skipped: it ran the writeback on the caller's goroutine, and the
// kernel's flusher and the one syncfs do it off the stream (the same files
// alone on their ext4: 1.0 s less system CPU, 3 of 3 runs as fast or faster).
func (s *Syncer) Sync(f *os.File, size int64) {
	if s.fs == nil {
		startWriteback(f)
	}
	s.pmu.Lock()
	defer s.pmu.Unlock()
	s.add(f, size)
	s.flushIfDue()
}

// SyncAll is Sync for files a caller put at risk together (reconstructed
// files unlisted by one journal append): they go in one batch, however
// large, since a kill before they are recorded loses them all anyway.
func (s *Syncer) SyncAll(files []*os.File, sizes []int64) {
	if s.fs == nil {
		for _, f := range files {
			startWriteback(f)
		}
	}
	s.pmu.Lock()
	defer s.pmu.Unlock()
	for i, f := range files {
		s.add(f, sizes[i])
	}
	s.flushIfDue()
}

// add puts f in the pending batch; the first file of a batch starts its age.
func (s *Syncer) add(f *os.File, size int64) {
	if len(s.pending) == 0 && s.maxAge > 0 {
		s.firstAt = time.Now()
		if s.age == nil {
			s.age = time.AfterFunc(s.maxAge, s.flushAged)
		} else {
			s.age.Reset(s.maxAge)
		}
	}
	s.pending = append(s.pending, item{f: f, size: size})
	if s.durable != nil {
		s.bytes += size
	}
}

// flushIfDue hands the batch on once it holds a window, MaxBatchBytes or
// waited MaxBatchAge.
func (s *Syncer) flushIfDue() {
	if len(s.pending) >= s.window || s.bytes >= MaxBatchBytes || (s.maxAge > 0 && time.Since(s.firstAt) >= s.maxAge) {
		s.flush()
	}
}

// flushAged hands on a batch that waited maxAge with no Sync since: the
// stream may be stalled or inside a large file, and a SIGKILL must not lose
// files finished long before.
func (s *Syncer) flushAged() {
	s.pmu.Lock()
	defer s.pmu.Unlock()
	if !s.closed && len(s.pending) > 0 && time.Since(s.firstAt) >= s.maxAge {
		s.flush()
	}
}

// flush hands the batch to the workers; it blocks while the previous batch
// still fills the queue.
func (s *Syncer) flush() {
	var files []Synced
	if s.written != nil {
		for _, it := range s.pending {
			if it.size >= s.minSize {
				files = append(files, Synced{Name: it.f.Name(), Size: it.size})
			}
		}
		if len(files) > 0 {
			if err := s.written(files); err != nil {
				s.fail(err)
			}
		}
	}
	var b *batch
	if s.durable != nil && len(s.pending) > 0 {
		b = &batch{all: files}
		b.wg.Add(len(s.pending))
		s.batches <- b
	}
	for _, it := range s.pending {
		it.b = b
		s.files <- it
	}
	clear(s.pending)
	s.pending = s.pending[:0]
	s.bytes = 0
}

// Err returns the first fsync error so far, so a writer can stop early.
func (s *Syncer) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Wait hands on the last batch, closes the queue, waits for every file, and
// returns the first error. It is safe to call more than once; Sync must not
// run concurrently with it.
func (s *Syncer) Wait() error {
	s.once.Do(func() {
		s.pmu.Lock()
		s.closed = true
		if s.age != nil {
			s.age.Stop()
		}
		s.flush()
		s.pmu.Unlock()
		close(s.files)
		s.wg.Wait()
		if s.batches != nil {
			close(s.batches)
			<-s.doneC
		}
		if s.fs != nil {
			if err := syncFS(s.fs); err != nil {
				s.fail(fmt.Errorf("syncfs %s: %w", s.fs.Name(), err))
			}
			s.fs.Close()
		}
	})
	s.wg.Wait()
	return s.Err()
}

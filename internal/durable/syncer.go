package durable

import (
	"fmt"
	"os"
	"sync"
)

// Syncer fsyncs and closes files handed to it, off the write path. The queue
// is bounded, so a slow disk slows the stream instead of piling up open files.
type Syncer struct {
	files chan *os.File
	wg    sync.WaitGroup
	mu    sync.Mutex
	err   error
	done  bool
}

// NewSyncer starts workers goroutines; Wait must be called to stop them.
func NewSyncer(workers, queue int) *Syncer {
	s := &Syncer{files: make(chan *os.File, queue)}
	for range workers {
		s.wg.Add(1)
		go s.work()
	}
	return s
}

func (s *Syncer) work() {
	defer s.wg.Done()
	for f := range s.files {
		err := f.Sync()
		if err != nil {
			err = fmt.Errorf("fsync %s: %w", f.Name(), err)
		}
		if cerr := f.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("close %s: %w", f.Name(), cerr)
		}
		if err != nil {
			s.mu.Lock()
			if s.err == nil {
				s.err = err
			}
			s.mu.Unlock()
		}
	}
}

// Sync takes ownership of f: it is fsynced and closed in the background.
func (s *Syncer) Sync(f *os.File) { s.files <- f }

// Err returns the first fsync error so far, so a writer can stop early.
func (s *Syncer) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Wait closes the queue, waits for every queued file, and returns the first
// error. It is safe to call more than once.
func (s *Syncer) Wait() error {
	s.mu.Lock()
	if !s.done {
		s.done = true
		close(s.files)
	}
	s.mu.Unlock()
	s.wg.Wait()
	return s.Err()
}

package main

import (
	"errors"
	"os"
	"path/filepath"
	"sync"

	"golang.org/x/sys/unix"
)

// waker tells wait that the instance may have changed, so it looks at once
// instead of at the next poll: inotify on the data directory (signal files
// created, renamed or removed; postmaster.pid rewritten), on global/ (where
// pg_control appears last) and, for --for streaming, on pg_wal/ (the
// walreceiver writing), and a pidfd on the lock holder (a worker's exit,
// which releases its flock, gives no file event). It only wakes: every
// verdict comes from the next look, so a missed or spurious event costs
// time, never truth.
type waker struct {
	c       chan struct{} // one pending wake-up
	dataDir string
	wal     bool

	ino     *os.File // nil: inotify unavailable, wait polls as before
	inoFD   int      // ino's descriptor (ino.Fd() would make it blocking)
	watched bool     // the data directory itself is watched

	pid  int
	pidf *os.File
	wg   sync.WaitGroup
}

// Watched directories and what in them may change a verdict.
const (
	dirEvents = unix.IN_CREATE | unix.IN_DELETE | unix.IN_MOVED_TO | unix.IN_MOVED_FROM | unix.IN_CLOSE_WRITE |
		unix.IN_DELETE_SELF | unix.IN_MOVE_SELF
	walEvents = unix.IN_CREATE | unix.IN_MOVED_TO | unix.IN_MODIFY
)

// newWaker starts watching; without inotify (or when the directory cannot
// be watched, e.g. another user's 0700 data directory) ok stays false and
// wait keeps its one-second poll.
func newWaker(dataDir string, wal bool) *waker {
	w := &waker{c: make(chan struct{}, 1), dataDir: dataDir, wal: wal}
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		return w
	}
	w.ino, w.inoFD = os.NewFile(uintptr(fd), "inotify"), fd // non-blocking: reads park in the runtime poller
	w.wg.Add(1)
	go w.readEvents(w.ino)
	return w
}

// ok: the data directory is watched, so a slow poll is enough.
func (w *waker) ok() bool { return w.watched }

func (w *waker) wake() {
	select {
	case w.c <- struct{}{}:
	default:
	}
}

// readEvents wakes on any batch of events until the inotify file is closed.
func (w *waker) readEvents(f *os.File) {
	defer w.wg.Done()
	buf := make([]byte, 64*(unix.SizeofInotifyEvent+unix.NAME_MAX+1))
	for {
		if _, err := f.Read(buf); err != nil {
			return
		}
		w.wake()
	}
}

// watchDirs (re)adds the watches; a directory that appeared since (global/
// during the first copy, pg_wal/) is picked up here, an existing watch is
// only refreshed.
func (w *waker) watchDirs() {
	if w.ino == nil {
		return
	}
	fd := w.inoFD
	_, err := unix.InotifyAddWatch(fd, w.dataDir, dirEvents|unix.IN_ONLYDIR)
	w.watched = err == nil
	if !w.watched {
		return
	}
	unix.InotifyAddWatch(fd, filepath.Join(w.dataDir, "global"), dirEvents|unix.IN_ONLYDIR)
	if w.wal {
		unix.InotifyAddWatch(fd, filepath.Join(w.dataDir, "pg_wal"), walEvents|unix.IN_ONLYDIR)
	}
}

// watchPID follows the lock holder: a wake-up when it exits. A holder gone
// before it is watched wakes at once.
func (w *waker) watchPID(pid int) {
	if pid == w.pid {
		return
	}
	w.stopPID()
	if pid == 0 {
		return
	}
	w.pid = pid
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		if errors.Is(err, unix.ESRCH) {
			w.wake()
		}
		return
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return
	}
	f := os.NewFile(uintptr(fd), "pidfd")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return
	}
	w.pidf = f
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		// A pidfd is readable once the process has exited; the first call
		// only arms the poller. An error is the file closed by stopPID.
		armed := false
		if rc.Read(func(uintptr) bool { done := armed; armed = true; return done }) == nil {
			w.wake()
		}
	}()
}

func (w *waker) stopPID() {
	if w.pidf != nil {
		w.pidf.Close()
		w.pidf = nil
	}
	w.pid = 0
}

// close ends the watches and waits for their goroutines.
func (w *waker) close() {
	w.stopPID()
	if w.ino != nil {
		w.ino.Close()
	}
	w.wg.Wait()
}

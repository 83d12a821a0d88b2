package instance

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Lock is the instance lock: an exclusive flock(2) on the data directory
// itself, so it needs no file of its own and dies with the process.
type Lock struct{ f *os.File }

// Lock takes the instance lock or refuses at once if another worker has it.
func (in *Instance) Lock() (*Lock, error) {
	f, err := os.Open(in.DataDir)
	if err != nil {
		return nil, fmt.Errorf("lock data directory %s: %w", in.DataDir, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, &RefusedError{Dir: in.DataDir, Reason: "another pg-standby worker is working on it",
				Hint: "wait for it, or stop it (systemctl stop pg-standby@INSTANCE)"}
		}
		return nil, fmt.Errorf("lock data directory %s: %w", in.DataDir, err)
	}
	return &Lock{f: f}, nil
}

// Release drops the lock.
func (l *Lock) Release() { l.f.Close() }

// LockHolder is the pid holding the instance lock on dataDir, 0 if none,
// read from /proc/locks so that the caller never takes the lock itself.
func LockHolder(dataDir string) int {
	fi, err := os.Stat(dataDir)
	if err != nil {
		return 0
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0
	}
	locks, err := os.ReadFile("/proc/locks")
	if err != nil {
		return 0
	}
	dev := uint64(st.Dev)
	return flockHolder(string(locks), uint64(unix.Major(dev)), uint64(unix.Minor(dev)), st.Ino)
}

// flockHolder finds in /proc/locks text the pid holding a flock on the
// inode ino of device major:minor, 0 if none.
func flockHolder(locks string, major, minor, ino uint64) int {
	for _, line := range strings.Split(locks, "\n") {
		f := strings.Fields(line)
		// "1: FLOCK  ADVISORY  WRITE 1234 08:02:131 0 EOF"; waiters have "->".
		if len(f) < 6 || f[1] != "FLOCK" {
			continue
		}
		id := strings.Split(f[5], ":")
		if len(id) != 3 {
			continue
		}
		ma, err1 := strconv.ParseUint(id[0], 16, 64)
		mi, err2 := strconv.ParseUint(id[1], 16, 64)
		n, err3 := strconv.ParseUint(id[2], 10, 64)
		if err1 != nil || err2 != nil || err3 != nil || ma != major || mi != minor || n != ino {
			continue
		}
		if pid, err := strconv.Atoi(f[4]); err == nil {
			return pid
		}
	}
	return 0
}

package instance

import (
	"errors"
	"fmt"
	"os"
	"syscall"
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

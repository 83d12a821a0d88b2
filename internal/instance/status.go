package instance

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
)

// DirState is what an instance's data directory alone says it is: read
// without the instance lock, so a running worker may change it at any time.
type DirState int

const (
	DirMissing     DirState = iota // no data directory
	DirUnreadable                  // the signal files cannot be read (DirStatus.Err)
	DirStandby                     // copied: pg_control and standby.signal, no basebackup.signal
	DirOther                       // neither pending nor a standby (a primary, a plain cluster)
	DirNotStarted                  // basebackup.signal, no attempt has written yet
	DirInterrupted                 // basebackup.signal after an attempt wrote: resumable
	DirFailed                      // basebackup.signal, every attempt failed before writing
)

// DirStatus is an instance's DirState with what basebackup.signal records
// (the zero Pending unless the backup is pending).
type DirStatus struct {
	State   DirState
	Pending Pending
	Err     error // why the state is DirUnreadable
	// Copy is pg-standby's base backup a DirOther directory came from
	// (e.g. a bare copy of patroni-replica), nil if none or unreadable.
	Copy *Copy
}

// Status classifies the data directory by its signal files, as status and
// list show it; unlike Inspect it refuses nothing.
func (in *Instance) Status() DirStatus {
	exists := func(name string) (bool, error) {
		_, err := os.Lstat(filepath.Join(in.DataDir, name))
		if errors.Is(err, fs.ErrNotExist) {
			return false, nil
		}
		return err == nil, err
	}
	if _, err := os.Stat(in.DataDir); errors.Is(err, fs.ErrNotExist) {
		return DirStatus{State: DirMissing}
	}
	pending, err := exists(BackupSignal)
	if err != nil {
		return DirStatus{State: DirUnreadable, Err: err}
	}
	if !pending {
		control, err1 := exists(PgControl)
		standby, err2 := exists(StandbySignal)
		switch {
		case err1 != nil || err2 != nil:
			return DirStatus{State: DirUnreadable, Err: errors.Join(err1, err2)}
		case control && standby:
			return DirStatus{State: DirStandby}
		}
		c, _ := in.CopyOf() // only adds what is known; unreadable is unknown
		return DirStatus{State: DirOther, Copy: c}
	}
	p, err := in.Pending()
	if err != nil {
		return DirStatus{State: DirUnreadable, Err: err}
	}
	st := DirStatus{State: DirNotStarted, Pending: p}
	switch {
	case p.Written:
		st.State = DirInterrupted
	case p.Attempts > 0 && p.LastError != "":
		st.State = DirFailed
	}
	return st
}

// Pending reads the instance's basebackup.signal (the zero Pending if none).
func (in *Instance) Pending() (Pending, error) {
	root, err := os.OpenRoot(in.DataDir)
	if err != nil {
		return Pending{}, err
	}
	defer root.Close()
	return ReadPending(root)
}

package instance

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// Instance is a data directory and the configuration file that names its primary.
type Instance struct {
	// Name is how the instance was named (a unit's %i), "" for --pgdata.
	Name     string
	DataDir  string
	ConfFile string
	// Debian is set for a postgresql-common cluster.
	Debian *Debian
}

// New returns the instance at dataDir; confFile defaults to its postgresql.conf.
func New(dataDir, confFile string) (*Instance, error) {
	if dataDir == "" {
		return nil, errors.New("no data directory given (--pgdata)")
	}
	d, err := filepath.Abs(dataDir)
	if err != nil {
		return nil, fmt.Errorf("data directory %s: %w", dataDir, err)
	}
	if confFile == "" {
		confFile = filepath.Join(d, "postgresql.conf")
	}
	c, err := filepath.Abs(confFile)
	if err != nil {
		return nil, fmt.Errorf("configuration file %s: %w", confFile, err)
	}
	return &Instance{DataDir: d, ConfFile: c}, nil
}

// State is what the directory holds.
type State int

const (
	// NeedsBackup: basebackup.signal is there; a backup is to be taken (again).
	NeedsBackup State = iota
	// Standby: a finished standby (pg_control and standby.signal, no basebackup.signal).
	Standby
)

// exists reports whether name is in the data directory; an error other than
// "does not exist" (permission denied) is not an answer and is returned.
func (in *Instance) exists(name string) (bool, error) {
	_, err := os.Lstat(filepath.Join(in.DataDir, name))
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	}
	return false, &RefusedError{Dir: in.DataDir, Reason: err.Error(),
		Hint: "run pg-standby as the owner of the data directory (usually postgres), as postgres itself must run"}
}

// Inspect classifies the directory, refusing anything pg-standby must not
// write into: a cluster that is not a pending instance, a live server, a
// directory owned by someone else.
func (in *Instance) Inspect() (State, error) {
	fi, err := os.Stat(in.DataDir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return 0, &RefusedError{Dir: in.DataDir, Reason: "it does not exist", Hint: "create the instance with pg-standby init"}
		}
		return 0, fmt.Errorf("data directory %s: %w", in.DataDir, err)
	}
	if !fi.IsDir() {
		return 0, &RefusedError{Dir: in.DataDir, Reason: "not a directory"}
	}
	var has [4]bool
	for i, name := range []string{BackupSignal, PgControl, StandbySignal, "PG_VERSION"} {
		var err error
		if has[i], err = in.exists(name); err != nil {
			return 0, err
		}
	}
	if backupSignal, pgControl, standbySignal, pgVersion := has[0], has[1], has[2], has[3]; !backupSignal {
		if pgControl && standbySignal {
			return Standby, nil
		}
		if pgControl || pgVersion {
			return 0, &RefusedError{Dir: in.DataDir, Reason: "it holds a PostgreSQL cluster that is not a standby and has no " + BackupSignal,
				Hint: "pg-standby never overwrites a cluster; use an empty directory or pg-standby init"}
		}
		return 0, &RefusedError{Dir: in.DataDir, Reason: "it is not a pg-standby instance (no " + BackupSignal + ")",
			Hint: "create one with pg-standby init, or create " + BackupSignal + " in a minimal instance"}
	}
	// A live server first: that refusal matters most, whoever runs this.
	if why := in.liveServer(); why != "" {
		return 0, &RefusedError{Dir: in.DataDir, Reason: why, Hint: "stop that server first"}
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Geteuid() {
		return 0, &RefusedError{Dir: in.DataDir, Reason: fmt.Sprintf("it is owned by uid %d, and this process runs as uid %d", st.Uid, os.Geteuid()),
			Hint: "run pg-standby as the owner of the data directory (usually postgres), as postgres itself must run"}
	}
	return NeedsBackup, nil
}

// KeptConfig lists the ConfigFiles the instance has in its data directory.
func (in *Instance) KeptConfig() []string {
	var kept []string
	for _, name := range ConfigFiles {
		if fi, err := os.Lstat(filepath.Join(in.DataDir, name)); err == nil && fi.Mode().IsRegular() {
			kept = append(kept, name)
		}
	}
	return kept
}

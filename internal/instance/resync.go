package instance

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pg-standby/pg-standby/internal/pgconf"
	"github.com/pg-standby/pg-standby/internal/wal"
)

// ResyncFile is the resync record in the data directory: written by
// pg-standby resync, read by the next attempt to decide between changed
// blocks and a full copy. No record means a full copy.
const ResyncFile = "pg-standby.resync"

// ResyncMode is what the admin asked resync for.
type ResyncMode string

const (
	// ResyncBlock: bring the directory up to date by changed blocks since
	// Prior (PostgreSQL 17+, summarize_wal on), falling back to full.
	ResyncBlock ResyncMode = "block"
	// ResyncFull: a full backup over the directory (file-level delta).
	ResyncFull ResyncMode = "full"
)

// Resync is the resync record: the standby's state when it was turned
// into a pending instance, taken from its pg_control.
type Resync struct {
	Mode     ResyncMode
	SystemID uint64
	// Prior and PriorTLI are the prior start point: the REDO location of
	// the last checkpoint (restartpoint) and that checkpoint's timeline.
	// Every block changed after Prior is in the WAL from Prior on.
	Prior    wal.LSN
	PriorTLI uint32
	// State, Checkpoint, MinRecovery and MinRecoveryTLI are recorded for
	// the reader's checks and for status: pg_control is gone after the
	// first attempt (it is removed before anything is written).
	State          DBState
	Checkpoint     wal.LSN
	MinRecovery    wal.LSN
	MinRecoveryTLI uint32
	Created        time.Time
}

const resyncHeader = "# pg-standby resync record: the prior state of this directory, for the next backup. Do not edit.\n"

// maxResyncRecord bounds a read of the record: it is a few hundred bytes.
const maxResyncRecord = 4096

func (r *Resync) encode() string {
	var b strings.Builder
	b.WriteString(resyncHeader)
	fmt.Fprintf(&b, "version 1\nmode %s\nsystem-identifier %d\nprior-lsn %s\nprior-tli %d\n", r.Mode, r.SystemID, r.Prior, r.PriorTLI)
	fmt.Fprintf(&b, "state %d\ncheckpoint-lsn %s\nmin-recovery-lsn %s\nmin-recovery-tli %d\ncreated %s\n",
		uint32(r.State), r.Checkpoint, r.MinRecovery, r.MinRecoveryTLI, r.Created.UTC().Format(time.RFC3339))
	return b.String()
}

// ParseResync reads a record; every field must be there, once.
func ParseResync(data []byte) (*Resync, error) {
	r := &Resync{}
	seen := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		key, val, _ := strings.Cut(line, " ")
		if seen[key] {
			return nil, fmt.Errorf("%s line %d: %q twice", ResyncFile, n, key)
		}
		seen[key] = true
		if err := r.set(key, val); err != nil {
			return nil, fmt.Errorf("%s line %d: %w", ResyncFile, n, err)
		}
	}
	for _, k := range []string{"version", "mode", "system-identifier", "prior-lsn", "prior-tli"} {
		if !seen[k] {
			return nil, fmt.Errorf("%s: no %q line", ResyncFile, k)
		}
	}
	return r, nil
}

func (r *Resync) set(key, val string) error {
	var err error
	u32 := func() uint32 {
		var v uint64
		v, err = strconv.ParseUint(val, 10, 32)
		return uint32(v)
	}
	switch key {
	case "version":
		if val != "1" {
			return fmt.Errorf("version %q (written by a newer pg-standby?)", val)
		}
	case "mode":
		r.Mode = ResyncMode(val)
		if r.Mode != ResyncBlock && r.Mode != ResyncFull {
			return fmt.Errorf("mode %q is not block or full", val)
		}
	case "system-identifier":
		r.SystemID, err = strconv.ParseUint(val, 10, 64)
	case "prior-lsn":
		r.Prior, err = wal.ParseLSN(val)
	case "prior-tli":
		r.PriorTLI = u32()
	case "state":
		r.State = DBState(u32())
	case "checkpoint-lsn":
		r.Checkpoint, err = wal.ParseLSN(val)
	case "min-recovery-lsn":
		r.MinRecovery, err = wal.ParseLSN(val)
	case "min-recovery-tli":
		r.MinRecoveryTLI = u32()
	case "created":
		r.Created, err = time.Parse(time.RFC3339, val)
	default:
		return fmt.Errorf("unknown entry %q (written by a newer pg-standby?)", key)
	}
	if err != nil {
		return fmt.Errorf("%s %q: %w", key, val, err)
	}
	return nil
}

// ReadResync reads the record in root; ok is false when there is none.
func ReadResync(root *os.Root) (r *Resync, ok bool, err error) {
	f, err := root.OpenFile(ResyncFile, os.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_NOCTTY, 0)
	if errors.Is(err, os.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("open %s: %w", ResyncFile, err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return nil, false, fmt.Errorf("%s is not a regular file", ResyncFile)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxResyncRecord+1))
	if err != nil {
		return nil, false, fmt.Errorf("read %s: %w", ResyncFile, err)
	}
	if len(data) > maxResyncRecord {
		return nil, false, fmt.Errorf("%s is longer than %d bytes", ResyncFile, maxResyncRecord)
	}
	r, err = ParseResync(data)
	return r, err == nil, err
}

// StartResync turns a stopped standby into a pending instance: it writes
// basebackup.signal (recorded, keeping keep: the instance's own
// configuration, so no attempt reads the primary's copied files) and then
// the record. Both are written as root-run init writes: a random O_EXCL
// name in a directory reached without symlinks, given the data
// directory's owner, fsynced, renamed, the directory fsynced. The signal
// goes first: a crash in between leaves a pending instance without a
// record, which takes a full copy, never one with a stale record.
func (in *Instance) StartResync(r *Resync, keep []string) error {
	path, err := openDir(in.DataDir, false)
	if err != nil {
		return err
	}
	// An O_PATH descriptor cannot be fsynced: reopen it for reading.
	fd, err := openat2Dir(path.fd, ".")
	path.Close()
	if err != nil {
		return fmt.Errorf("open %s: %w", in.DataDir, err)
	}
	d := &safeDir{fd: fd, path: in.DataDir}
	defer d.Close()
	var st unix.Stat_t
	if err := unix.Fstat(d.fd, &st); err != nil {
		return fmt.Errorf("stat %s: %w", in.DataDir, err)
	}
	own := owner{int(st.Uid), int(st.Gid)}
	mode := os.FileMode(0o600)
	if st.Mode&0o050 == 0o050 {
		mode = 0o640 // group access (initdb -g), as the primary's files
	}
	p := Pending{Recorded: true, Keep: keep}
	if err := d.writeFile(BackupSignal, p.encode(), mode, own); err != nil {
		return err
	}
	return d.writeFile(ResyncFile, r.encode(), mode, own)
}

// OwnConfig reads a standby's own configuration, without the data
// directory's postgresql.auto.conf (the primary's copy, edited), and lists
// the data-directory paths of its files, as the first attempt on a minimal
// instance lists them: ConfigFiles present, and every file the
// configuration includes from inside the data directory.
func (in *Instance) OwnConfig() (*pgconf.Config, []string, error) {
	auto := filepath.Join(in.DataDir, AutoConf)
	conf, err := pgconf.LoadOnly(in.ConfFile, in.DataDir, func(abs string) bool { return abs != auto })
	if err != nil {
		return nil, nil, fmt.Errorf("read the instance's configuration: %w", err)
	}
	kept := in.KeptConfig()
	for _, f := range conf.Files() {
		rel, err := filepath.Rel(in.DataDir, f)
		if err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, "../") || rel == AutoConf {
			continue
		}
		if !slices.Contains(kept, rel) {
			kept = append(kept, rel)
		}
	}
	return conf, kept, nil
}

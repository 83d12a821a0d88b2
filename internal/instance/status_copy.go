package instance

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// The labels pg-standby gives its base backups (BASE_BACKUP LABEL, which
// the primary writes into backup_label): "pg-standby DIR" for run,
// "pg-standby patroni-replica DIR" for patroni-replica's bare copies.
const (
	LabelPrefix        = "pg-standby "
	PatroniLabelPrefix = "pg-standby patroni-replica "
)

// Copy is what a data directory's backup_label says of the base backup it
// was copied from, when pg-standby took that backup.
type Copy struct {
	Label     string `json:"label"`
	Patroni   bool   `json:"patroni_replica"` // taken by pg-standby patroni-replica
	File      string `json:"file"`            // backup_label, or backup_label.old once postgres began recovery
	StartLSN  string `json:"start_lsn,omitempty"`
	StartTime string `json:"start_time,omitempty"` // as the primary wrote it
	Timeline  string `json:"start_timeline,omitempty"`
}

// maxBackupLabel bounds the read: the file is the postgres user's, and
// PostgreSQL's own are a few hundred bytes.
const maxBackupLabel = 64 << 10

// CopyOf reads backup_label (else backup_label.old) in the data directory:
// nil when neither is there or the label is not pg-standby's.
func (in *Instance) CopyOf() (*Copy, error) {
	root, err := os.OpenRoot(in.DataDir)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	for _, name := range []string{"backup_label", "backup_label.old"} {
		data, err := readSmall(root, name, maxBackupLabel)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		c := parseBackupLabel(data)
		if c == nil {
			return nil, nil
		}
		c.File = name
		return c, nil
	}
	return nil, nil
}

// parseBackupLabel reads the lines pg-standby shows; nil for another's label.
func parseBackupLabel(data []byte) *Copy {
	var c Copy
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ": ")
		if !ok {
			continue
		}
		switch k {
		case "LABEL":
			c.Label = v
		case "START WAL LOCATION":
			c.StartLSN, _, _ = strings.Cut(v, " ")
		case "START TIME":
			c.StartTime = v
		case "START TIMELINE":
			c.Timeline = v
		}
	}
	if !strings.HasPrefix(c.Label, LabelPrefix) {
		return nil
	}
	c.Patroni = strings.HasPrefix(c.Label, PatroniLabelPrefix)
	return &c
}

// readSmall reads a regular file of at most max bytes, never blocking on a
// FIFO or device planted under its name.
func readSmall(root *os.Root, name string, max int64) ([]byte, error) {
	fi, err := root.Lstat(name)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", name)
	}
	f, err := root.OpenFile(name, os.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_NOCTTY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi, err = f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", name)
	}
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("%s is larger than %d bytes", name, max)
	}
	return data, nil
}

package instance

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/pg-standby/pg-standby/internal/durable"
	"github.com/pg-standby/pg-standby/internal/printable"
)

// Pending is what basebackup.signal records between attempts. PostgreSQL
// ignores a signal file's content, so the state lives in the file whose
// existence it describes and disappears with it.
type Pending struct {
	// Recorded is false until the first attempt wrote the file: the list of
	// kept files must be taken while the directory is still pristine.
	Recorded bool
	// Keep lists the data-directory paths of the instance's own configuration.
	Keep []string
	// Attempts counts the attempts made: those that wrote, and those that
	// failed before their first write (recorded by the worker so that status
	// can say "attempt N failed: REASON").
	Attempts int
	// Written: an attempt has written into the directory (a backup is in
	// progress there), as opposed to every attempt failing before writing.
	Written bool
	// LastError is why the last such attempt failed ("" if none did), and
	// LastFailure when.
	LastError   string
	LastFailure time.Time
	// SystemID is the system identifier of the primary the last attempt
	// that wrote copied from ("" in a file of an earlier pg-standby).
	SystemID string
}

const pendingHeader = `# pg-standby: a base backup is pending for this instance; postgres must not
# start here until pg-standby removes this file. Do not edit.
`

// ReadPending reads basebackup.signal; an empty file (made by touch) is a
// valid, not yet recorded, instance.
func ReadPending(root *os.Root) (Pending, error) {
	data, err := root.ReadFile(BackupSignal)
	if errors.Is(err, fs.ErrNotExist) {
		return Pending{}, nil
	}
	if err != nil {
		return Pending{}, fmt.Errorf("read %s: %w", BackupSignal, err)
	}
	var p Pending
	written := ""
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		key, val, _ := strings.Cut(line, " ")
		switch key {
		case "instance":
			p.Recorded = true
		case "keep":
			p.Keep = append(p.Keep, val)
		case "last-error":
			p.LastError = val
		case "last-failure":
			if p.LastFailure, err = time.Parse(time.RFC3339, val); err != nil {
				return Pending{}, fmt.Errorf("%s line %d: bad time %q", BackupSignal, n, val)
			}
		case "written":
			written = val
		case "system-identifier":
			p.SystemID = val
		case "attempts":
			p.Attempts, err = strconv.Atoi(val)
			if err != nil {
				return Pending{}, fmt.Errorf("%s line %d: bad attempt count %q", BackupSignal, n, val)
			}
		default:
			return Pending{}, fmt.Errorf("%s line %d: unknown entry %q (written by a newer pg-standby?)", BackupSignal, n, key)
		}
	}
	// Files from before the "written" entry counted only attempts that wrote.
	p.Written = written == "1" || (written == "" && p.Attempts > 0)
	return p, nil
}

// WritePending replaces basebackup.signal durably (write, fsync, rename,
// fsync the directory), so a crash leaves the old or the new record.
func WritePending(root *os.Root, p Pending, mode os.FileMode) error {
	tmp := BackupSignal + ".pg-standby"
	if err := durable.WriteFile(root, tmp, []byte(p.encode()), mode); err != nil {
		return err
	}
	if err := root.Rename(tmp, BackupSignal); err != nil {
		return fmt.Errorf("replace %s: %w", BackupSignal, err)
	}
	return durable.SyncDir(root, ".")
}

// encode is basebackup.signal's content for p.
func (p Pending) encode() string {
	var b strings.Builder
	b.WriteString(pendingHeader)
	// Not recorded (made by touch): no "instance" line, so that the first
	// attempt that writes still takes the list of kept files.
	if p.Recorded {
		b.WriteString("instance 1\n")
	}
	for _, k := range p.Keep {
		fmt.Fprintf(&b, "keep %s\n", k)
	}
	written := 0
	if p.Written {
		written = 1
	}
	fmt.Fprintf(&b, "attempts %d\nwritten %d\n", p.Attempts, written)
	if p.SystemID != "" {
		fmt.Fprintf(&b, "system-identifier %s\n", printable.OneLine(p.SystemID, 20))
	}
	if p.LastError != "" {
		// One line, bounded: it is read back line by line.
		msg := printable.OneLine(p.LastError, 1000)
		fmt.Fprintf(&b, "last-error %s\nlast-failure %s\n", msg, p.LastFailure.UTC().Format(time.RFC3339))
	}
	return b.String()
}

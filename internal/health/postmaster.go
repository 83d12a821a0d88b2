package health

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// postmaster is what postmaster.pid says (PostgreSQL's pidfile.h: pid, data
// directory, start time, port, first socket directory, listen address,
// shared memory key, status), checked against the live process.
type postmaster struct {
	pid, port int
	socketDir string
	status    string // "starting", "stopping", "ready", "standby"
	// unverified: the pid lives but its working directory could not be
	// examined (a user namespace, as under PrivateUsers=yes, denies
	// /proc/PID/cwd even to the same uid; ProtectProc=invisible hides
	// it): the server must answer on its socket, and its own
	// data_directory decides.
	unverified bool
}

func readPostmaster(dataDir string) (postmaster, error) {
	f, err := os.OpenFile(filepath.Join(dataDir, "postmaster.pid"), os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if os.IsNotExist(err) {
		return postmaster{}, fmt.Errorf("postgres is not running (no postmaster.pid)")
	}
	if err != nil {
		return postmaster{}, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, 4096))
	if err != nil {
		return postmaster{}, err
	}
	lines := strings.Split(string(data), "\n")
	for len(lines) < 8 {
		lines = append(lines, "")
	}
	var pm postmaster
	pm.pid, _ = strconv.Atoi(strings.TrimSpace(lines[0]))
	pm.port, _ = strconv.Atoi(strings.TrimSpace(lines[3]))
	pm.socketDir = strings.TrimSpace(lines[4])
	pm.status = strings.TrimSpace(lines[7])
	var ok bool
	if pm.pid > 0 {
		ok, pm.unverified = isPostmasterOf(pm.pid, dataDir)
	}
	if !ok {
		return postmaster{}, stalePID(pm.pid, dataDir)
	}
	return pm, nil
}

func stalePID(pid int, dataDir string) error {
	return fmt.Errorf("postgres is not running (stale postmaster.pid: pid %d is no postgres in %s)", pid, dataDir)
}

// isPostmasterOf: the postmaster works in its data directory (chdir at
// start). When /proc denies or hides its cwd, a live pid is unverified.
func isPostmasterOf(pid int, dataDir string) (ok, unverified bool) {
	dir, err := os.Stat(dataDir)
	if err != nil {
		return false, false
	}
	cwd, err := os.Stat(fmt.Sprintf("/proc/%d/cwd", pid))
	if err == nil {
		return os.SameFile(cwd, dir), false
	}
	if errors.Is(err, fs.ErrPermission) || errors.Is(err, fs.ErrNotExist) {
		err := unix.Kill(pid, 0) // ESRCH: gone; EPERM: alive, another user's
		return err == nil || errors.Is(err, unix.EPERM), true
	}
	return false, false
}

// sameDir: the server's data_directory is dataDir.
func sameDir(serverDir, dataDir string) bool {
	a, err1 := os.Stat(serverDir)
	b, err2 := os.Stat(dataDir)
	return err1 == nil && err2 == nil && os.SameFile(a, b)
}

// lastFatal is the last FATAL line of the postmaster's stderr when that is
// a regular file (pg_ctl -l, Debian's pg_ctlcluster), "" otherwise (the
// journal, a pipe to the logging collector: not read).
func lastFatal(pid int) string {
	f, err := os.OpenFile(fmt.Sprintf("/proc/%d/fd/2", pid), os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return ""
	}
	defer f.Close()
	return lastFatalIn(f)
}

// lastFatalIn is the last FATAL line in the last 64 KiB of f, if a regular file.
func lastFatalIn(f *os.File) string {
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		return ""
	}
	const tail = 64 << 10
	off := max(fi.Size()-tail, 0)
	buf := make([]byte, fi.Size()-off)
	n, _ := f.ReadAt(buf, off)
	buf = buf[:n]
	var last string
	for len(buf) > 0 {
		line := buf
		if i := bytes.IndexByte(buf, '\n'); i >= 0 {
			line, buf = buf[:i], buf[i+1:]
		} else {
			buf = nil
		}
		if i := bytes.Index(line, []byte("FATAL:  ")); i >= 0 {
			last = string(line[i:])
		}
	}
	last = strings.Join(strings.Fields(last), " ")
	if r := []rune(last); len(r) > 300 {
		last = string(r[:300]) + "…"
	}
	return last
}

package instance

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// liveServer returns why a server may still be running on the data
// directory, "" when it is proven stopped. A pid in postmaster.pid proves
// nothing across PID namespaces (a container sharing the volume), so this
// asks what PostgreSQL's own CreateLockFile asks before it reuses a data
// directory (PGSharedMemoryIsInUse): does the SysV shared memory segment
// named in postmaster.pid line 7 still exist, with processes attached? It
// also looks for any visible process whose working directory is the data
// directory (every backend's is), and whether the Unix socket the lock file
// names (lines 4 and 5) accepts a connection. An answer it cannot get is "unsure",
// which refuses too.
func (in *Instance) liveServer() string {
	lines, err := readPidFile(in.DataDir + "/" + PostmasterPid)
	if err != nil {
		return fmt.Sprintf("its %s cannot be read (%v), so pg-standby cannot prove its server stopped", PostmasterPid, err)
	}
	if len(lines) >= 7 {
		if why := shmInUse(lines[6]); why != "" {
			return why
		}
	}
	if pid := cwdUser(in.DataDir); pid != 0 {
		return fmt.Sprintf("postgres process %d works in it (its current directory is the data directory)", pid)
	}
	if len(lines) >= 5 {
		if sock := listeningSocket(lines[4], lines[3]); sock != "" {
			return fmt.Sprintf("a server accepts connections on %s, the socket its %s names", sock, PostmasterPid)
		}
	}
	if len(lines) >= 1 {
		if pid, err := strconv.Atoi(strings.TrimSpace(lines[0])); err == nil && pid > 0 {
			if err := syscall.Kill(pid, 0); err == nil || errors.Is(err, syscall.EPERM) {
				return fmt.Sprintf("a server (pid %d in %s) is running on it", pid, PostmasterPid)
			}
		}
	}
	return ""
}

// readPidFile reads postmaster.pid's lines, bounded and without following
// a link or opening anything but a regular file; none if it is absent.
func readPidFile(path string) ([]string, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil {
		return nil, err
	} else if !fi.Mode().IsRegular() {
		return nil, errors.New("not a regular file")
	}
	b, err := io.ReadAll(io.LimitReader(f, 64<<10))
	if err != nil {
		return nil, err
	}
	return strings.Split(string(b), "\n"), nil
}

// shmInUse checks postmaster.pid's "KEY ID" line like sysv_shmem.c's
// PGSharedMemoryAttach: a segment that is gone (EINVAL, EIDRM) or now
// belongs to another key is no server; one with processes attached is.
func shmInUse(line string) string {
	f := strings.Fields(line)
	if len(f) != 2 {
		return ""
	}
	key, err1 := strconv.ParseInt(f[0], 10, 64)
	id, err2 := strconv.Atoi(f[1])
	if err1 != nil || err2 != nil || id < 0 {
		return ""
	}
	var ds unix.SysvShmDesc
	_, err := unix.SysvShmCtl(id, unix.IPC_STAT, &ds)
	switch {
	case errors.Is(err, unix.EINVAL) || errors.Is(err, unix.EIDRM):
		return ""
	case err != nil:
		return fmt.Sprintf("its server's shared memory segment (key %d, id %d) cannot be examined (%v), so pg-standby cannot prove the server stopped", key, id, err)
	case int64(ds.Perm.Key) != key:
		return ""
	case ds.Nattch > 0:
		return fmt.Sprintf("its server's shared memory segment (key %d, id %d in %s) has %d processes attached: a server runs on it, maybe in another PID namespace (a container)",
			key, id, PostmasterPid, ds.Nattch)
	}
	return ""
}

// cwdUser returns a visible postgres process whose current directory is
// dir, 0 if none. Processes of other users or PID namespaces this one
// cannot see are not found; the shared memory check covers those.
func cwdUser(dir string) int {
	var want unix.Stat_t
	if err := unix.Stat(dir, &want); err != nil {
		return 0
	}
	d, err := os.Open("/proc")
	if err != nil {
		return 0
	}
	defer d.Close()
	names, _ := d.Readdirnames(-1)
	self := os.Getpid()
	for _, n := range names {
		pid, err := strconv.Atoi(n)
		if err != nil || pid == self {
			continue
		}
		var st unix.Stat_t
		if unix.Stat("/proc/"+n+"/cwd", &st) != nil || st.Dev != want.Dev || st.Ino != want.Ino {
			continue
		}
		// Only a server's process: a shell left in the directory is none.
		if comm, err := os.ReadFile("/proc/" + n + "/comm"); err == nil && strings.TrimSpace(string(comm)) == "postgres" {
			return pid
		}
	}
	return 0
}

// listeningSocket returns the socket path of postmaster.pid's socket
// directory and port lines if a server accepts connections there, else "".
func listeningSocket(dirLine, portLine string) string {
	dir, port := strings.TrimSpace(dirLine), strings.TrimSpace(portLine)
	if !strings.HasPrefix(dir, "/") || port == "" {
		return ""
	}
	if _, err := strconv.Atoi(port); err != nil {
		return ""
	}
	sock := dir + "/.s.PGSQL." + port
	c, err := net.DialTimeout("unix", sock, time.Second)
	if err != nil {
		return ""
	}
	c.Close()
	return sock
}

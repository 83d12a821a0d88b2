package instance

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pg-standby/pg-standby/internal/testpg"
)

// pendingDir is a data directory awaiting its backup, as init leaves it.
func pendingDir(t *testing.T) string {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, BackupSignal), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestAttackPidFileOfOtherNamespace: a postmaster.pid whose pid is no
// process here (a server in another PID namespace) but whose SysV segment
// has processes attached is a live server: refused, as PostgreSQL refuses.
func TestAttackPidFileOfOtherNamespace(t *testing.T) {
	dir := pendingDir(t)
	key := 0x50000000 + rand.IntN(1<<24)
	id, err := unix.SysvShmGet(key, 4096, unix.IPC_CREAT|unix.IPC_EXCL|0o600)
	if err != nil {
		t.Skipf("no SysV shared memory here: %v", err)
	}
	t.Cleanup(func() { unix.SysvShmCtl(id, unix.IPC_RMID, nil) })
	mem, err := unix.SysvShmAttach(id, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	// pid 4194303 is pid_max-1 of a 64-bit kernel: no process here.
	pidFile := fmt.Sprintf("4194303\n%s\n1700000000\n5432\n/tmp\n*\n%9d %9d\nready   \n", dir, key, id)
	os.WriteFile(filepath.Join(dir, PostmasterPid), []byte(pidFile), 0o600)
	in, _ := New(dir, "")
	_, err = in.Inspect()
	want := fmt.Sprintf("refusing data directory %s: its server's shared memory segment (key %d, id %d in postmaster.pid) has 1 processes attached: "+
		"a server runs on it, maybe in another PID namespace (a container); stop that server first", dir, key, id)
	if err == nil || err.Error() != want {
		t.Fatalf("Inspect with an attached segment:\n got %v\nwant %s", err, want)
	}
	t.Logf("refused: %v", err)
	unix.SysvShmDetach(mem)
	if st, err := in.Inspect(); err != nil || st != NeedsBackup {
		t.Fatalf("after the last detach (a dead server's segment): %v, %v; want NeedsBackup", st, err)
	}
	// The segment gone (EINVAL) is a dead server too.
	unix.SysvShmCtl(id, unix.IPC_RMID, nil)
	if _, err := in.Inspect(); err != nil {
		t.Fatalf("after the segment is removed: %v", err)
	}
}

// TestAttackPidFileLink: postmaster.pid planted as a link or a FIFO is no
// proof of anything: refused, without blocking.
func TestAttackPidFileLink(t *testing.T) {
	for _, kind := range []string{"symlink", "fifo"} {
		dir := pendingDir(t)
		p := filepath.Join(dir, PostmasterPid)
		if kind == "symlink" {
			os.Symlink("/dev/zero", p)
		} else {
			unix.Mkfifo(p, 0o600)
		}
		in, _ := New(dir, "")
		_, err := in.Inspect()
		if err == nil || !strings.Contains(err.Error(), "its postmaster.pid cannot be read") {
			t.Errorf("%s postmaster.pid: %v", kind, err)
		}
		t.Logf("%s: %v", kind, err)
	}
}

// TestAttackLiveClusterInOtherPIDNamespace: a real postgres started in its
// own PID namespace (unshare -p -f --mount-proc) on a pending instance's
// directory: its postmaster.pid names a pid of that namespace, yet
// pg-standby refuses the directory before touching it, by its shared memory
// segment; with its own IPC namespace too (-i, the segment invisible here),
// by its processes' working directory.
func TestAttackLiveClusterInOtherPIDNamespace(t *testing.T) {
	testpg.RequireRoot(t, "needs root: the attack is on root-run code")
	testpg.Require(t)
	for _, c := range []struct{ name, flag, want string }{
		{"pid namespace", "-p", "processes attached: a server runs on it, maybe in another PID namespace (a container)"},
		{"pid and ipc namespaces", "-i", "works in it (its current directory is the data directory)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := startInPIDNamespace(t, c.flag)
			os.WriteFile(filepath.Join(dir, BackupSignal), nil, 0o600)
			in, _ := New(dir, "")
			_, err := in.Inspect()
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Inspect of a live cluster in another namespace: %v\nwant %q", err, c.want)
			}
			t.Logf("refused: %v", err)
		})
	}
}

// startInPIDNamespace initdb's a data directory and starts postgres on it in
// a new PID namespace (and, with flag "-i", a new IPC namespace), until the
// test ends; it returns the data directory once postgres is ready.
func startInPIDNamespace(t *testing.T, flag string) string {
	dir := filepath.Join(testpg.TempDir(t), "data")
	bin := testpg.BinDir()
	if out, err := exec.Command("runuser", "-u", "postgres", "--", filepath.Join(bin, "initdb"), "-D", dir, "-A", "trust", "-U", "postgres", "--no-sync").CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	srv := exec.Command("unshare", "-p", flag, "-f", "--kill-child", "--mount-proc", "runuser", "-u", "postgres", "--",
		filepath.Join(bin, "postgres"), "-D", dir, "-k", dir, "-p", fmt.Sprint(port), "-c", "listen_addresses=")
	var log strings.Builder
	srv.Stdout, srv.Stderr = &log, &log
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		srv.Process.Kill()
		srv.Wait()
		if lines, _ := readPidFile(filepath.Join(dir, PostmasterPid)); len(lines) >= 7 {
			if f := strings.Fields(lines[6]); len(f) == 2 {
				var id int
				fmt.Sscan(f[1], &id)
				unix.SysvShmCtl(id, unix.IPC_RMID, nil)
			}
		}
	})
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		lines, _ := readPidFile(filepath.Join(dir, PostmasterPid))
		if len(lines) >= 8 && strings.TrimSpace(lines[7]) == "ready" {
			t.Logf("postmaster.pid names pid %s (of the other PID namespace), shared memory %q", lines[0], strings.TrimSpace(lines[6]))
			return dir
		}
		if time.Now().After(deadline) {
			t.Fatalf("postgres in its PID namespace did not start:\n%s", log.String())
		}
	}
}

// TestConninfoPassword: every libpq form of a password in a connection
// string is found (it decides where init writes primary_conninfo), and the
// passfile keyword is read as libpq reads it.
func TestConninfoPassword(t *testing.T) {
	for _, c := range []struct {
		conninfo, password, passfile string
		has                          bool
	}{
		{"host=h user=u", "", "", false},
		{"host=h password=S3cret", "S3cret", "", true},
		{"host=h password = S3cret", "S3cret", "", true},
		{"host=h password='a b\\' c'", "a b' c", "", true},
		{"password= host=h", "host=h", "", true}, // libpq skips blanks after "="
		{"postgresql://u:S3cret@h/db", "S3cret", "", true},
		{"postgres://u@h/db?password=S3cret", "S3cret", "", true},
		{"postgresql://u@h/db?passfile=/x/y", "", "/x/y", false},
		{"host=h passfile='/x/my pass'", "", "/x/my pass", false},
	} {
		p := conninfoParams(c.conninfo)
		if HasPassword(c.conninfo) != c.has || p["password"] != c.password || p["passfile"] != c.passfile {
			t.Errorf("%q: params %q, HasPassword %v", c.conninfo, p, HasPassword(c.conninfo))
		}
	}
}

// TestAttackPidFileSocket: a dead pid and no shared memory here, but the
// socket the lock file names accepts connections: a live server, refused.
func TestAttackPidFileSocket(t *testing.T) {
	dir := pendingDir(t)
	sockDir := t.TempDir()
	l, err := net.Listen("unix", filepath.Join(sockDir, ".s.PGSQL.5999"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	os.WriteFile(filepath.Join(dir, PostmasterPid), []byte(fmt.Sprintf("4194303\n%s\n1700000000\n5999\n%s\n*\n", dir, sockDir)), 0o600)
	in, _ := New(dir, "")
	_, err = in.Inspect()
	want := fmt.Sprintf("refusing data directory %s: a server accepts connections on %s/.s.PGSQL.5999, the socket its postmaster.pid names; stop that server first", dir, sockDir)
	if err == nil || err.Error() != want {
		t.Fatalf("Inspect:\n got %v\nwant %s", err, want)
	}
	l.Close()
	if _, err := in.Inspect(); err != nil {
		t.Fatalf("after the socket closed: %v", err)
	}
}

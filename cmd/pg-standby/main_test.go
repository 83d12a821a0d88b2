package main

import (
	"bytes"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pg-standby/pg-standby/internal/oracle"
	"github.com/pg-standby/pg-standby/internal/testpg"
)

// binary is pg-standby built once for these tests, where postgres can run it.
var binary string

func TestMain(m *testing.M) {
	// A -race binary sleeps atexit_sleep_ms (default 1000) before it exits,
	// on every exit: each pg-standby the tests run (run, status, wait,
	// metrics, init…) would take a second longer than its work. A race it
	// detected is still reported, and still makes it exit 66.
	if g := os.Getenv("GORACE"); !strings.Contains(g, "atexit_sleep_ms=") {
		os.Setenv("GORACE", strings.TrimSpace(g+" atexit_sleep_ms=0"))
	}
	dir, err := os.MkdirTemp("", "pg-standby-bin-")
	if err == nil {
		os.Chmod(dir, 0o755)
		binary = filepath.Join(dir, "pg-standby")
		args := []string{"build", "-race", "-o", binary, "."}
		if flag.Parse(); testing.Short() {
			args = slices.Delete(args, 1, 2) // the fast tier: a race build links and starts slowly
		}
		out, berr := exec.Command("go", args...).CombinedOutput()
		if berr != nil {
			fmt.Fprintf(os.Stderr, "build pg-standby: %v\n%s", berr, out)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// worker is one pg-standby process run as the instance's owner (postgres when root).
type worker struct {
	cmd    *exec.Cmd
	output lockedBuffer
}

// lockedBuffer is the worker's output, read by the test while exec's copying
// goroutine still writes it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func startWorker(t *testing.T, env []string, args ...string) *worker {
	t.Helper()
	w := &worker{cmd: exec.Command(binary, args...)}
	w.cmd.Env = append(os.Environ(), env...)
	w.cmd.Stdout, w.cmd.Stderr = &w.output, &w.output
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Fatal(err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		w.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	}
	if err := w.cmd.Start(); err != nil {
		t.Fatalf("start pg-standby %v: %v", args, err)
	}
	t.Cleanup(func() {
		if w.cmd.ProcessState == nil {
			w.cmd.Process.Kill()
			w.cmd.Wait()
		}
	})
	return w
}

// wait returns the exit status, or -N when killed by signal N.
func (w *worker) wait(t *testing.T) int {
	t.Helper()
	w.cmd.Wait()
	ws := w.cmd.ProcessState.Sys().(syscall.WaitStatus)
	if ws.Signaled() {
		return -int(ws.Signal())
	}
	return ws.ExitStatus()
}

func runWorker(t *testing.T, args ...string) (int, string) {
	t.Helper()
	w := startWorker(t, nil, args...)
	code := w.wait(t)
	return code, w.output.String()
}

// waiting marks t (a test, or one version's subtest) as one that mostly
// waits, on a throttled copy, a stall or a kill moment, and runs it in
// parallel (t.Parallel) with the others so marked. go test starts those
// after every other test of the package has ended, so the tests that
// measure time or change globals (TestWaitLatency swaps binary; byte
// counters about a second apart; a stop within a bound) still run alone.
// Only for tests with their own servers, ports, directories and bus.
func waiting(t *testing.T) {
	t.Helper()
	t.Parallel()
}

// initInstance runs pg-standby init for a new data directory.
func initInstance(t *testing.T, p *testpg.Server, extra ...string) string {
	t.Helper()
	return initInstanceConn(t, p.ConnString(), extra...)
}

// initInstanceConn is initInstance for a primary reached by conninfo.
func initInstanceConn(t *testing.T, conninfo string, extra ...string) string {
	t.Helper()
	dir := filepath.Join(testpg.TempDir(t), "standby")
	code, out := runWorker(t, append([]string{"init", "--pgdata", dir, "--primary-conninfo", conninfo, "--port", "1"}, extra...)...)
	if code != 0 {
		t.Fatalf("pg-standby init: status %d\n%s", code, out)
	}
	// The admin's edit of the instance's own pg_hba.conf (kept by the backup):
	// the tests connect to the standby as postgres from another uid.
	if err := os.WriteFile(filepath.Join(dir, "pg_hba.conf"), []byte("local all all trust\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	testpg.Chown(t, dir)
	return dir
}

// notifyListener collects sd_notify datagrams, one state block each.
type notifyListener struct {
	conn *net.UnixConn
	path string
	got  chan string
}

func listenNotify(t *testing.T) *notifyListener {
	t.Helper()
	path := filepath.Join(testpg.TempDir(t), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(path, 0o777)
	l := &notifyListener{conn: conn, path: path, got: make(chan string, 10000)}
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				close(l.got)
				return
			}
			l.got <- string(buf[:n])
		}
	}()
	t.Cleanup(func() { conn.Close() })
	return l
}

func (l *notifyListener) drain() []string {
	l.conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	var all []string
	for d := range l.got {
		all = append(all, d)
	}
	return all
}

// TestNotifySequence: the exact sd_notify conversation of a real backup.
func TestNotifySequence(t *testing.T) {
	testpg.ForEachVersion(t, func(t *testing.T, v testpg.Version) {
		testpg.Require(t)
		p := testpg.Start(t, testpg.Options{})
		p.Pgbench(t, "-i", "-s", "3", "-q")
		dir := initInstance(t, p, "--max-rate", "16384")
		l := listenNotify(t)
		w := startWorker(t, []string{"NOTIFY_SOCKET=" + l.path}, "run", "--pgdata", dir)
		if code := w.wait(t); code != 0 {
			t.Fatalf("run: status %d\n%s", code, w.output.String())
		}
		msgs := l.drain()
		t.Logf("%d datagrams:\n%s", len(msgs), strings.Join(msgs, "\n--\n"))
		if len(msgs) < 3 {
			t.Fatalf("only %d datagrams", len(msgs))
		}
		if last := msgs[len(msgs)-1]; !strings.HasPrefix(last, "READY=1\n") || !strings.Contains(last, "STATUS=standby ready") {
			t.Errorf("last datagram %q, want READY=1 with STATUS=standby ready", last)
		}
		var phases []string
		lastPct, extends, copying := -1, 0, 0
		for i, m := range msgs {
			if strings.Contains(m, "READY=1") && i != len(msgs)-1 {
				t.Errorf("READY=1 before the end, in datagram %d of %d", i, len(msgs))
			}
			for _, line := range strings.Split(m, "\n") {
				switch {
				case strings.HasPrefix(line, "EXTEND_TIMEOUT_USEC="):
					extends++
				case strings.HasPrefix(line, "STATUS=copying"):
					copying++
					var pct int
					if _, err := fmt.Sscanf(strings.SplitN(line, " (", 2)[1], "%d%%)", &pct); err == nil {
						if pct < lastPct {
							t.Errorf("progress went back: %d%% after %d%%", pct, lastPct)
						}
						lastPct = pct
					}
					if len(phases) == 0 || phases[len(phases)-1] != "copying" {
						phases = append(phases, "copying")
					}
				case strings.HasPrefix(line, "STATUS="):
					ph := strings.TrimPrefix(line, "STATUS=")
					if len(phases) == 0 || phases[len(phases)-1] != ph {
						phases = append(phases, ph)
					}
				}
			}
		}
		t.Logf("phases: %q", phases)
		if copying < 3 {
			t.Errorf("%d copying status updates, want several (about one a second)", copying)
		}
		if extends == 0 {
			t.Errorf("no EXTEND_TIMEOUT_USEC while bytes moved")
		}
		oracle.VerifyBackup(t, dir)
	})
}

// TestSIGTERMMidCopy: systemctl stop during the copy stops cleanly, leaves
// no temporary slot, and the instance resumes.
func TestSIGTERMMidCopy(t *testing.T) {
	waiting(t)
	testpg.ForEachVersion(t, func(t *testing.T, v testpg.Version) {
		waiting(t)
		testpg.Require(t)
		p := testpg.Start(t, testpg.Options{})
		p.Pgbench(t, "-i", "-s", "3", "-q")
		dir := initInstance(t, p, "--max-rate", "8192")
		l := listenNotify(t)
		w := startWorker(t, []string{"NOTIFY_SOCKET=" + l.path}, "run", "--pgdata", dir)
		deadline := time.After(2 * time.Minute)
		for copying := false; !copying; {
			select {
			case m := <-l.got:
				copying = strings.Contains(m, "STATUS=copying")
			case <-deadline:
				t.Fatalf("no copying status\n%s", w.output.String())
			}
		}
		if got := p.SQL(t, "SELECT count(*) FROM pg_replication_slots WHERE temporary"); got != "1" {
			t.Errorf("%s temporary slots during the backup, want 1", got)
		}
		w.cmd.Process.Signal(syscall.SIGTERM)
		if code := w.wait(t); code != -int(syscall.SIGTERM) {
			t.Errorf("after SIGTERM: status %d, want death by SIGTERM\n%s", code, w.output.String())
		}
		// A stop is said as one: not "backup failed: stopped by terminated".
		if out := w.output.String(); !strings.Contains(out, `msg="stopped; the instance resumes at the next start" instance=`+dir+` by="stopped by terminated"`) || strings.Contains(out, "backup failed") {
			t.Errorf("after SIGTERM the log says:\n%s", out)
		}
		msgs := l.drain()
		if len(msgs) == 0 || !strings.Contains(msgs[len(msgs)-1], "STOPPING=1") {
			t.Errorf("last notifications %q, want STOPPING=1", msgs)
		}
		p.WaitFor(t, "SELECT count(*) FROM pg_replication_slots", "0", 30*time.Second)
		for name, want := range map[string]bool{"basebackup.signal": true, "global/pg_control": false, "standby.signal": false} {
			if _, err := os.Lstat(filepath.Join(dir, name)); (err == nil) != want {
				t.Errorf("after stop: %s exists = %v, want %v", name, err == nil, want)
			}
		}
		if code, out := runWorker(t, "run", "--pgdata", dir); code != 0 {
			t.Fatalf("resumed run: status %d\n%s", code, out)
		}
		oracle.VerifyBackup(t, dir)
	})
}

// TestExitStatuses: permanent failures have the statuses the unit's
// RestartPreventExitStatus= lists; a finished standby is a quick 0.
func TestExitStatuses(t *testing.T) {
	testpg.ForEachVersion(t, func(t *testing.T, v testpg.Version) {
		testpg.Require(t)
		p := testpg.Start(t, testpg.Options{Auth: "scram-sha-256"})
		wrong := filepath.Join(testpg.TempDir(t), "wrong")
		if code, out := runWorker(t, "init", "--pgdata", wrong, "--primary-conninfo", p.ConnString()+" password=wrong", "--port", "1"); code != 0 {
			t.Fatalf("init: %d\n%s", code, out)
		}
		cases := []struct {
			name string
			args []string
			want int
		}{
			{"usage", []string{"run"}, exitUsage},
			{"wrong password", []string{"run", "--pgdata", wrong}, exitConfig},
			{"not an instance", []string{"run", "--pgdata", testpg.TempDir(t)}, exitRefused},
			{"init over a non-minimal directory", []string{"init", "--pgdata", p.DataDir, "--primary-conninfo", p.ConnString()}, exitRefused},
			{"init without conninfo", []string{"init", "--pgdata", filepath.Join(testpg.TempDir(t), "x")}, exitUsage},
			{"init pointing at itself", []string{"init", "--pgdata", filepath.Join(testpg.TempDir(t), "y"), "--primary-conninfo", "host=127.0.0.1 port=6543", "--port", "6543"}, exitConfig},
			{"init --check with a wrong password", []string{"init", "--check", "--pgdata", filepath.Join(testpg.TempDir(t), "z"), "--primary-conninfo", p.ConnString() + " password=wrong"}, exitConfig},
		}
		for _, c := range cases {
			code, out := runWorker(t, c.args...)
			if code != c.want {
				t.Errorf("%s: pg-standby %v: status %d, want %d\n%s", c.name, c.args, code, c.want, out)
			}
		}
		good := initInstance(t, p)
		if code, out := runWorker(t, "run", "--pgdata", good); code != 0 {
			t.Fatalf("run: %d\n%s", code, out)
		}
		start := time.Now()
		code, out := runWorker(t, "run", "--pgdata", good)
		if code != 0 || !strings.Contains(out, "already a standby") {
			t.Errorf("run on a finished standby: status %d, output %s", code, out)
		}
		t.Logf("no-op run on a finished standby took %s", time.Since(start))
	})
}

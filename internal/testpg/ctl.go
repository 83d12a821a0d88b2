package testpg

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// start runs pg_ctl start -w and remembers the postmaster's pid (also when
// pg_ctl fails, so that a half-started server can still be stopped).
func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return errors.New("server was stopped for good (Stop)")
	}
	args := []string{"start", "-w", "-t", "60", "-D", s.DataDir, "-l", s.logFile}
	if s.pgctlOpts != "" {
		args = append(args, "-o", s.pgctlOpts)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	_, err := s.v.runPG(ctx, "pg_ctl", args)
	if pid, perr := readPostmasterPID(s.DataDir); perr == nil {
		s.pid = pid
	}
	if err != nil {
		return err
	}
	if s.reaper == nil {
		r, rerr := startReaper(s.v, s.DataDir)
		if rerr != nil {
			return rerr
		}
		s.reaper = r
	}
	return nil
}

// pgctlStop runs pg_ctl stop with mode. Without a postmaster.pid there is
// nothing to stop.
func (s *Server) pgctlStop(mode string, timeout time.Duration) error {
	if _, err := os.Stat(filepath.Join(s.DataDir, "postmaster.pid")); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout+30*time.Second)
	defer cancel()
	secs := strconv.Itoa(int(timeout / time.Second))
	_, err := s.v.runPG(ctx, "pg_ctl", []string{"stop", "-D", s.DataDir, "-m", mode, "-w", "-t", secs})
	return err
}

// Restart stops the server with the given pg_ctl mode ("fast" or
// "immediate"; "smart" works too) and starts it again on the same port.
func (s *Server) Restart(t testing.TB, mode string) {
	t.Helper()
	switch mode {
	case "fast", "immediate", "smart":
	default:
		t.Fatalf("testpg: Restart mode %q: want \"fast\" or \"immediate\"", mode)
	}
	if err := s.pgctlStop(mode, 60*time.Second); err != nil {
		t.Fatalf("testpg: restart: %v", err)
	}
	if err := s.start(); err != nil {
		t.Fatalf("testpg: restart: %v\n--- server log tail ---\n%s", err, s.LogTail(30))
	}
}

// Stop stops the server: pg_ctl stop -m fast, then -m immediate, then signals
// to the postmaster. Idempotent; the server cannot be started again.
func (s *Server) Stop(t testing.TB) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return
	}
	s.stopped = true
	err := s.pgctlStop("fast", 30*time.Second)
	if err != nil {
		t.Logf("testpg: fast shutdown failed, trying immediate: %v", err)
		err = s.pgctlStop("immediate", 30*time.Second)
	}
	if err != nil {
		t.Logf("testpg: immediate shutdown failed, killing the postmaster: %v", err)
	}
	if err != nil || (s.pid > 0 && isPostmasterOf(s.pid, s.DataDir)) {
		err = s.killPostmaster()
	}
	if err != nil {
		t.Errorf("testpg: could not stop the server in %s: %v", s.DataDir, err)
	}
	if s.reaper != nil {
		s.reaper.close()
		s.reaper = nil
	}
}

// killPostmaster sends SIGQUIT (immediate shutdown), then SIGKILL, to the
// postmaster this Server started, after checking that the pid still is it.
func (s *Server) killPostmaster() error {
	pid := s.pid
	if p, err := readPostmasterPID(s.DataDir); err == nil {
		pid = p
	}
	if pid <= 0 || !isPostmasterOf(pid, s.DataDir) {
		return nil
	}
	for _, sig := range []syscall.Signal{syscall.SIGQUIT, syscall.SIGKILL} {
		if err := syscall.Kill(pid, sig); err != nil {
			if errors.Is(err, syscall.ESRCH) {
				return nil
			}
			return fmt.Errorf("kill %d: %w", pid, err)
		}
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			if !isPostmasterOf(pid, s.DataDir) {
				return nil
			}
		}
	}
	return fmt.Errorf("postmaster %d survived SIGKILL", pid)
}

func readPostmasterPID(dataDir string) (int, error) {
	b, err := os.ReadFile(filepath.Join(dataDir, "postmaster.pid"))
	if err != nil {
		return 0, fmt.Errorf("read postmaster.pid: %w", err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		return 0, fmt.Errorf("postmaster.pid: %w", err)
	}
	return pid, nil
}

// isPostmasterOf reports whether pid is a live (not zombie) postgres process
// whose command line names dataDir.
func isPostmasterOf(pid int, dataDir string) bool {
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || !bytes.Contains(cmdline, []byte(dataDir)) {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	if i := bytes.LastIndexByte(stat, ')'); i >= 0 && i+2 < len(stat) && stat[i+2] == 'Z' {
		return false
	}
	return true
}

// LogTail returns the last n lines of the server log.
func (s *Server) LogTail(n int) string {
	b, err := os.ReadFile(s.logFile)
	if err != nil {
		return fmt.Sprintf("(cannot read server log: %v)", err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func (s *Server) logSize() int64 {
	fi, err := os.Stat(s.logFile)
	if err != nil {
		return 0
	}
	return fi.Size()
}

func (s *Server) logSince(off int64) string {
	b, err := os.ReadFile(s.logFile)
	if err != nil {
		return fmt.Sprintf("(cannot read server log: %v)", err)
	}
	if off > int64(len(b)) {
		off = 0
	}
	return string(b[off:])
}

// reaper is a watchdog process that stops the server (pg_ctl stop -m
// immediate) when its stdin reaches EOF: when Stop closes it, or when the test
// binary dies without running its cleanups (-timeout panic, SIGKILL).
type reaper struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	done  chan struct{}
}

func startReaper(v Version, dataDir string) (*reaper, error) {
	// The pg_ctl command line is built like the server's (as postgres, in
	// the rootfs if any); the shell runs as the user that command needs.
	stop, err := v.pgCommand(context.Background(), "pg_ctl", []string{"stop", "-D", dataDir, "-m", "immediate", "-w", "-t", "30"})
	if err != nil {
		return nil, err
	}
	script := `read -r _; exec "$@" >/dev/null 2>&1`
	cmd := exec.Command("/bin/sh", append([]string{"-c", script, "sh"}, stop.Args...)...)
	cmd.Dir, cmd.Env, cmd.SysProcAttr = stop.Dir, stop.Env, stop.SysProcAttr
	cmd.WaitDelay = 0
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("watchdog: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start watchdog: %w", err)
	}
	r := &reaper{cmd: cmd, stdin: stdin, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(r.done)
	}()
	return r, nil
}

// close lets the watchdog run its (by now redundant) pg_ctl stop and exit.
func (r *reaper) close() {
	_ = r.stdin.Close()
	select {
	case <-r.done:
	case <-time.After(45 * time.Second):
		_ = r.cmd.Process.Kill()
		<-r.done
	}
}

// Package testbus starts a private system-type dbus-daemon for tests, so no
// test ever talks to the machine's real system bus.
//
// A package calls Start once from TestMain (or per test) and sets
// DBUS_SYSTEM_BUS_ADDRESS to the bus's Address for itself and the processes
// it starts. The bus has the default policy of Debian's system.conf (deny
// owning names and sending method calls unless a policy file allows it) plus
// the policy files given, or an allow-all policy.
package testbus

import (
	"bufio"
	"errors"
	"fmt"
	"html"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Options configures Start.
type Options struct {
	// Policies are bus configuration files included after the default
	// policy, e.g. the project's packaging/dbus/pg-standby.conf.
	Policies []string
	// AllowAll replaces the default policy: anyone may own any name and call
	// anything (for testing a server's own checks behind the policy).
	AllowAll bool
}

// Bus is a running private dbus-daemon.
type Bus struct {
	// Address is its address, for DBUS_SYSTEM_BUS_ADDRESS.
	Address string
	// Socket is the path of its listening socket.
	Socket string
	dir    string
	cmd    *exec.Cmd
	conf   string
}

// The default policy of a system bus: the holes for names and method calls
// are punched by the policy files, as in /usr/share/dbus-1/system.conf.
const defaultPolicy = `<policy context="default">
  <allow user="*"/>
  <deny own="*"/>
  <deny send_type="method_call"/>
  <allow send_type="signal"/>
  <allow send_requested_reply="true" send_type="method_return"/>
  <allow send_requested_reply="true" send_type="error"/>
  <allow receive_type="method_call"/>
  <allow receive_type="method_return"/>
  <allow receive_type="error"/>
  <allow receive_type="signal"/>
  <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
  <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Introspectable"/>
  <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Properties"/>
 </policy>
 <policy user="root">
  <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Monitoring"/>
 </policy>`

const allowAllPolicy = `<policy context="default">
  <allow user="*"/><allow own="*"/><allow send_type="method_call"/>
  <allow send_destination="*"/><allow receive_sender="*"/>
 </policy>`

// Start runs a dbus-daemon listening on a socket in a new directory that
// every user can reach (the tests' workers run as postgres, callers as
// nobody). Stop it with Stop; Restart replaces it by a new daemon on the
// same socket, as a daemon restart on a real machine does.
func Start(opt Options) (*Bus, error) {
	if _, err := exec.LookPath("dbus-daemon"); err != nil {
		return nil, fmt.Errorf("dbus-daemon not found (Debian package dbus): %w", err)
	}
	dir, err := os.MkdirTemp("", "testbus-")
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	b := &Bus{dir: dir, Socket: filepath.Join(dir, "system_bus_socket"), conf: filepath.Join(dir, "system.conf")}
	b.Address = "unix:path=" + b.Socket
	policy := defaultPolicy
	if opt.AllowAll {
		policy = allowAllPolicy
	}
	var includes strings.Builder
	for _, p := range opt.Policies {
		abs, err := filepath.Abs(p)
		if err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		fmt.Fprintf(&includes, " <include>%s</include>\n", html.EscapeString(abs))
	}
	conf := fmt.Sprintf(`<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
 <type>system</type>
 <listen>unix:path=%s</listen>
 <auth>EXTERNAL</auth>
 %s
%s</busconfig>
`, html.EscapeString(b.Socket), policy, includes.String())
	if err := os.WriteFile(b.conf, []byte(conf), 0o644); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if err := b.start(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return b, nil
}

// start runs the daemon in the foreground of a child process (so it dies
// with the test binary's cleanup, not as an orphan) and waits at most 10 s
// for the address it prints.
func (b *Bus) start() error {
	os.Remove(b.Socket)
	cmd := exec.Command("dbus-daemon", "--config-file="+b.conf, "--nofork", "--nopidfile", "--print-address=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start dbus-daemon: %w", err)
	}
	got := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(out).ReadString('\n')
		got <- strings.TrimSpace(line)
	}()
	select {
	case addr := <-got:
		if addr == "" {
			cmd.Process.Kill()
			cmd.Wait()
			return fmt.Errorf("dbus-daemon printed no address: %s", stderr.String())
		}
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		cmd.Wait()
		return errors.New("dbus-daemon did not print its address within 10s")
	}
	b.cmd = cmd
	return nil
}

// PID is the daemon's process id.
func (b *Bus) PID() int { return b.cmd.Process.Pid }

// Restart kills the daemon (as a crash or a restart would: every client
// loses its connection and names) and starts a new one on the same socket
// after pause.
func (b *Bus) Restart(pause time.Duration) error {
	b.kill()
	time.Sleep(pause)
	return b.start()
}

func (b *Bus) kill() {
	if b.cmd != nil {
		b.cmd.Process.Kill()
		b.cmd.Wait()
		b.cmd = nil
	}
}

// Stop kills the daemon and removes its directory.
func (b *Bus) Stop() {
	b.kill()
	os.RemoveAll(b.dir)
}

// Env is the environment entry that points a process at this bus.
func (b *Bus) Env() string { return "DBUS_SYSTEM_BUS_ADDRESS=" + b.Address }

// realSockets are the real system bus' socket paths.
var realSockets = []string{"/run/dbus/system_bus_socket", "/var/run/dbus/system_bus_socket"}

// Guard returns an error unless DBUS_SYSTEM_BUS_ADDRESS names a bus other
// than the machine's real system bus: an unset variable means the real one
// to every D-Bus library. Tests call it before they connect.
func Guard() error {
	addr := os.Getenv("DBUS_SYSTEM_BUS_ADDRESS")
	if addr == "" {
		return errors.New("testbus: DBUS_SYSTEM_BUS_ADDRESS is unset, which means the real system bus; start a private bus with testbus.Start")
	}
	for _, s := range realSockets {
		if strings.Contains(addr, "path="+s) {
			return fmt.Errorf("testbus: DBUS_SYSTEM_BUS_ADDRESS=%s is the real system bus; refusing", addr)
		}
	}
	return nil
}

// User returns the uid and gid of a user name, for running a caller as
// another user (exec.Cmd's SysProcAttr.Credential).
func User(name string) (uid, gid uint32, err error) {
	u, err := user.Lookup(name)
	if err != nil {
		return 0, 0, err
	}
	id, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return 0, 0, fmt.Errorf("uid of %s: %w", name, err)
	}
	g, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return 0, 0, fmt.Errorf("gid of %s: %w", name, err)
	}
	return uint32(id), uint32(g), nil
}

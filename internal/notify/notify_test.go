package notify_test

import (
	"bytes"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pg-standby/pg-standby/internal/notify"
)

// listen opens a unixgram socket in a temporary directory, the way systemd
// offers $NOTIFY_SOCKET, and points the environment at it.
func listen(t *testing.T) *net.UnixConn {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatalf("listen %s: %v", path, err)
	}
	t.Cleanup(func() { conn.Close() })
	t.Setenv("NOTIFY_SOCKET", path)
	return conn
}

// recv returns the next datagram. Sends on a local datagram socket are queued
// at the receiver before Write returns, so a short deadline is enough.
func recv(t *testing.T, conn *net.UnixConn) string {
	t.Helper()
	buf := make([]byte, 4096)
	if err := conn.SetReadDeadline(time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	n, err := conn.Read(buf)
	if err != nil {
		t.Fatalf("read notification: %v", err)
	}
	return string(buf[:n])
}

// none fails if a datagram is waiting.
func none(t *testing.T, conn *net.UnixConn) {
	t.Helper()
	buf := make([]byte, 4096)
	if err := conn.SetReadDeadline(time.Now().Add(20 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if n, err := conn.Read(buf); err == nil {
		t.Fatalf("unexpected notification %q", buf[:n])
	}
}

func logger() (*slog.Logger, *bytes.Buffer) {
	var buf bytes.Buffer
	return slog.New(slog.NewTextHandler(&buf, nil)), &buf
}

func TestNewUnsetsEnvironment(t *testing.T) {
	listen(t)
	t.Setenv("WATCHDOG_USEC", "30000000")
	t.Setenv("WATCHDOG_PID", strconv.Itoa(os.Getpid()))

	n := notify.New(nil)

	if !n.Enabled() {
		t.Error("Enabled() = false, want true with NOTIFY_SOCKET set")
	}
	if got, want := n.WatchdogTimeout(), 30*time.Second; got != want {
		t.Errorf("WatchdogTimeout() = %v, want %v", got, want)
	}
	for _, name := range []string{"NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"} {
		if v, ok := os.LookupEnv(name); ok {
			t.Errorf("after New, %s=%q is still set, want unset", name, v)
		}
	}
}

func TestMessages(t *testing.T) {
	tests := []struct {
		name string
		call func(*notify.Notifier)
		want string
	}{
		{"ready", func(n *notify.Notifier) { n.Ready("standby ready") }, "READY=1\nSTATUS=standby ready"},
		{"ready without status", func(n *notify.Notifier) { n.Ready("") }, "READY=1"},
		{"stopping", func(n *notify.Notifier) { n.Stopping("stopping: signal") }, "STOPPING=1\nSTATUS=stopping: signal"},
		{"status", func(n *notify.Notifier) { n.Status("copying") }, "STATUS=copying"},
		{"status clears", func(n *notify.Notifier) { n.Status("") }, "STATUS="},
		{"status one line", func(n *notify.Notifier) { n.Status("a\nREADY=1\r\nb") }, "STATUS=a READY=1 b"},
		{"status valid utf-8", func(n *notify.Notifier) { n.Status("a\xffb") }, "STATUS=a\uFFFDb"},
		{"extend", func(n *notify.Notifier) { n.ExtendTimeout(90 * time.Second) }, "EXTEND_TIMEOUT_USEC=90000000"},
		{"extend rounds up", func(n *notify.Notifier) { n.ExtendTimeout(1500 * time.Nanosecond) }, "EXTEND_TIMEOUT_USEC=2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn := listen(t)
			n := notify.New(nil)
			tt.call(n)
			if got := recv(t, conn); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
			none(t, conn)
		})
	}
}

func TestExtendTimeoutZeroSendsNothing(t *testing.T) {
	conn := listen(t)
	n := notify.New(nil)
	n.ExtendTimeout(0)
	n.ExtendTimeout(-time.Second)
	none(t, conn)
}

func TestAbstractSocket(t *testing.T) {
	name := "@pg-standby-notify-test-" + strconv.Itoa(os.Getpid())
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Skipf("abstract unix sockets unavailable: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	t.Setenv("NOTIFY_SOCKET", name)

	notify.New(nil).Ready("up")

	if got, want := recv(t, conn), "READY=1\nSTATUS=up"; got != want {
		t.Errorf("via %s: got %q, want %q", name, got, want)
	}
}

func TestNoSocketIsSilent(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	log, buf := logger()
	n := notify.New(log)

	if n.Enabled() {
		t.Error("Enabled() = true without NOTIFY_SOCKET, want false")
	}
	n.Ready("x")
	n.Status("x")
	n.Stopping("x")
	n.ExtendTimeout(time.Minute)
	n.Sink(time.Minute).Report(snap(time.Now(), "copying", 1))
	if buf.Len() != 0 {
		t.Errorf("logged %q, want nothing", buf)
	}
}

func TestUnsupportedAddress(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "vsock:2:1234")
	log, buf := logger()
	n := notify.New(log)

	if n.Enabled() {
		t.Error("Enabled() = true for a vsock address, want false")
	}
	n.Ready("x")
	if got := strings.Count(buf.String(), "\n"); got != 1 {
		t.Errorf("logged %d lines, want 1: %q", got, buf)
	}
}

func TestUnreachableLogsOnce(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", filepath.Join(t.TempDir(), "missing.sock"))
	log, buf := logger()
	n := notify.New(log)

	if !n.Enabled() {
		t.Fatal("Enabled() = false, want true: a socket was given")
	}
	n.Ready("x")
	n.Status("y")
	n.Stopping("z")
	n.ExtendTimeout(time.Minute)
	k := n.Sink(time.Minute)
	start := time.Now()
	for i := range 5 {
		k.Report(snap(start.Add(time.Duration(i)*time.Second), "copying", int64(i)))
	}

	out := buf.String()
	if got := strings.Count(out, "\n"); got != 1 {
		t.Fatalf("logged %d lines, want 1: %q", got, out)
	}
	if !strings.Contains(out, "level=WARN") || !strings.Contains(out, "missing.sock") {
		t.Errorf("log line %q, want a warning naming the socket", out)
	}
}

func TestWatchdogOtherPID(t *testing.T) {
	listen(t)
	t.Setenv("WATCHDOG_USEC", "30000000")
	t.Setenv("WATCHDOG_PID", strconv.Itoa(os.Getpid()+1))

	if got := notify.New(nil).WatchdogTimeout(); got != 0 {
		t.Errorf("WATCHDOG_PID of another process: WatchdogTimeout() = %v, want 0", got)
	}
}

func TestWatchdogMalformedLogged(t *testing.T) {
	listen(t)
	t.Setenv("WATCHDOG_USEC", "soon")
	log, buf := logger()

	if got := notify.New(log).WatchdogTimeout(); got != 0 {
		t.Errorf("WATCHDOG_USEC=soon: WatchdogTimeout() = %v, want 0", got)
	}
	if !strings.Contains(buf.String(), "WATCHDOG_USEC") {
		t.Errorf("log %q, want the parse error", buf)
	}
}

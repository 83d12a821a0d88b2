// Package notify tells systemd how the worker is doing, with the sd_notify
// protocol of a Type=notify unit (sd_notify(3),
// https://www.freedesktop.org/software/systemd/man/latest/sd_notify.html).
//
// A notification is one datagram on the AF_UNIX socket named by
// $NOTIFY_SOCKET: newline-separated VARIABLE=value assignments, like an
// environment block. Without $NOTIFY_SOCKET the process is not supervised and
// every call here is a silent no-op. A failed send is logged once and never
// reported to the caller: systemd being unreachable must not fail a backup.
package notify

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
)

// sendTimeout bounds one send. The notify socket is a datagram socket whose
// queue systemd drains promptly; a full queue means PID 1 is busy, and then
// dropping a status update is better than holding up the caller.
const sendTimeout = 2 * time.Second

// Notifier sends state changes to the service manager. Its methods are safe
// for concurrent use and never fail: without a socket they do nothing, and a
// failed send is logged once.
type Notifier struct {
	log      *slog.Logger
	addr     *net.UnixAddr // nil: not supervised
	watchdog time.Duration // 0: no watchdog for this process
	failed   sync.Once     // logs the first failed send
}

// New captures the notification socket and the watchdog settings from the
// environment and unsets $NOTIFY_SOCKET, $WATCHDOG_USEC and $WATCHDOG_PID, so
// that child processes (pg_ctl, restore_command, …) never inherit them and
// never speak for this unit. Only the main process may notify a unit with
// the default NotifyAccess=main.
//
// $NOTIFY_SOCKET is a file-system path or, when it starts with '@', an
// abstract socket name; other forms (such as vsock:…) are logged and ignored.
// $WATCHDOG_USEC is honoured only when $WATCHDOG_PID is unset or names this
// process (daemon.SdWatchdogEnabled). Failures go to log, nil meaning
// slog.Default().
func New(log *slog.Logger) *Notifier {
	if log == nil {
		log = slog.Default()
	}
	n := &Notifier{log: log}

	socket := os.Getenv("NOTIFY_SOCKET")
	if err := os.Unsetenv("NOTIFY_SOCKET"); err != nil {
		log.Warn("cannot unset NOTIFY_SOCKET", "error", err)
	}
	watchdog, err := daemon.SdWatchdogEnabled(true)
	if err != nil {
		log.Warn("ignoring systemd watchdog settings", "error", err)
		watchdog = 0
	}

	switch {
	case socket == "":
		return n
	case socket[0] == '/' || socket[0] == '@':
		// Go's net package maps a leading '@' to the abstract namespace
		// (a leading NUL byte in sun_path) on Linux.
		n.addr = &net.UnixAddr{Name: socket, Net: "unixgram"}
		n.watchdog = watchdog
	default:
		log.Warn("ignoring unsupported NOTIFY_SOCKET address", "address", socket)
	}
	return n
}

// Enabled reports whether a notification socket was given, that is whether
// the process runs as a Type=notify service (or under systemd-notify --run).
func (n *Notifier) Enabled() bool { return n.addr != nil }

// WatchdogTimeout returns WatchdogSec= of the unit when the watchdog is enabled for
// this process, else 0. systemd recommends a WATCHDOG=1 ping every half of it,
// so a Sink's reporter interval must be shorter than WatchdogTimeout()/2.
func (n *Notifier) WatchdogTimeout() time.Duration { return n.watchdog }

// Status sends STATUS=text: a free-form line that systemctl status shows
// beside the unit. An empty text clears it.
func (n *Notifier) Status(text string) {
	n.send(status(text))
}

// Ready sends READY=1 and, unless status is empty, STATUS=status in the same
// datagram, so that systemctl never shows the unit started with a stale
// status. READY=1 ends the start-up phase of a Type=notify unit: its start
// job completes, units ordered After= it may start, and TimeoutStartSec= no
// longer applies.
func (n *Notifier) Ready(status string) {
	n.send(withStatus(daemon.SdNotifyReady, status))
}

// Stopping sends STOPPING=1 and, unless status is empty, STATUS=status in the
// same datagram. STOPPING=1 tells systemd that the service is beginning its
// shutdown, so that TimeoutStopSec= rather than TimeoutStartSec= applies.
func (n *Notifier) Stopping(status string) {
	n.send(withStatus(daemon.SdNotifyStopping, status))
}

// ExtendTimeout sends EXTEND_TIMEOUT_USEC=d in whole microseconds, rounded up.
// It asks systemd to wait at least d longer in the current phase (start-up,
// runtime or shutdown): the service must send another extension or complete
// the phase within d. An extension never shortens the unit's own
// TimeoutStartSec=, RuntimeMaxSec= or TimeoutStopSec=; it only lets the
// service run past them. A d under one microsecond sends nothing.
func (n *Notifier) ExtendTimeout(d time.Duration) {
	if a := extendTimeout(d); a != "" {
		n.send(a)
	}
}

// status returns the STATUS= assignment for text. A value cannot span lines
// (a newline would start the next assignment), and systemd ignores a STATUS=
// that is not valid UTF-8, so both are repaired rather than lost.
func status(text string) string {
	text = strings.ToValidUTF8(text, "\uFFFD")
	text = strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ").Replace(text)
	return "STATUS=" + text
}

func withStatus(state, text string) string {
	if text == "" {
		return state
	}
	return state + "\n" + status(text)
}

func extendTimeout(d time.Duration) string {
	usec := (d + time.Microsecond - 1) / time.Microsecond
	if usec <= 0 {
		return ""
	}
	return "EXTEND_TIMEOUT_USEC=" + strconv.FormatInt(int64(usec), 10)
}

// send writes state as one datagram to the captured socket.
//
// daemon.SdNotify cannot be used: it reads $NOTIFY_SOCKET at every call, and
// New has unset it. Setting it again around each call would reopen the window
// New closes (a child started meanwhile by another goroutine inherits it) and
// would write the process environment from several goroutines. Dialling the
// captured address is what SdNotify does anyway, so this is the same protocol
// without the environment. A socket is dialled per message, as SdNotify does,
// so the Notifier holds no descriptor and needs no Close.
func (n *Notifier) send(state string) {
	if n.addr == nil {
		return
	}
	if err := n.write(state); err != nil {
		n.failed.Do(func() {
			n.log.Warn("cannot notify systemd, continuing without it",
				"socket", n.addr.Name, "error", err)
		})
	}
}

func (n *Notifier) write(state string) error {
	conn, err := net.DialUnix("unixgram", nil, n.addr)
	if err != nil {
		return fmt.Errorf("dial notify socket: %w", err)
	}
	defer conn.Close()
	if err := conn.SetWriteDeadline(time.Now().Add(sendTimeout)); err != nil {
		return fmt.Errorf("set notify deadline: %w", err)
	}
	if _, err := conn.Write([]byte(state)); err != nil {
		return fmt.Errorf("send notification: %w", err)
	}
	return nil
}

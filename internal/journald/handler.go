// Package journald logs to the systemd journal with structured fields, and
// logs backup progress without flooding it.
//
// Under systemd, stderr is usually a stream to journald that turns each line
// into an entry with MESSAGE= only. The journal's native protocol (a datagram
// of FIELD=value pairs on /run/systemd/journal/socket, systemd-journald(8))
// keeps attributes as fields that journalctl can match, such as
// journalctl PG_STANDBY_INSTANCE=main PG_STANDBY_PHASE=copying. A process
// upgrades to it only when its stderr is that stream, which $JOURNAL_STREAM
// tells (systemd.exec(5)): under a terminal, a pipe or a redirection the
// output stays on stderr.
package journald

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"runtime"
	"strconv"
	"sync"

	"github.com/coreos/go-systemd/v22/journal"
)

// journalEnabled reports whether the journal's native socket accepts
// datagrams; a variable so that tests can pretend it does.
var journalEnabled = journal.Enabled

// NewHandler returns the slog.Handler of the worker for instance.
//
// When stderr is connected to journald ($JOURNAL_STREAM names the device and
// inode of stderr, as sd_journal_stream_fd(3) and systemd.exec(5) describe)
// and the native socket is available, each record becomes one journal entry
// sent with journal.Send:
//
//   - MESSAGE= is the record's message;
//   - PRIORITY= comes from the level: Error and above 3 (err), Warn 4
//     (warning), Info 6 (info), below Info 7 (debug);
//   - each attribute becomes PG_STANDBY_<KEY>, the key in upper snake case
//     ("bytes_done" and "bytesDone" give PG_STANDBY_BYTES_DONE, "error" gives
//     PG_STANDBY_ERROR); groups prefix their attributes' keys
//     (PG_STANDBY_<GROUP>_<KEY>). Names are limited to A-Z, 0-9 and '_' and to
//     64 bytes, as journald drops other fields; values are not formatted into
//     the message;
//   - PG_STANDBY_INSTANCE=instance is on every entry and no attribute
//     overrides it;
//   - CODE_FILE=, CODE_LINE= and CODE_FUNC= name the caller, as
//     sd_journal_send(3) adds them for C programs.
//
// When a send fails (journald restarting, an oversized entry), the record is
// written to stderr as text instead and the first failure is noted there.
//
// Otherwise NewHandler returns slog's TextHandler on stderr, with an instance
// attribute. level nil means slog.LevelInfo.
func NewHandler(instance string, level slog.Leveler) slog.Handler {
	return NewHandlerTo(os.Stderr, instance, level)
}

// NewHandlerTo is NewHandler with the text (when not the journal) written
// to w instead of stderr: a progress.Terminal on a terminal.
func NewHandlerTo(w io.Writer, instance string, level slog.Leveler) slog.Handler {
	text := newTextHandler(w, instance, level)
	if !stderrIsJournal() {
		return text
	}
	return newJournalHandler(instance, level, journal.Send, text)
}

// stderrIsJournal reports whether stderr is journald's stream and the native
// socket is there too. A malformed $JOURNAL_STREAM counts as "no".
func stderrIsJournal() bool {
	ok, err := journal.StderrIsJournalStream()
	return err == nil && ok && journalEnabled()
}

func newTextHandler(w io.Writer, instance string, level slog.Leveler) slog.Handler {
	h := slog.NewTextHandler(w, &slog.HandlerOptions{Level: level})
	return h.WithAttrs([]slog.Attr{slog.String("instance", instance)})
}

// sendFunc is the signature of journal.Send.
type sendFunc func(message string, priority journal.Priority, vars map[string]string) error

// handler writes records to the journal as structured entries. It is
// immutable after construction, so safe for concurrent use.
type handler struct {
	*common
	fields []field      // from WithAttrs, names complete
	prefix string       // from WithGroup: "GROUP_" segments, after the package prefix
	text   slog.Handler // the same attributes and groups, for when a send fails
}

// common is what all handlers derived from one NewHandler share.
type common struct {
	instance string
	level    slog.Leveler
	send     sendFunc
	root     slog.Handler // the text handler without attributes or groups, for the failure note
	failed   sync.Once
}

func newJournalHandler(instance string, level slog.Leveler, send sendFunc, text slog.Handler) *handler {
	return &handler{
		common: &common{instance: instance, level: level, send: send, root: text},
		text:   text,
	}
}

// Enabled implements slog.Handler.
func (h *handler) Enabled(_ context.Context, l slog.Level) bool {
	floor := slog.LevelInfo
	if h.level != nil {
		floor = h.level.Level()
	}
	return l >= floor
}

// WithAttrs implements slog.Handler.
func (h *handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	if len(attrs) == 0 {
		return h
	}
	h2 := *h
	h2.fields = make([]field, len(h.fields), len(h.fields)+len(attrs))
	copy(h2.fields, h.fields)
	for _, a := range attrs {
		h2.fields = appendAttr(h2.fields, h.prefix, a)
	}
	h2.text = h.text.WithAttrs(attrs)
	return &h2
}

// WithGroup implements slog.Handler.
func (h *handler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	h2 := *h
	h2.prefix = h.prefix + groupPrefix(name)
	h2.text = h.text.WithGroup(name)
	return &h2
}

// Handle implements slog.Handler. It returns an error only when the record
// reached neither the journal nor stderr.
func (h *handler) Handle(ctx context.Context, r slog.Record) error {
	fields := h.fields
	if r.NumAttrs() > 0 {
		fields = make([]field, len(h.fields), len(h.fields)+r.NumAttrs())
		copy(fields, h.fields)
		r.Attrs(func(a slog.Attr) bool {
			fields = appendAttr(fields, h.prefix, a)
			return true
		})
	}

	vars := make(map[string]string, len(fields)+4)
	for _, f := range fields {
		vars[f.name] = f.value // a later attribute wins, as in a map
	}
	if r.PC != 0 {
		frame, _ := runtime.CallersFrames([]uintptr{r.PC}).Next()
		if frame.File != "" {
			vars["CODE_FILE"] = frame.File
			vars["CODE_LINE"] = strconv.Itoa(frame.Line)
		}
		if frame.Function != "" {
			vars["CODE_FUNC"] = frame.Function
		}
	}
	vars[fieldPrefix+"INSTANCE"] = h.instance

	err := h.send(r.Message, priority(r.Level), vars)
	if err == nil {
		return nil
	}
	var noteErr error
	h.failed.Do(func() {
		note := slog.NewRecord(r.Time, slog.LevelWarn, "cannot write to the journal, logging to stderr", 0)
		note.AddAttrs(slog.Any("error", err))
		noteErr = h.root.Handle(ctx, note)
	})
	return errors.Join(noteErr, h.text.Handle(ctx, r))
}

// priority maps a slog level to a syslog priority, as PRIORITY= expects.
func priority(l slog.Level) journal.Priority {
	switch {
	case l >= slog.LevelError:
		return journal.PriErr
	case l >= slog.LevelWarn:
		return journal.PriWarning
	case l >= slog.LevelInfo:
		return journal.PriInfo
	default:
		return journal.PriDebug
	}
}

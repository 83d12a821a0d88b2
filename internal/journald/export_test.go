package journald

import (
	"io"
	"log/slog"
	"testing"
)

// SendFunc is the signature of journal.Send.
type SendFunc = sendFunc

// NewJournalHandler returns the journal handler of NewHandler with send in
// place of journal.Send and its text fallback writing to w.
func NewJournalHandler(instance string, level slog.Leveler, send SendFunc, w io.Writer) slog.Handler {
	return newJournalHandler(instance, level, send, newTextHandler(w, instance, level))
}

// IsJournal reports whether h sends to the journal.
func IsJournal(h slog.Handler) bool {
	_, ok := h.(*handler)
	return ok
}

// PretendJournalEnabled makes NewHandler find the journal's native socket
// until the test ends.
func PretendJournalEnabled(t testing.TB) {
	old := journalEnabled
	journalEnabled = func() bool { return true }
	t.Cleanup(func() { journalEnabled = old })
}

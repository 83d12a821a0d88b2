package journald_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coreos/go-systemd/v22/journal"

	"github.com/pg-standby/pg-standby/internal/journald"
)

type entry struct {
	msg  string
	pri  journal.Priority
	vars map[string]string
}

// recorder stands in for journal.Send.
type recorder struct {
	mu      sync.Mutex
	entries []entry
	err     error
}

func (r *recorder) send(msg string, pri journal.Priority, vars map[string]string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.entries = append(r.entries, entry{msg, pri, maps.Clone(vars)})
	return r.err
}

func (r *recorder) take() []entry {
	r.mu.Lock()
	defer r.mu.Unlock()
	e := r.entries
	r.entries = nil
	return e
}

// withoutCode drops the CODE_* fields, which name lines of this file.
func withoutCode(vars map[string]string) map[string]string {
	out := maps.Clone(vars)
	for k := range out {
		if strings.HasPrefix(k, "CODE_") {
			delete(out, k)
		}
	}
	return out
}

type point struct{ x, y int }

func (p point) LogValue() slog.Value { return slog.StringValue(fmt.Sprintf("%d,%d", p.x, p.y)) }

func TestJournalFields(t *testing.T) {
	when := time.Date(2025, 3, 1, 12, 0, 0, 500, time.UTC)
	long := strings.Repeat("K", 70)
	tests := []struct {
		name    string
		log     func(*slog.Logger)
		wantMsg string
		wantPri journal.Priority
		want    map[string]string // besides PG_STANDBY_INSTANCE=main
	}{
		{
			name:    "message only",
			log:     func(l *slog.Logger) { l.Info("hello") },
			wantMsg: "hello", wantPri: journal.PriInfo,
		},
		{
			name:    "debug",
			log:     func(l *slog.Logger) { l.Debug("d") },
			wantMsg: "d", wantPri: journal.PriDebug,
		},
		{
			name:    "warn",
			log:     func(l *slog.Logger) { l.Warn("w") },
			wantMsg: "w", wantPri: journal.PriWarning,
		},
		{
			name:    "error",
			log:     func(l *slog.Logger) { l.Error("e", "error", errors.New("connection refused")) },
			wantMsg: "e", wantPri: journal.PriErr,
			want: map[string]string{"PG_STANDBY_ERROR": "connection refused"},
		},
		{
			name:    "above error",
			log:     func(l *slog.Logger) { l.Log(t.Context(), slog.LevelError+4, "x") },
			wantMsg: "x", wantPri: journal.PriErr,
		},
		{
			name: "values",
			log: func(l *slog.Logger) {
				l.Info("v", "bytes_done", int64(1<<40), "ok", true, "ratio", 0.5,
					"took", 1500*time.Millisecond, "at", when, "where", point{1, 2},
					"text", "two\nlines")
			},
			wantMsg: "v", wantPri: journal.PriInfo,
			want: map[string]string{
				"PG_STANDBY_BYTES_DONE": "1099511627776",
				"PG_STANDBY_OK":         "true",
				"PG_STANDBY_RATIO":      "0.5",
				"PG_STANDBY_TOOK":       "1.5s",
				"PG_STANDBY_AT":         "2025-03-01T12:00:00.0000005Z",
				"PG_STANDBY_WHERE":      "1,2",
				"PG_STANDBY_TEXT":       "two\nlines",
			},
		},
		{
			name: "keys sanitized",
			log: func(l *slog.Logger) {
				l.Info("k", "walTo", 1, "x-y.z", 2, "_private", 3, "a__b", 4, "größe", 5, long, 6)
			},
			wantMsg: "k", wantPri: journal.PriInfo,
			want: map[string]string{
				"PG_STANDBY_WAL_TO":         "1",
				"PG_STANDBY_X_Y_Z":          "2",
				"PG_STANDBY_PRIVATE":        "3",
				"PG_STANDBY_A_B":            "4",
				"PG_STANDBY_GR_E":           "5",
				("PG_STANDBY_" + long)[:64]: "6",
			},
		},
		{
			name:    "instance not overridden",
			log:     func(l *slog.Logger) { l.Info("i", "instance", "other") },
			wantMsg: "i", wantPri: journal.PriInfo,
		},
		{
			name: "with attrs and groups",
			log: func(l *slog.Logger) {
				l.With("attempt", 2).WithGroup("primary").With("host", "db1").
					Info("g", "port", 5432, slog.Group("tls", "mode", "verify-full"))
			},
			wantMsg: "g", wantPri: journal.PriInfo,
			want: map[string]string{
				"PG_STANDBY_ATTEMPT":          "2",
				"PG_STANDBY_PRIMARY_HOST":     "db1",
				"PG_STANDBY_PRIMARY_PORT":     "5432",
				"PG_STANDBY_PRIMARY_TLS_MODE": "verify-full",
			},
		},
		{
			name: "empty groups",
			log: func(l *slog.Logger) {
				l.WithGroup("").Info("e", slog.Group("", "inline", 1), slog.Group("none"), slog.Attr{})
			},
			wantMsg: "e", wantPri: journal.PriInfo,
			want: map[string]string{"PG_STANDBY_INLINE": "1"},
		},
		{
			name:    "later attribute wins",
			log:     func(l *slog.Logger) { l.With("phase", "a").Info("p", "phase", "b") },
			wantMsg: "p", wantPri: journal.PriInfo,
			want: map[string]string{"PG_STANDBY_PHASE": "b"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var rec recorder
			var stderr bytes.Buffer
			log := slog.New(journald.NewJournalHandler("main", slog.LevelDebug, rec.send, &stderr))

			tt.log(log)

			got := rec.take()
			if len(got) != 1 {
				t.Fatalf("sent %d entries, want 1", len(got))
			}
			e := got[0]
			if e.msg != tt.wantMsg || e.pri != tt.wantPri {
				t.Errorf("MESSAGE=%q PRIORITY=%d, want %q and %d", e.msg, e.pri, tt.wantMsg, tt.wantPri)
			}
			want := map[string]string{"PG_STANDBY_INSTANCE": "main"}
			maps.Copy(want, tt.want)
			if vars := withoutCode(e.vars); !maps.Equal(vars, want) {
				t.Errorf("fields\n got %q\nwant %q", vars, want)
			}
			if !strings.HasSuffix(e.vars["CODE_FILE"], "handler_test.go") || e.vars["CODE_LINE"] == "" ||
				!strings.Contains(e.vars["CODE_FUNC"], "TestJournalFields") {
				t.Errorf("CODE_FILE=%q CODE_LINE=%q CODE_FUNC=%q, want this test",
					e.vars["CODE_FILE"], e.vars["CODE_LINE"], e.vars["CODE_FUNC"])
			}
			for name := range e.vars {
				if !validField(name) {
					t.Errorf("field name %q is not valid for journald", name)
				}
			}
			if stderr.Len() != 0 {
				t.Errorf("stderr got %q, want nothing", stderr.String())
			}
		})
	}
}

// validField is journald's rule for field names a client may send.
func validField(name string) bool {
	if name == "" || len(name) > 64 || name[0] == '_' || ('0' <= name[0] && name[0] <= '9') {
		return false
	}
	for _, c := range []byte(name) {
		if !('A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

func TestJournalLevel(t *testing.T) {
	var rec recorder
	log := slog.New(journald.NewJournalHandler("main", slog.LevelWarn, rec.send, io.Discard))
	log.Info("dropped")
	log.Warn("kept")
	if got := rec.take(); len(got) != 1 || got[0].msg != "kept" {
		t.Errorf("level Warn, Info then Warn: sent %v, want only %q", got, "kept")
	}
}

func TestJournalSendFailure(t *testing.T) {
	rec := recorder{err: errors.New("no journal")}
	var stderr bytes.Buffer
	log := slog.New(journald.NewJournalHandler("main", nil, rec.send, &stderr)).WithGroup("g")

	log.Info("first", "k", 1)
	log.Info("second", "k", 2)

	out := stderr.String()
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("stderr got %d lines, want 3 (note and two records):\n%s", len(lines), out)
	}
	for i, want := range []string{
		`level=WARN msg="cannot write to the journal, logging to stderr" instance=main error="no journal"`,
		`level=INFO msg=first instance=main g.k=1`,
		`level=INFO msg=second instance=main g.k=2`,
	} {
		if !strings.HasSuffix(lines[i], want) {
			t.Errorf("stderr line %d\n got %s\nwant …%s", i, lines[i], want)
		}
	}
}

// captureStderr points os.Stderr at a pipe until the test ends; the returned
// func closes it and returns what was written.
func captureStderr(t *testing.T) func() string {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	old := os.Stderr
	os.Stderr = w
	t.Cleanup(func() {
		os.Stderr = old
		w.Close()
		r.Close()
	})
	return func() string {
		t.Helper()
		os.Stderr = old
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(r)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
}

// stderrStream returns $JOURNAL_STREAM as systemd would set it for our stderr.
func stderrStream(t *testing.T) string {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Fstat(syscall.Stderr, &st); err != nil {
		t.Fatalf("fstat stderr: %v", err)
	}
	return fmt.Sprintf("%d:%d", st.Dev, st.Ino)
}

func TestNewHandlerFallsBackToText(t *testing.T) {
	tests := []struct {
		name   string
		stream func(t *testing.T) string
	}{
		{"no JOURNAL_STREAM", func(*testing.T) string { return "" }},
		{"JOURNAL_STREAM of another file", func(t *testing.T) string { return stderrStream(t) + "1" }},
		{"malformed JOURNAL_STREAM", func(*testing.T) string { return "journal" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			journald.PretendJournalEnabled(t)
			t.Setenv("JOURNAL_STREAM", tt.stream(t))
			read := captureStderr(t)

			h := journald.NewHandler("main", slog.LevelInfo)
			if journald.IsJournal(h) {
				t.Fatalf("JOURNAL_STREAM=%q: got a journal handler, want text on stderr", os.Getenv("JOURNAL_STREAM"))
			}
			log := slog.New(h)
			log.Debug("hidden")
			log.Info("base backup failed", "error", errors.New("timeout"), "attempt", 2)

			out := read()
			want := "level=INFO msg=\"base backup failed\" instance=main error=timeout attempt=2\n"
			if !strings.HasPrefix(out, "time=") || !strings.HasSuffix(out, want) || strings.Count(out, "\n") != 1 {
				t.Errorf("stderr\n got %q\nwant \"time=… %s\"", out, want)
			}
		})
	}
}

func TestNewHandlerUsesJournal(t *testing.T) {
	journald.PretendJournalEnabled(t)
	t.Setenv("JOURNAL_STREAM", stderrStream(t))

	if h := journald.NewHandler("main", nil); !journald.IsJournal(h) {
		t.Errorf("JOURNAL_STREAM=%q matching stderr: got %T, want the journal handler", os.Getenv("JOURNAL_STREAM"), h)
	}
}

func TestJournalConcurrent(t *testing.T) {
	rec := recorder{err: errors.New("no journal")}
	var stderr lockedBuffer
	log := slog.New(journald.NewJournalHandler("main", nil, rec.send, &stderr))
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			l := log.With("worker", i).WithGroup("g")
			for j := range 50 {
				l.Info("m", "j", j)
			}
		})
	}
	wg.Wait()
	if got := len(rec.take()); got != 400 {
		t.Errorf("sent %d entries, want 400", got)
	}
	if got := strings.Count(stderr.String(), "cannot write to the journal"); got != 1 {
		t.Errorf("failure noted %d times, want once", got)
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

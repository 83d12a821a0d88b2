package progress

import (
	"io"
	"os"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// Terminal shows one live progress line on a terminal, redrawn in place with
// \r as pg_basebackup -P does, and is the writer of the log lines, which it
// prints above the progress line (clear it, write, redraw).
type Terminal struct {
	f    *os.File
	mu   sync.Mutex
	line string // shown now, "" for none
}

// NewTerminal returns a Terminal on f, or nil when f is not a terminal.
func NewTerminal(f *os.File) *Terminal {
	if _, ok := Width(f); !ok {
		return nil
	}
	return &Terminal{f: f}
}

// Width is the number of columns of the terminal f; ok is false when f is
// not a terminal.
func Width(f *os.File) (cols int, ok bool) {
	ws, err := unix.IoctlGetWinsize(int(f.Fd()), unix.TIOCGWINSZ)
	if err != nil {
		return 0, false
	}
	return int(ws.Col), true
}

// Report implements Sink: the snapshot's Line, cut to the terminal's width.
func (t *Terminal) Report(s Snapshot) { t.Show(s.Line()) }

// Show makes line the progress line, cut to the terminal's width.
func (t *Terminal) Show(line string) {
	if cols, ok := Width(t.f); ok && cols > 1 {
		if r := []rune(line); len(r) >= cols {
			line = string(r[:cols-1])
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.line = line
	io.WriteString(t.f, "\r"+line+"\x1b[K")
}

// Write prints log output above the progress line.
func (t *Terminal) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.line != "" {
		io.WriteString(t.f, "\r\x1b[K")
	}
	n, err := t.f.Write(p)
	if t.line != "" && strings.HasSuffix(string(p), "\n") {
		io.WriteString(t.f, t.line+"\x1b[K")
	}
	return n, err
}

// Close removes the progress line: the log's last line says how it ended.
func (t *Terminal) Close() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.line != "" {
		io.WriteString(t.f, "\r\x1b[K")
		t.line = ""
	}
}

package incremental

import (
	"errors"
	"testing"

	"github.com/pg-standby/pg-standby/internal/wal"
)

func TestParseHistory(t *testing.T) {
	h, err := ParseHistory(3, []byte("1\t0/3000158\tno recovery target specified\n\n# comment\n2\t0/5000000\tno recovery target specified\n"))
	if err != nil {
		t.Fatal(err)
	}
	if h.End[1] != 0x3000158 || h.End[2] != 0x5000000 || len(h.End) != 2 {
		t.Fatalf("history %+v", h.End)
	}
	for name, bad := range map[string]string{
		"descending":        "2\t0/1\tx\n1\t0/2\tx\n",
		"current in it":     "3\t0/1\tx\n",
		"timeline 0":        "0\t0/1\tx\n",
		"no switch point":   "1\n",
		"bad switch point":  "1\tzz\tx\n",
		"non-numeric":       "one\t0/1\tx\n",
		"repeated timeline": "1\t0/1\tx\n1\t0/2\tx\n",
	} {
		if _, err := ParseHistory(3, []byte(bad)); err == nil {
			t.Errorf("%s: %q parsed", name, bad)
		}
	}
}

func TestHistoryContains(t *testing.T) {
	h := &History{Current: 3, End: map[uint32]wal.LSN{1: 0x3000158, 2: 0x5000000}}
	pos := wal.LSN(0x9000000)
	for _, c := range []struct {
		name     string
		tli      uint32
		lsn      wal.LSN
		diverged bool
	}{
		{"current, behind the primary", 3, 0x8000000, false},
		{"current, at the primary", 3, pos, false},
		{"current, ahead of the primary", 3, pos + 1, true},
		{"ancestor, before its switch", 1, 0x3000000, false},
		{"ancestor, at its switch", 1, 0x3000158, false},
		{"ancestor, past its switch (a former primary)", 1, 0x3000159, true},
		{"not in the history", 4, 0x1000, true},
	} {
		err := h.Contains(c.tli, c.lsn, pos)
		if got := errors.Is(err, ErrDiverged); got != c.diverged {
			t.Errorf("%s: timeline %d at %s: %v, want diverged %v", c.name, c.tli, c.lsn, err, c.diverged)
		}
	}
}

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

func TestCover(t *testing.T) {
	r := func(s, e wal.LSN) [2]wal.LSN { return [2]wal.LSN{s, e} }
	// As a real 17 listed them: out of order by end, with a gap.
	ranges := [][2]wal.LSN{r(0x1000028, 0x10C80E8), r(0x173A678, 0x17490E0), r(0x17491E0, 0x1749788), r(0x1749788, 0x30211C0)}
	for _, c := range []struct {
		name    string
		lsn     wal.LSN
		covered bool
	}{
		{"inside the chain", 0x2000028, true},
		{"at a range's start", 0x173A678, false}, // 17490E0..17491E0 is a gap
		{"after the gap", 0x17491E0, true},
		{"before the gap", 0x1000100, false},
		{"before the oldest", 0x100, false},
		{"at the newest end", 0x30211C0, true},
	} {
		if got := cover(ranges, c.lsn); got.Covered != c.covered {
			t.Errorf("%s: %s: %+v, want covered %v", c.name, c.lsn, got, c.covered)
		}
	}
	if got := cover(nil, 0x100); got.Covered || !got.Known {
		t.Errorf("no summaries: %+v", got)
	}
}

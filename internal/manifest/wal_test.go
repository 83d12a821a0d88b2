package manifest

import (
	"strings"
	"testing"
)

func TestCheckWAL(t *testing.T) {
	one := &Manifest{WALRanges: []WALRange{{Timeline: 1, Start: 0x2000028, End: 0x2000100}}}
	three := &Manifest{WALRanges: []WALRange{
		{Timeline: 3, Start: 0x5000000, End: 0x5000100},
		{Timeline: 2, Start: 0x4000000, End: 0x5000000},
		{Timeline: 1, Start: 0x3000028, End: 0x4000000},
	}}
	type lsns = map[uint32]LSN
	for _, tc := range []struct {
		name     string
		m        *Manifest
		from, to lsns
		want     string // "" for no error, else a substring
	}{
		{name: "exact", m: one, from: lsns{1: 0x2000028}, to: lsns{1: 0x2000100}},
		{name: "wider", m: one, from: lsns{1: 0x2000000, 2: 5}, to: lsns{1: 0x3000000}},
		{name: "starts late", m: one, from: lsns{1: 0x2000029}, to: lsns{1: 0x2000100},
			want: "timeline 1 needs 0/2000028-0/2000100, streamed 0/2000029-0/2000100"},
		{name: "ends early", m: one, from: lsns{1: 0x2000000}, to: lsns{1: 0x20000FF},
			want: "timeline 1 needs 0/2000028-0/2000100, streamed 0/2000000-0/20000FF"},
		{name: "other timeline", m: one, from: lsns{2: 0}, to: lsns{2: 0x9000000},
			want: "timeline 1 needs 0/2000028-0/2000100, none streamed"},
		{name: "only end known", m: one, to: lsns{1: 0x9000000},
			want: "none streamed"},
		{name: "nil maps", m: one, want: "none streamed"},
		{name: "timeline switches covered", m: three,
			from: lsns{1: 0x3000000, 2: 0x4000000, 3: 0x5000000},
			to:   lsns{1: 0x4000000, 2: 0x5000000, 3: 0x5000100}},
		{name: "timeline switches, middle missing, end short", m: three,
			from: lsns{1: 0x3000000, 3: 0x5000000},
			to:   lsns{1: 0x4000000, 3: 0x5000080},
			want: "streamed WAL does not cover the backup: timeline 3 needs 0/5000000-0/5000100, streamed 0/5000000-0/5000080; timeline 2 needs 0/4000000-0/5000000, none streamed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckWAL(tc.m, tc.from, tc.to)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("CheckWAL = %v, want nil", err)
			case tc.want != "" && err == nil:
				t.Errorf("CheckWAL = nil, want an error containing %q", tc.want)
			case tc.want != "" && !strings.Contains(err.Error(), tc.want):
				t.Errorf("CheckWAL = %q, want it to contain %q", err, tc.want)
			}
		})
	}
	if err := CheckWAL(nil, nil, nil); err == nil {
		t.Error("CheckWAL(nil) = nil")
	}
}

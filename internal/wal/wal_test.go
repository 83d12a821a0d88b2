package wal

import "testing"

func TestSegmentName(t *testing.T) {
	cases := []struct {
		name string
		tli  uint32
		lsn  string
		size int64
		want string
	}{
		{"first segment", 1, "0/0", 16 << 20, "000000010000000000000000"},
		{"inside segment 3", 1, "0/3000060", 16 << 20, "000000010000000000000003"},
		{"second log", 2, "1/FF000000", 16 << 20, "0000000200000001000000FF"},
		{"64MiB segments", 1, "2/40000000", 64 << 20, "000000010000000200000010"},
	}
	for _, c := range cases {
		lsn, err := ParseLSN(c.lsn)
		if err != nil {
			t.Fatalf("%s: ParseLSN(%q): %v", c.name, c.lsn, err)
		}
		if got := SegmentName(c.tli, lsn, c.size); got != c.want {
			t.Errorf("%s: SegmentName(%d, %s, %d) = %s, want %s", c.name, c.tli, c.lsn, c.size, got, c.want)
		}
	}
}

func TestParseLSN(t *testing.T) {
	for _, s := range []string{"", "0", "/1", "1/", "G/0", "1/100000000", "0/0/0"} {
		if _, err := ParseLSN(s); err == nil {
			t.Errorf("ParseLSN(%q) succeeded, want error", s)
		}
	}
	l, err := ParseLSN("16/B374D848")
	if err != nil || l.String() != "16/B374D848" || uint64(l) != 0x16B374D848 {
		t.Errorf("ParseLSN(16/B374D848) = %v, %v", l, err)
	}
}

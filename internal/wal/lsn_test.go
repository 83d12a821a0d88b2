package wal

import "testing"

func TestLSNString(t *testing.T) {
	for _, tc := range []struct {
		lsn  LSN
		want string
	}{
		{0, "0/0"},
		{0x2000028, "0/2000028"},
		{0x1_0000_00AB, "1/AB"},
		{0xFFFFFFFF_FFFFFFFF, "FFFFFFFF/FFFFFFFF"},
	} {
		if got := tc.lsn.String(); got != tc.want {
			t.Errorf("LSN(%#x).String() = %q, want %q", uint64(tc.lsn), got, tc.want)
		}
	}
}

func TestParseLSNForms(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    LSN
		wantErr bool
	}{
		{in: "0/2000028", want: 0x2000028},
		{in: "0/02000028", want: 0x2000028}, // PostgreSQL 19's zero padding
		{in: "1/ab", want: 0x1_0000_00AB},
		{in: "FFFFFFFF/FFFFFFFF", want: 0xFFFFFFFF_FFFFFFFF},
		{in: "", wantErr: true},
		{in: "0", wantErr: true},
		{in: "/1", wantErr: true},
		{in: "1/", wantErr: true},
		{in: "1/2/3", wantErr: true},
		{in: "100000000/0", wantErr: true},
		{in: "0x1/0", wantErr: true},
		{in: "+1/0", wantErr: true},
		{in: " 1/0", wantErr: true},
		{in: "g/0", wantErr: true},
	} {
		got, err := ParseLSN(tc.in)
		if tc.wantErr {
			if err == nil {
				t.Errorf("ParseLSN(%q) = %v, want an error", tc.in, got)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseLSN(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
		if back, err := ParseLSN(got.String()); err != nil || back != got {
			t.Errorf("ParseLSN(%q.String()) = %v, %v", got, back, err)
		}
	}
}

package walstream

import (
	"encoding/binary"
	"strings"
	"testing"
	"time"

	"github.com/pg-standby/pg-standby/internal/fakeprimary"
	"github.com/pg-standby/pg-standby/internal/wal"
)

func TestDecode(t *testing.T) {
	m, err := decode(fakeprimary.WALData(0x1000028, 0x2000000, []byte("wal")))
	if x := m.w; err != nil || m.Type != 'w' || x.Start != 0x1000028 || x.ServerEnd != 0x2000000 || string(x.Data) != "wal" {
		t.Errorf("XLogData: %#v, %v", m, err)
	}
	m, err = decode(fakeprimary.Keepalive(0x3000000, true))
	if k := m.k; err != nil || m.Type != 'k' || k.ServerEnd != 0x3000000 || !k.ReplyRequested {
		t.Errorf("keepalive: %#v, %v", m, err)
	}
	m, err = decode(fakeprimary.Keepalive(0x3000000, false))
	if err != nil || m.Type != 'k' || m.k.ReplyRequested {
		t.Errorf("keepalive without reply: %#v, %v", m, err)
	}
	for _, tc := range []struct {
		p    []byte
		want string
	}{
		{nil, "empty"},
		{[]byte("w123"), "XLogData message of 4 bytes"},
		{fakeprimary.Keepalive(1, false)[:17], "keepalive message of 17 bytes"},
		{append(fakeprimary.Keepalive(1, false), 0), "keepalive message of 19 bytes"},
		{[]byte("x"), "unknown CopyData message type 'x'"},
	} {
		if _, err := decode(tc.p); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("decode(%q) = %v, want %q", tc.p, err, tc.want)
		}
	}
}

// TestStatusUpdateLayout checks the 'r' message field by field as
// walsender.c's ProcessStandbyReplyMessage reads it.
func TestStatusUpdateLayout(t *testing.T) {
	now := time.Date(2026, 12, 1, 23, 0, 0, 123456000, time.UTC)
	b := statusUpdate(wal.LSN(0x1_0000_0028), wal.LSN(0x1_0000_0000), now)
	if len(b) != 34 || b[0] != 'r' {
		t.Fatalf("status update %x: want 34 bytes starting with 'r'", b)
	}
	u64 := func(i int) uint64 { return binary.BigEndian.Uint64(b[i:]) }
	if u64(1) != 0x1_0000_0028 || u64(9) != 0x1_0000_0000 || u64(17) != 0 {
		t.Errorf("positions %x %x %x", u64(1), u64(9), u64(17))
	}
	if got, want := int64(u64(25)), now.Sub(pgEpoch).Microseconds(); got != want {
		t.Errorf("send time %d µs since 2000-01-01, want %d", got, want)
	}
	if b[33] != 0 {
		t.Errorf("reply requested = %d, want 0", b[33])
	}
}

// BenchmarkDecode: one XLogData of 8 kB; decoding must not allocate.
func BenchmarkDecode(b *testing.B) {
	p := fakeprimary.WALData(0x1000000, 0x2000000, make([]byte, 8192))
	b.ReportAllocs()
	for b.Loop() {
		if m, err := decode(p); err != nil || len(m.w.Data) != 8192 {
			b.Fatal(m, err)
		}
	}
}

func TestDecodeDoesNotAllocate(t *testing.T) {
	p := fakeprimary.WALData(0x1000000, 0x2000000, make([]byte, 8192))
	if n := testing.AllocsPerRun(100, func() { _, _ = decode(p) }); n != 0 {
		t.Errorf("decode allocates %v times per XLogData", n)
	}
}

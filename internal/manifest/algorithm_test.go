package manifest

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"math/rand/v2"
	"testing"
)

func TestParseAlgorithm(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    Algorithm
		wantErr bool
	}{
		{in: "NONE", want: None},
		{in: "none", want: None},
		{in: "CRC32C", want: CRC32C},
		{in: "crc32c", want: CRC32C},
		{in: "Sha224", want: SHA224},
		{in: "SHA256", want: SHA256},
		{in: "sha384", want: SHA384},
		{in: "SHA512", want: SHA512},
		{in: "", wantErr: true},
		{in: "CRC32", wantErr: true},
		{in: "SHA-256", wantErr: true},
		{in: "md5", wantErr: true},
		{in: " SHA256", wantErr: true},
	} {
		got, err := ParseAlgorithm(tc.in)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("ParseAlgorithm(%q) = %v, %v; want %v, error %v", tc.in, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestAlgorithmStringAndSize(t *testing.T) {
	for _, tc := range []struct {
		a    Algorithm
		name string
		size int
	}{
		{None, "NONE", 0},
		{CRC32C, "CRC32C", 4},
		{SHA224, "SHA224", 28},
		{SHA256, "SHA256", 32},
		{SHA384, "SHA384", 48},
		{SHA512, "SHA512", 64},
		{Algorithm(42), "Algorithm(42)", 0},
		{Algorithm(-1), "Algorithm(-1)", 0},
	} {
		if got := tc.a.String(); got != tc.name {
			t.Errorf("Algorithm(%d).String() = %q, want %q", int(tc.a), got, tc.name)
		}
		if got := tc.a.Size(); got != tc.size {
			t.Errorf("%v.Size() = %d, want %d", tc.a, got, tc.size)
		}
		h := tc.a.NewHash()
		if tc.size == 0 {
			if h != nil {
				t.Errorf("%v.NewHash() = %T, want nil", tc.a, h)
			}
			continue
		}
		if h.Size() != tc.size || len(h.Sum(nil)) != tc.size {
			t.Errorf("%v.NewHash(): Size() = %d, len(Sum) = %d, want %d", tc.a, h.Size(), len(h.Sum(nil)), tc.size)
		}
		if back, err := ParseAlgorithm(tc.name); err != nil || back != tc.a {
			t.Errorf("ParseAlgorithm(%q) = %v, %v", tc.name, back, err)
		}
	}
}

// TestSHAVectors checks the SHA-2 hashes against the FIPS 180-2 "abc"
// vectors, in the lower-case hex the manifest uses.
func TestSHAVectors(t *testing.T) {
	for _, tc := range []struct {
		a    Algorithm
		want string
	}{
		{SHA224, "23097d223405d8228642a477bda255b32aadbce4bda0b3f7e36c9da7"},
		{SHA256, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
		{SHA384, "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed8086072ba1e7cc2358baeca134c825a7"},
		{SHA512, "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"},
	} {
		if got := hex.EncodeToString(sum(tc.a, "abc")); got != tc.want {
			t.Errorf("%v(\"abc\") = %s, want %s", tc.a, got, tc.want)
		}
	}
}

// crc32cReference is CRC-32C computed the way src/include/port/pg_crc32c.h
// describes it: the Castagnoli polynomial in reflected form (0x82F63B78),
// initialised to 0xFFFFFFFF (INIT_CRC32C), one bit at a time, and finished
// by XOR with 0xFFFFFFFF (FIN_CRC32C).
func crc32cReference(p []byte) uint32 {
	crc := ^uint32(0)
	for _, b := range p {
		crc ^= uint32(b)
		for range 8 {
			if crc&1 != 0 {
				crc = crc>>1 ^ 0x82F63B78
			} else {
				crc >>= 1
			}
		}
	}
	return ^crc
}

// TestCRC32C checks NewHash(CRC32C) against published CRC-32C values and
// against the bitwise reference, and that Sum is the value's bytes in
// native order, as pg_checksum_final's memcpy leaves them.
func TestCRC32C(t *testing.T) {
	native := func(v uint32) []byte { return binary.NativeEndian.AppendUint32(nil, v) }
	for _, tc := range []struct {
		name string
		in   []byte
		want uint32
	}{
		{"empty", nil, 0},
		{"check value (CRC catalogue)", []byte("123456789"), 0xE3069283},
		{"32 zero bytes (RFC 3720 B.4)", make([]byte, 32), 0x8A9136AA},
		{"32 0xff bytes (RFC 3720 B.4)", bytes.Repeat([]byte{0xff}, 32), 0x62A8AB43},
	} {
		if ref := crc32cReference(tc.in); ref != tc.want {
			t.Fatalf("%s: reference gives %#08x, want %#08x", tc.name, ref, tc.want)
		}
		h := CRC32C.NewHash()
		h.Write(tc.in)
		if got := h.Sum(nil); !bytes.Equal(got, native(tc.want)) {
			t.Errorf("%s: Sum = %x, want %x", tc.name, got, native(tc.want))
		}
	}

	// Written in pieces, reset, and on random data.
	r := rand.New(rand.NewPCG(1, 2))
	for range 100 {
		p := make([]byte, r.IntN(5000))
		for i := range p {
			p[i] = byte(r.Uint32())
		}
		h := CRC32C.NewHash()
		h.Write([]byte("garbage"))
		h.Reset()
		cut := 0
		if len(p) > 0 {
			cut = r.IntN(len(p))
		}
		h.Write(p[:cut])
		h.Write(p[cut:])
		if got, want := h.Sum([]byte("x")), append([]byte("x"), native(crc32cReference(p))...); !bytes.Equal(got, want) {
			t.Fatalf("len %d: Sum = %x, want %x", len(p), got, want)
		}
	}
}

package decompress

import (
	"encoding/binary"
	"math/bits"
)

// The five primes of xxHash32 (XXH_PRIME32_1..5 in the xxHash spec).
const (
	prime1 uint32 = 2654435761
	prime2 uint32 = 2246822519
	prime3 uint32 = 3266489917
	prime4 uint32 = 668265263
	prime5 uint32 = 374761393
)

// xxh32 is a streaming xxHash32 with seed 0, the checksum of the LZ4 frame
// format (header, block and content checksums). xxHash32 consumes its input
// in 16-byte stripes through four accumulators, then mixes in the remaining
// 0..15 bytes and the total length. The zero value is not ready: call reset.
type xxh32 struct {
	v     [4]uint32 // the accumulators
	buf   [16]byte  // a stripe not yet complete
	nbuf  int
	total uint64 // bytes written
}

// round is xxHash32's per-lane step: acc = rotl13(acc + lane*P2) * P1.
func round(acc, lane uint32) uint32 {
	return bits.RotateLeft32(acc+lane*prime2, 13) * prime1
}

// reset starts a new hash with seed 0: the accumulators begin at seed+P1+P2,
// seed+P2, seed and seed-P1.
func (x *xxh32) reset() {
	var seed uint32
	x.v = [4]uint32{seed + prime1 + prime2, seed + prime2, seed, seed - prime1}
	x.nbuf, x.total = 0, 0
}

func (x *xxh32) stripe(p []byte) {
	x.v[0] = round(x.v[0], binary.LittleEndian.Uint32(p[0:]))
	x.v[1] = round(x.v[1], binary.LittleEndian.Uint32(p[4:]))
	x.v[2] = round(x.v[2], binary.LittleEndian.Uint32(p[8:]))
	x.v[3] = round(x.v[3], binary.LittleEndian.Uint32(p[12:]))
}

// write adds p to the hash.
func (x *xxh32) write(p []byte) {
	x.total += uint64(len(p))
	if x.nbuf > 0 {
		n := copy(x.buf[x.nbuf:], p)
		x.nbuf += n
		p = p[n:]
		if x.nbuf < len(x.buf) {
			return
		}
		x.stripe(x.buf[:])
		x.nbuf = 0
	}
	for ; len(p) >= 16; p = p[16:] {
		x.stripe(p)
	}
	x.nbuf = copy(x.buf[:], p)
}

// sum is the hash of everything written so far: the accumulators converge
// (or, under 16 bytes, seed+P5 stands in for them), the low 32 bits of the
// length are added, the 4-byte then 1-byte tail is mixed in, and the result
// goes through the final avalanche.
func (x *xxh32) sum() uint32 {
	var h uint32
	if x.total >= 16 {
		h = bits.RotateLeft32(x.v[0], 1) + bits.RotateLeft32(x.v[1], 7) +
			bits.RotateLeft32(x.v[2], 12) + bits.RotateLeft32(x.v[3], 18)
	} else {
		h = x.v[2] + prime5 // v[2] is the seed
	}
	h += uint32(x.total)
	p := x.buf[:x.nbuf]
	for ; len(p) >= 4; p = p[4:] {
		h += binary.LittleEndian.Uint32(p) * prime3
		h = bits.RotateLeft32(h, 17) * prime4
	}
	for _, b := range p {
		h += uint32(b) * prime5
		h = bits.RotateLeft32(h, 11) * prime1
	}
	h ^= h >> 15
	h *= prime2
	h ^= h >> 13
	h *= prime3
	h ^= h >> 16
	return h
}

// xxh32Sum is the xxHash32 of p with seed 0.
func xxh32Sum(p []byte) uint32 {
	var x xxh32
	x.reset()
	x.write(p)
	return x.sum()
}

package decompress

import (
	"math/rand"
	"testing"
)

// TestXXH32Vectors checks published xxHash32 values (seed 0). The checksums
// in frames from pierrec's Writer and the lz4 tool check it on random data
// (lz4frame_test.go).
func TestXXH32Vectors(t *testing.T) {
	for _, c := range []struct {
		in   string
		want uint32
	}{
		{"", 0x02CC5D05},
		{"a", 0x550D7456},
		{"abc", 0x32D153FF},
		{"Nobody inspects the spammish repetition", 0xE2293B2F},
	} {
		if got := xxh32Sum([]byte(c.in)); got != c.want {
			t.Errorf("xxh32(%q) = %#08x, want %#08x", c.in, got, c.want)
		}
	}
}

// TestXXH32Streaming: writing in pieces of any size gives the one-shot sum.
func TestXXH32Streaming(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	data := make([]byte, 10000)
	rng.Read(data)
	for _, n := range []int{0, 1, 3, 15, 16, 17, 31, 32, 33, 100, 9999, 10000} {
		want := xxh32Sum(data[:n])
		var x xxh32
		x.reset()
		for p := data[:n]; len(p) > 0; {
			k := min(rng.Intn(40), len(p))
			x.write(p[:k])
			p = p[k:]
		}
		if got := x.sum(); got != want {
			t.Errorf("%d bytes in pieces: %#08x, one shot %#08x", n, got, want)
		}
	}
}

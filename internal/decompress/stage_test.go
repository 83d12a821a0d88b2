package decompress

import (
	"bytes"
	"compress/gzip"
	"io"
	"math/rand"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

type sink struct {
	bytes.Buffer
	closed bool
}

func (s *sink) Close() error { s.closed = true; return nil }

func compress(t *testing.T, method string, data []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	var w io.WriteCloser
	switch method {
	case "gzip":
		w = gzip.NewWriter(&b)
	case "lz4":
		w = lz4.NewWriter(&b)
	case "zstd":
		z, err := zstd.NewWriter(&b)
		if err != nil {
			t.Fatal(err)
		}
		w = z
	}
	w.Write(data)
	w.Close()
	return b.Bytes()
}

func TestRoundTrip(t *testing.T) {
	data := make([]byte, 3<<20)
	rand.New(rand.NewSource(1)).Read(data[:1<<20]) // some incompressible, some zeros
	for method := range Methods {
		c := compress(t, method, data)
		for _, chunk := range []int{1 << 10, 7777, 1 << 20} {
			out := &sink{}
			s, err := New(method, out)
			if err != nil {
				t.Fatal(err)
			}
			for p := c; len(p) > 0; {
				n := min(chunk, len(p))
				if _, err := s.Write(p[:n]); err != nil {
					t.Fatalf("%s chunk %d: write: %v", method, chunk, err)
				}
				p = p[n:]
			}
			if err := s.Close(); err != nil {
				t.Fatalf("%s chunk %d: close: %v", method, chunk, err)
			}
			if !bytes.Equal(out.Bytes(), data) || !out.closed {
				t.Errorf("%s chunk %d: round trip differs (%d bytes, closed %v)", method, chunk, out.Len(), out.closed)
			}
		}
	}
}

func TestTruncatedAndGarbage(t *testing.T) {
	data := []byte(strings.Repeat("postgres ", 100000))
	for method := range Methods {
		c := compress(t, method, data)
		for name, in := range map[string][]byte{"truncated": c[:len(c)/2], "garbage": []byte("not compressed at all, clearly")} {
			s, _ := New(method, &sink{})
			s.Write(in)
			if err := s.Close(); err == nil {
				t.Errorf("%s %s: no error", method, name)
			}
		}
	}
	if _, err := New("brotli", &sink{}); err == nil {
		t.Errorf("unknown method accepted")
	}
}

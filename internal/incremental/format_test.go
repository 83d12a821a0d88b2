package incremental

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

var small = Params{BlockSize: 1024, SegmentBlocks: 64}

// encodeIncremental writes an incremental file as the server does
// (basebackup.c, sendFile for an incremental file): the test's own encoder.
func encodeIncremental(p Params, trunc uint32, blocks []uint32, content func(b uint32) []byte) []byte {
	ne := binary.NativeEndian
	var out []byte
	out = ne.AppendUint32(out, Magic)
	out = ne.AppendUint32(out, uint32(len(blocks)))
	out = ne.AppendUint32(out, trunc)
	for _, b := range blocks {
		out = ne.AppendUint32(out, b)
	}
	out = append(out, make([]byte, headerLen(uint32(len(blocks)), p.BlockSize)-int64(len(out)))...)
	for _, b := range blocks {
		out = append(out, content(b)...)
	}
	return out
}

func blockOf(p Params, tag byte, b uint32) []byte {
	return bytes.Repeat([]byte{tag, byte(b)}, p.BlockSize/2)
}

type recSink struct {
	h      *Header
	blocks map[uint32][]byte
}

func (s *recSink) Header(h *Header) error { s.h = h; return nil }
func (s *recSink) Block(b uint32, d []byte) error {
	if s.blocks == nil {
		s.blocks = map[uint32][]byte{}
	}
	s.blocks[b] = slices.Clone(d)
	return nil
}

// feed writes data in random chunks, as a tar stage would.
func feed(d *Decoder, data []byte, rng *rand.Rand) error {
	for len(data) > 0 {
		n := min(len(data), 1+rng.IntN(3000))
		if err := d.Write(data[:n]); err != nil {
			return err
		}
		data = data[n:]
	}
	return d.Close()
}

func TestDecodeRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, blocks := range [][]uint32{nil, {0}, {3, 7, 63}, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63}} {
		data := encodeIncremental(small, 10, blocks, func(b uint32) []byte { return blockOf(small, 'n', b) })
		var s recSink
		d, err := NewDecoder(small, "x", int64(len(data)), &s)
		if err != nil {
			t.Fatal(err)
		}
		if err := feed(d, data, rng); err != nil {
			t.Fatalf("blocks %v: %v", blocks, err)
		}
		if s.h == nil || !slices.Equal(s.h.Blocks, blocks) && len(blocks) > 0 || s.h.TruncationBlocks != 10 {
			t.Fatalf("header %+v, want blocks %v trunc 10", s.h, blocks)
		}
		if s.h.FileSize(small) != int64(len(data)) {
			t.Fatalf("FileSize %d, file %d", s.h.FileSize(small), len(data))
		}
		for _, b := range blocks {
			if !bytes.Equal(s.blocks[b], blockOf(small, 'n', b)) {
				t.Fatalf("block %d differs", b)
			}
		}
	}
}

func TestDecodeRejects(t *testing.T) {
	ne := binary.NativeEndian
	good := encodeIncremental(small, 5, []uint32{1, 4}, func(b uint32) []byte { return blockOf(small, 'n', b) })
	mut := func(f func(b []byte) []byte) []byte { return f(slices.Clone(good)) }
	cases := []struct {
		name string
		data []byte
		size int64
		want error
	}{
		{"magic", mut(func(b []byte) []byte { b[0] ^= 1; return b }), -1, ErrBadMagic},
		{"count", mut(func(b []byte) []byte { ne.PutUint32(b[4:], 65); return b }), -1, ErrTooManyBlocks},
		{"count huge", mut(func(b []byte) []byte { ne.PutUint32(b[4:], 0xffffffff); return b }), -1, ErrTooManyBlocks},
		{"truncation", mut(func(b []byte) []byte { ne.PutUint32(b[8:], 65); return b }), -1, ErrTruncationLength},
		{"order", mut(func(b []byte) []byte { ne.PutUint32(b[16:], 1); return b }), -1, ErrBlockOrder},
		{"range", mut(func(b []byte) []byte { ne.PutUint32(b[16:], 64); return b }), -1, ErrBlockRange},
		{"short", good[:len(good)-1], -1, ErrShort},
		{"short header", good[:7], -1, ErrShort},
		{"trailing", append(slices.Clone(good), 0), -1, ErrTrailing},
		{"member size", good, int64(len(good)) + 1024, ErrSizeMismatch},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d, _ := NewDecoder(small, "base/1/2", c.size, &recSink{})
			err := feed(d, c.data, rand.New(rand.NewPCG(3, 4)))
			var fe *FormatError
			if !errors.Is(err, c.want) || !errors.As(err, &fe) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
			t.Log(err)
		})
	}
}

// model is reconstruct.c's rule, written out block by block.
func model(p Params, prior []byte, trunc uint32, sent map[uint32][]byte) []byte {
	h := Header{TruncationBlocks: trunc}
	for b := range sent {
		h.Blocks = append(h.Blocks, b)
	}
	slices.Sort(h.Blocks)
	out := make([]byte, int(h.Length())*p.BlockSize)
	priorBlocks := uint32(len(prior) / p.BlockSize)
	for b := uint32(0); b < h.Length(); b++ {
		dst := out[int(b)*p.BlockSize:][:p.BlockSize]
		if d, ok := sent[b]; ok {
			copy(dst, d)
		} else if b < trunc && b < priorBlocks {
			copy(dst, prior[int(b)*p.BlockSize:])
		}
	}
	return out
}

func TestRebuilderMatchesModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	dir := t.TempDir()
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	for i := range 300 {
		priorLen := rng.IntN(int(small.SegmentBlocks)+1)*small.BlockSize + []int{0, 0, 0, 17}[rng.IntN(4)]
		prior := make([]byte, priorLen)
		for j := range prior {
			prior[j] = byte(j/small.BlockSize) ^ 0x5a
		}
		trunc := uint32(rng.IntN(int(small.SegmentBlocks) + 1))
		sent := map[uint32][]byte{}
		for range rng.IntN(8) {
			b := uint32(rng.IntN(int(small.SegmentBlocks)))
			sent[b] = blockOf(small, 'i', b)
		}
		var blocks []uint32
		for b := range sent {
			blocks = append(blocks, b)
		}
		slices.Sort(blocks)
		if err := os.WriteFile(filepath.Join(dir, "f"), prior, 0o600); err != nil {
			t.Fatal(err)
		}
		inc := encodeIncremental(small, trunc, blocks, func(b uint32) []byte { return sent[b] })
		r, err := NewRebuilder(root, "f", int64(priorLen), int64(len(inc)), small)
		if err != nil {
			t.Fatal(err)
		}
		// Every other case holds the change (a Held of 4 blocks: some
		// increments do not fit and are applied at once); a held file is
		// untouched until Apply, and BeforeChange runs only when not held.
		var hold Held
		if i%2 == 1 {
			hold.Limit = 4 * small.BlockSize
			r.Hold = &hold
		}
		before := 0
		r.BeforeChange = func() error { before++; return nil }
		if err := r.Write(inc); err != nil {
			t.Fatal(err)
		}
		if r.Pending() {
			if before != 0 {
				t.Fatalf("case %d: BeforeChange ran for a held change", i)
			}
			if now, _ := os.ReadFile(filepath.Join(dir, "f")); !bytes.Equal(now, prior) {
				t.Fatalf("case %d: a held change reached the file before Apply", i)
			}
		} else if want := len(blocks) > 0 || trunc != uint32(priorLen/small.BlockSize) || priorLen%small.BlockSize != 0; (before == 1) != want {
			t.Fatalf("case %d: BeforeChange ran %d times", i, before)
		}
		res, err := r.Close()
		if err != nil {
			t.Fatal(err)
		}
		got, _ := os.ReadFile(filepath.Join(dir, "f"))
		want := model(small, prior, trunc, sent)
		if !bytes.Equal(got, want) {
			t.Fatalf("case %d: prior %d bytes, trunc %d, blocks %v: result differs from the model (%d vs %d bytes)", i, priorLen, trunc, blocks, len(got), len(want))
		}
		if res.Size != int64(len(want)) || res.Kept+res.Received+res.ZeroFilled != len(want)/small.BlockSize {
			t.Fatalf("case %d: result %+v for %d bytes", i, res, len(want))
		}
	}
}

func TestRebuilderNoPrior(t *testing.T) {
	root, err := os.OpenRoot(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	// A file whose size is not the one listed is not patched: another
	// writer was there since.
	if err := os.WriteFile(filepath.Join(root.Name(), "grown"), make([]byte, 3*small.BlockSize), 0o600); err != nil {
		t.Fatal(err)
	}
	inc := encodeIncremental(small, 2, []uint32{0}, func(b uint32) []byte { return blockOf(small, 'i', b) })
	r, err := NewRebuilder(root, "grown", 2*int64(small.BlockSize), int64(len(inc)), small)
	if err != nil {
		t.Fatal(err)
	}
	err = r.Write(inc)
	if !errors.Is(err, ErrPriorChanged) || !strings.Contains(err.Error(), "reconstruct grown: the prior file changed since it was listed: 3072 bytes, listed with 2048") {
		t.Errorf("a grown prior: got %v", err)
	}
	r.Abort()
	if got, _ := os.ReadFile(filepath.Join(root.Name(), "grown")); !bytes.Equal(got, make([]byte, 3*small.BlockSize)) {
		t.Error("the grown prior was changed")
	}
	// Nothing is opened until the increment changes the file.
	inc = encodeIncremental(small, 1, []uint32{0}, func(b uint32) []byte { return blockOf(small, 'i', b) })
	for name, want := range map[string]error{"missing": ErrNoPrior, "../escape": nil} {
		r, err := NewRebuilder(root, name, 0, int64(len(inc)), small)
		if err != nil {
			t.Fatal(err)
		}
		err = r.Write(inc)
		if err == nil || (want != nil && !errors.Is(err, want)) {
			t.Errorf("%s: got %v, want %v", name, err, want)
		}
	}
}

func TestTargetName(t *testing.T) {
	for in, want := range map[string]string{"base/5/INCREMENTAL.16384": "base/5/16384", "INCREMENTAL.1_vm": "1_vm", "base/5/INCREMENTAL.16384.1": "base/5/16384.1"} {
		if got, ok := TargetName(in); !ok || got != want {
			t.Errorf("TargetName(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
	for _, in := range []string{"base/5/16384", "base/5/INCREMENTAL.", "INCREMENTAL/x"} {
		if _, ok := TargetName(in); ok {
			t.Errorf("TargetName(%q) accepted", in)
		}
	}
}

// FuzzDecode: whatever the server sends, the decoder never panics, never
// allocates beyond its bounds, and what it accepts is consistent.
func FuzzDecode(f *testing.F) {
	f.Add(encodeIncremental(small, 5, []uint32{1, 4}, func(b uint32) []byte { return blockOf(small, 'n', b) }), uint16(100))
	f.Add(encodeIncremental(small, 0, nil, nil), uint16(1))
	f.Add([]byte{0x0d, 0x1f, 0xae, 0xd3, 0xff, 0xff, 0xff, 0xff}, uint16(3))
	f.Fuzz(func(t *testing.T, data []byte, chunk uint16) {
		var s recSink
		d, _ := NewDecoder(small, "fuzz", -1, &s)
		step := int(chunk%4096) + 1
		var err error
		for p := data; len(p) > 0 && err == nil; p = p[min(step, len(p)):] {
			err = d.Write(p[:min(step, len(p))])
		}
		if err == nil {
			err = d.Close()
		}
		if err != nil {
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("error not a FormatError: %v", err)
			}
			return
		}
		if s.h.FileSize(small) != int64(len(data)) || len(s.blocks) != len(s.h.Blocks) || s.h.Length() > small.SegmentBlocks {
			t.Fatalf("accepted an inconsistent file: %+v, %d bytes", s.h, len(data))
		}
	})
}

// TestDecodeMutations is a cheap, deterministic complement to FuzzDecode:
// random byte flips, cuts and extensions of valid files are rejected with a
// FormatError or decode consistently, never panic.
func TestDecodeMutations(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	seeds := [][]byte{
		encodeIncremental(small, 5, []uint32{1, 4}, func(b uint32) []byte { return blockOf(small, 'n', b) }),
		encodeIncremental(small, 64, []uint32{0, 63}, func(b uint32) []byte { return blockOf(small, 'n', b) }),
		encodeIncremental(small, 0, nil, nil),
	}
	for i := range 20000 {
		data := slices.Clone(seeds[i%len(seeds)])
		switch rng.IntN(3) {
		case 0:
			for range 1 + rng.IntN(3) {
				data[rng.IntN(min(len(data), 40))] ^= byte(1 << rng.IntN(8))
			}
		case 1:
			data = data[:rng.IntN(len(data)+1)]
		case 2:
			data = append(data, make([]byte, rng.IntN(2048))...)
		}
		var s recSink
		d, _ := NewDecoder(small, "m", -1, &s)
		err := feed(d, data, rng)
		var fe *FormatError
		if err != nil && !errors.As(err, &fe) {
			t.Fatalf("mutation %d: error not a FormatError: %v", i, err)
		}
		if err == nil && (s.h.FileSize(small) != int64(len(data)) || len(s.blocks) != len(s.h.Blocks)) {
			t.Fatalf("mutation %d: accepted an inconsistent file", i)
		}
	}
}

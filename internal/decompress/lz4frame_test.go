package decompress

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/iotest"

	"github.com/pierrec/lz4/v4"
)

// patterned is size bytes that compress like a database file, and better
// with linked blocks: pieces of a 48 KiB random pool, so that a block's
// matches reach into the previous block, and now and then up to 200 KiB of
// noise (stored blocks, at the smaller block sizes).
func patterned(size int, seed int64) []byte {
	rng := rand.New(rand.NewSource(seed))
	pool := make([]byte, 48<<10)
	rng.Read(pool)
	b := make([]byte, 0, size+256<<10)
	for len(b) < size {
		if rng.Intn(200) == 0 {
			n := len(b)
			b = append(b, make([]byte, rng.Intn(200<<10))...)
			rng.Read(b[n:])
		}
		o := rng.Intn(len(pool) - 4096)
		b = append(b, pool[o:o+64+rng.Intn(4032)]...)
	}
	return b[:size]
}

// pierrecFrame compresses data with pierrec's Writer: independent blocks.
func pierrecFrame(tb testing.TB, data []byte, opts ...lz4.Option) []byte {
	tb.Helper()
	var b bytes.Buffer
	w := lz4.NewWriter(&b)
	if err := w.Apply(opts...); err != nil {
		tb.Fatal(err)
	}
	if _, err := w.Write(data); err != nil {
		tb.Fatal(err)
	}
	if err := w.Close(); err != nil {
		tb.Fatal(err)
	}
	return b.Bytes()
}

// decodeLZ4 decodes a whole stream with our reader, from a source that
// hands out short reads.
func decodeLZ4(in []byte) ([]byte, error) {
	return io.ReadAll(newLZ4Reader(iotest.HalfReader(bytes.NewReader(in))))
}

func le32(b []byte, v uint32) []byte { return binary.LittleEndian.AppendUint32(b, v) }

// header is a frame's magic and descriptor: FLG, BD, extra (content size,
// dictionary id) and the header checksum.
func header(flg, bd byte, extra ...byte) []byte {
	b := append(le32(nil, frameMagic), flg, bd)
	b = append(b, extra...)
	return append(b, byte(xxh32Sum(b[4:])>>8))
}

func skippable(low byte, payload []byte) []byte {
	b := le32(nil, skippableMagic+uint32(low))
	return append(le32(b, uint32(len(payload))), payload...)
}

// frameOpts is what buildFrame puts in the descriptor.
type frameOpts struct {
	linked, blockSum, contentSum bool
	contentSize                  uint64 // written unless 0
	id                           int    // block maximum size id, 4..7
}

// buildFrame makes a frame of data cut into blocks of the block maximum,
// compressed by pierrec's block compressor, or stored if that doesn't shrink
// them. The compressor never references an earlier block, so a linked frame
// decodes like an independent one, but goes through the dictionary code.
func buildFrame(o frameOpts, data []byte) []byte {
	flg := byte(1 << flgVersionShift)
	var extra []byte
	if !o.linked {
		flg |= flgIndep
	}
	if o.blockSum {
		flg |= flgBlockSum
	}
	if o.contentSum {
		flg |= flgContentSum
	}
	if o.contentSize != 0 {
		flg |= flgContentSize
		extra = binary.LittleEndian.AppendUint64(nil, o.contentSize)
	}
	b := header(flg, byte(o.id<<bdIDShift), extra...)
	for p := data; len(p) > 0; {
		n := min(1<<(8+2*o.id), len(p))
		b = appendBlock(b, p[:n], o.blockSum)
		p = p[n:]
	}
	b = le32(b, 0)
	if o.contentSum {
		b = le32(b, xxh32Sum(data))
	}
	return b
}

func appendBlock(b, data []byte, sum bool) []byte {
	c := make([]byte, lz4.CompressBlockBound(len(data)))
	n, err := lz4.CompressBlock(data, c, nil)
	if err != nil || n == 0 || n >= len(data) {
		c, n = data, len(data)|storedBit
	}
	c = c[:n&^storedBit]
	b = append(le32(b, uint32(n)), c...)
	if sum {
		b = le32(b, xxh32Sum(c))
	}
	return b
}

// lz4Tool is the lz4 command, which writes linked blocks (pierrec's Writer
// can't). Without it the test is skipped, but fails where CI is set.
func lz4Tool(tb testing.TB) string {
	tb.Helper()
	p, err := exec.LookPath("lz4")
	if err != nil {
		if os.Getenv("CI") != "" {
			tb.Fatalf("CI is set and %v: scripts/install-deps.sh installs it", err)
		}
		tb.Skipf("%v: scripts/install-deps.sh installs it", err)
	}
	return p
}

// lz4CLI compresses the file in with the lz4 command and args.
func lz4CLI(tb testing.TB, tool, in string, args ...string) []byte {
	tb.Helper()
	out, err := exec.Command(tool, append(args, "-q", "-c", in)...).Output()
	if err != nil {
		var stderr []byte
		if e, ok := err.(*exec.ExitError); ok {
			stderr = e.Stderr
		}
		tb.Fatalf("lz4 %s: %v %s", strings.Join(args, " "), err, stderr)
	}
	return out
}

func TestLZ4RoundTrip(t *testing.T) {
	random := make([]byte, 6<<20+1000)
	rand.New(rand.NewSource(2)).Read(random)
	inputs := []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"incompressible", random},
		{"compressible", patterned(len(random), 3)},
		{"zeros", make([]byte, len(random))},
	}
	for _, bs := range []lz4.BlockSize{lz4.Block64Kb, lz4.Block256Kb, lz4.Block1Mb, lz4.Block4Mb} {
		for _, in := range inputs {
			data := in.data[:min(len(in.data), int(bs)*3/2+1000)] // two blocks, or three
			for _, sums := range [][2]bool{{false, false}, {true, false}, {false, true}, {true, true}} {
				opts := []lz4.Option{lz4.BlockSizeOption(bs), lz4.BlockChecksumOption(sums[0]), lz4.ChecksumOption(sums[1])}
				if sums[0] && len(data) > 0 {
					opts = append(opts, lz4.SizeOption(uint64(len(data))))
				}
				name := fmt.Sprintf("%s %s block checksum %v content checksum %v", bs, in.name, sums[0], sums[1])
				c := pierrecFrame(t, data, opts...)
				out, err := decodeLZ4(c)
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				if !bytes.Equal(out, data) {
					t.Fatalf("%s: %d bytes out, %d in, or different", name, len(out), len(data))
				}
			}
		}
	}
	// The io.Reader contract, on a small stream.
	data := patterned(300<<10, 9)
	c := pierrecFrame(t, data, lz4.BlockSizeOption(lz4.Block64Kb))
	if err := iotest.TestReader(newLZ4Reader(bytes.NewReader(c)), data); err != nil {
		t.Error(err)
	}
}

// TestLZ4LinkedBlocks decodes frames of linked blocks from the lz4 command,
// as PostgreSQL's server writes them (-BD -B5, no checksums), at every block
// size and with the optional fields.
func TestLZ4LinkedBlocks(t *testing.T) {
	tool := lz4Tool(t)
	// Then noise with a period of 65000 bytes: matches that reach back
	// nearly the whole 64 KiB window.
	data := patterned(7<<20, 4)
	period := make([]byte, 65000)
	rand.New(rand.NewSource(11)).Read(period)
	for range 32 {
		data = append(data, period...)
	}
	in := filepath.Join(t.TempDir(), "data")
	if err := os.WriteFile(in, data, 0o600); err != nil {
		t.Fatal(err)
	}
	size := map[string]int{}
	var stream, want []byte
	for _, args := range [][]string{
		{"-BD", "-B5", "--no-frame-crc"},
		{"-BD", "-B4"},
		{"-BD", "-B5"},
		{"-BD", "-B6", "-BX"},
		{"-BD", "-B7", "--content-size"},
		{"-BD", "-B4", "-BX", "--content-size", "--no-frame-crc"},
		{"-BD", "-B5", "-9"},
		{"-BI", "-B4"},
	} {
		name := strings.Join(args, " ")
		c := lz4CLI(t, tool, in, args...)
		size[name] = len(c)
		if linked := c[4]&flgIndep == 0; linked != slices.Contains(args, "-BD") {
			t.Fatalf("lz4 %s: FLG %#02x", name, c[4])
		}
		out, err := decodeLZ4(c)
		if err != nil {
			t.Fatalf("lz4 %s: %v", name, err)
		}
		if !bytes.Equal(out, data) {
			t.Fatalf("lz4 %s: %d bytes out, %d in, or different", name, len(out), len(data))
		}
		stream = append(append(stream, c...), skippable(byte(len(want)), []byte(name))...)
		want = append(want, data...)
	}
	// The blocks did reference earlier ones.
	if linked, indep := size["-BD -B4"], size["-BI -B4"]; linked >= indep*98/100 {
		t.Errorf("lz4 -BD -B4: %d bytes, -BI: %d; want linked blocks to compress better", linked, indep)
	}
	// One after the other, block sizes going up and down, through the stage.
	out := &sink{}
	s, err := New("lz4", out)
	if err != nil {
		t.Fatal(err)
	}
	s.Write(stream)
	if err := s.Close(); err != nil {
		t.Fatalf("concatenated: %v", err)
	}
	if !bytes.Equal(out.Bytes(), want) {
		t.Fatalf("concatenated: %d bytes out, %d in, or different", out.Len(), len(want))
	}
}

func TestLZ4ConcatenatedAndSkippable(t *testing.T) {
	a, b, c := patterned(200<<10, 5), patterned(5<<20, 6), patterned(300<<10, 7)
	stream := slices.Concat(
		skippable(0, []byte("at the start")),
		pierrecFrame(t, a, lz4.BlockSizeOption(lz4.Block64Kb)),
		skippable(0xF, make([]byte, 100000)),
		pierrecFrame(t, b, lz4.BlockSizeOption(lz4.Block4Mb), lz4.BlockChecksumOption(true)),
		pierrecFrame(t, c, lz4.BlockSizeOption(lz4.Block256Kb)),
		buildFrame(frameOpts{linked: true, contentSum: true, contentSize: uint64(len(a)), id: 4}, a),
		pierrecFrame(t, nil),
		skippable(5, nil),
	)
	out, err := decodeLZ4(stream)
	if err != nil {
		t.Fatal(err)
	}
	if want := slices.Concat(a, b, c, a); !bytes.Equal(out, want) {
		t.Fatalf("%d bytes out, %d in, or different", len(out), len(want))
	}
	if out, err := decodeLZ4(skippable(1, []byte("only"))); err != nil || len(out) != 0 {
		t.Errorf("only a skippable frame: %d bytes, %v", len(out), err)
	}
}

func TestLZ4Errors(t *testing.T) {
	data := patterned(200<<10, 8)
	good := pierrecFrame(t, data, lz4.BlockSizeOption(lz4.Block64Kb), lz4.BlockChecksumOption(true), lz4.ChecksumOption(true))
	// magic, FLG, BD, HC at 6, then the first block: its size at 7.
	n1 := int(binary.LittleEndian.Uint32(good[7:]) &^ storedBit)
	with := func(i int, f func(b []byte)) []byte {
		b := slices.Clone(good)
		f(b[i:])
		return b
	}
	flip := func(i int) []byte { return with(i, func(b []byte) { b[0] ^= 0x55 }) }
	size := func(v uint32) []byte { return with(7, func(b []byte) { binary.LittleEndian.PutUint32(b, v) }) }
	past := make([]byte, 64<<10+1) // compresses to a block bigger than 64 KiB decoded
	pastBlock := make([]byte, lz4.CompressBlockBound(len(past)))
	pastBlock = pastBlock[:must(lz4.CompressBlock(past, pastBlock, nil))]

	for _, c := range []struct {
		name, want string
		in         []byte
	}{
		{"empty stream", "empty stream", nil},
		{"bad magic", "frame 1: bad magic number 0x20746f6e", []byte("not an lz4 frame")},
		{"legacy", "legacy lz4 format", le32(nil, legacyMagic)},
		{"data after the frame", "frame 2: bad magic number", append(slices.Clone(good), "garbage"...)},
		{"version", "frame format version 0, want 1", with(4, func(b []byte) { b[0] &^= 0xC0 })},
		{"header checksum", "header checksum", flip(6)},
		{"reserved FLG bit", "reserved bits", append(header(0x40|flgReserved, 0x40), 0, 0, 0, 0)},
		{"reserved BD bit", "reserved bits", append(header(0x40, 0x41), 0, 0, 0, 0)},
		{"block id 3", "block maximum size id 3", append(header(0x40, 0x30), 0, 0, 0, 0)},
		{"dictionary id", "needs preset dictionary 0x01020304", append(header(0x41, 0x40, 4, 3, 2, 1), 0, 0, 0, 0)},
		{"block data", "frame 1 block 1: block checksum", flip(11 + 5)},
		{"block checksum", "frame 1 block 1: block checksum", flip(11 + n1 + 2)},
		{"content checksum", "frame 1: content checksum", flip(len(good) - 1)},
		{"oversized block", "block of 65537 bytes exceeds the frame's block maximum of 65536", size(64<<10 + 1)},
		{"oversized stored block", "block of 65537 bytes exceeds", size(storedBit | 64<<10 + 1)},
		{"huge block", "block of 2147483647 bytes exceeds", size(1<<31 - 1)},
		{"decoding past the block maximum", "decoding to more than the block maximum of 65536",
			slices.Concat(header(0x60, 0x40), le32(nil, uint32(len(pastBlock))), pastBlock, le32(nil, 0))},
		{"match before the frame", "block 1: compressed block of 3 bytes corrupt",
			slices.Concat(header(0x40, 0x40), le32(nil, 3), []byte{0x04, 0x05, 0x00}, le32(nil, 0))},
		{"content size too big", "frame has 204800 bytes of content, its descriptor says 204801",
			buildFrame(frameOpts{contentSize: uint64(len(data)) + 1, id: 4}, data)},
		{"content size too small", "output exceeds the frame's content size of 1000",
			buildFrame(frameOpts{linked: true, contentSize: 1000, id: 5}, data)},
		{"truncated skippable frame", "skippable frame of 100 bytes, read 4",
			slices.Concat(le32(nil, skippableMagic), le32(nil, 100), []byte("four"))},
	} {
		out, err := decodeLZ4(c.in)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %d bytes, error %v, want one with %q", c.name, len(out), err, c.want)
		}
	}

	// Truncated anywhere: in the header, a block size, a block, a block
	// checksum, the EndMark, the content checksum, the next frame's magic.
	two := append(slices.Clone(good), good...)
	cuts := []int{1, 3, 4, 5, 6, 7, 9, 10, 11, 12, 11 + n1 - 1, 11 + n1, 11 + n1 + 1, 11 + n1 + 4, 11 + n1 + 5}
	for i := range 8 {
		cuts = append(cuts, len(good)-i-1, len(good)+1+i, len(two)-i-1)
	}
	for i := range 20 {
		cuts = append(cuts, rand.New(rand.NewSource(int64(i))).Intn(len(two)))
	}
	for _, n := range cuts {
		if n == len(good) {
			continue // between the frames
		}
		if _, err := decodeLZ4(two[:n]); !errors.Is(err, io.ErrUnexpectedEOF) || !strings.Contains(err.Error(), "stream ends inside") {
			t.Errorf("cut at %d of %d: %v", n, len(two), err)
		}
	}

	// Through the stage, with its prefix.
	s, _ := New("lz4", &sink{})
	s.Write(good[:len(good)/2])
	if err := s.Close(); err == nil || !strings.HasPrefix(err.Error(), "lz4 archive: frame 1 block ") || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("truncated through the stage: %v", err)
	}
}

func must(n int, err error) int {
	if err != nil {
		panic(err)
	}
	return n
}

// TestLZ4NoAllocsPerBlock: past the first block, decoding allocates nothing,
// linked blocks or not, with checksums, stored blocks among compressed ones.
func TestLZ4NoAllocsPerBlock(t *testing.T) {
	data := patterned(120<<16, 6) // 120 blocks of 64 KiB
	for _, linked := range []bool{true, false} {
		frame := buildFrame(frameOpts{linked: linked, blockSum: true, contentSum: true, contentSize: uint64(len(data)), id: 4}, data)
		r := newLZ4Reader(bytes.NewReader(frame))
		buf := make([]byte, 64<<10)
		if _, err := io.ReadFull(r, buf); err != nil { // the first allocates the buffers
			t.Fatal(err)
		}
		allocs := testing.AllocsPerRun(100, func() { // a block a run
			if _, err := io.ReadFull(r, buf); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("linked %v: %v allocations per block", linked, allocs)
		}
	}
}

// FuzzLZ4Frame: any input decodes or fails, within the fixed buffers, and
// what decodes, pierrec's Reader decodes the same.
func FuzzLZ4Frame(f *testing.F) {
	// Small seeds: the fuzzer minimizes what it finds, slowly when large.
	text := bytes.Repeat([]byte("pg-standby takes a base backup. "), 5000) // 3 blocks of 64 KiB
	noise := patterned(2000, 7)
	b64k := lz4.BlockSizeOption(lz4.Block64Kb)
	f.Add([]byte{})
	f.Add(pierrecFrame(f, []byte("hello hello hello hello hello hello"), b64k))
	f.Add(pierrecFrame(f, text, b64k, lz4.BlockChecksumOption(true)))
	f.Add(buildFrame(frameOpts{linked: true, contentSum: true, contentSize: uint64(len(text)), id: 4}, text))
	f.Add(slices.Concat(skippable(3, []byte("skip")), pierrecFrame(f, nil, b64k), pierrecFrame(f, noise, b64k, lz4.ChecksumOption(false))))
	f.Add(slices.Concat(header(0x40, 0x40), le32(nil, 10), []byte{0x40, 'a', 'b', 'c', 'd', 0x04, 0x04, 0x00, 0x10, 'e'}, le32(nil, 0)))
	f.Fuzz(func(t *testing.T, in []byte) {
		z := newLZ4Reader(bytes.NewReader(in)).(*lz4Reader)
		out, err := io.ReadAll(z)
		if len(z.block) > 4<<20 || len(z.window) > windowSize+4<<20 {
			t.Fatalf("buffers of %d and %d bytes", len(z.block), len(z.window))
		}
		if err != nil {
			return
		}
		want, err := io.ReadAll(lz4.NewReader(bytes.NewReader(in)))
		if err != nil || !bytes.Equal(out, want) {
			t.Fatalf("we decode %d bytes, pierrec's Reader %d bytes, error %v", len(out), len(want), err)
		}
	})
}

var benchStream = sync.OnceValues(func() ([]byte, error) {
	tool, err := exec.LookPath("lz4")
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "lz4bench")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	in := filepath.Join(dir, "data")
	if err := os.WriteFile(in, patterned(64<<20, 10), 0o600); err != nil {
		return nil, err
	}
	return exec.Command(tool, "-q", "-BD", "-B5", "--no-frame-crc", "-c", in).Output()
})

// BenchmarkLZ4Linked decodes 64 MiB that lz4 -BD -B5 compressed (256 KiB
// linked blocks, as PostgreSQL writes them) with our reader and pierrec's,
// reading 256 KiB at a time like the stage.
func BenchmarkLZ4Linked(b *testing.B) {
	lz4Tool(b)
	c, err := benchStream()
	if err != nil {
		b.Fatal(err)
	}
	for _, r := range []struct {
		name string
		new  func(io.Reader) io.Reader
	}{
		{"ours", newLZ4Reader},
		{"pierrec", func(r io.Reader) io.Reader { return lz4.NewReader(r) }},
	} {
		b.Run(r.name, func(b *testing.B) {
			buf := make([]byte, bufSize)
			b.SetBytes(64 << 20)
			b.ReportAllocs()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			for b.Loop() {
				dec := r.new(bytes.NewReader(c))
				total := 0
				for {
					n, err := io.ReadFull(dec, buf)
					total += n
					if err != nil {
						break
					}
				}
				if total != 64<<20 {
					b.Fatalf("%d bytes", total)
				}
			}
			runtime.ReadMemStats(&after)
			blocks := b.N * (64 << 20) / (256 << 10)
			b.ReportMetric(float64(after.Mallocs-before.Mallocs)/float64(blocks), "allocs/block")
		})
	}
}

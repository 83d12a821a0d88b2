package incremental

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
)

// Magic starts every incremental file (INCREMENTAL_MAGIC in
// src/include/backup/basebackup_incremental.h). The server writes it, like
// the other header words, in its native byte order; this package assumes the
// server shares this host's byte order, as pg_combinebackup does.
const Magic uint32 = 0xd3ae1f0d

// Params are the server's build constants the format depends on: BLCKSZ and
// RELSEG_SIZE (blocks per segment file). Read them from the server
// (SHOW block_size, SHOW segment_size: see ProbeServer); DefaultParams are
// PostgreSQL's defaults.
type Params struct {
	BlockSize     int    // BLCKSZ, bytes
	SegmentBlocks uint32 // RELSEG_SIZE, blocks
}

// DefaultParams are BLCKSZ 8192 and RELSEG_SIZE 131072 (1 GiB segments).
func DefaultParams() Params { return Params{BlockSize: 8192, SegmentBlocks: 131072} }

// Check accepts what configure accepts: BLCKSZ a power of two from 1 kB to
// 32 kB, and a segment of at least one block that fits a signed 64-bit size.
func (p Params) Check() error {
	if p.BlockSize < 1024 || p.BlockSize > 32768 || p.BlockSize&(p.BlockSize-1) != 0 {
		return fmt.Errorf("block size %d: want a power of two from 1024 to 32768", p.BlockSize)
	}
	if p.SegmentBlocks == 0 {
		return errors.New("segment size of 0 blocks")
	}
	return nil
}

// Header is the decoded head of an incremental file: three uint32 (magic,
// block count, truncation block length), the relative block numbers, and,
// when there is at least one block, zero padding to a multiple of BLCKSZ
// (PostgreSQL 17's GetIncrementalHeaderSize) so block contents are aligned.
type Header struct {
	// Blocks are the relative block numbers whose contents follow, in
	// order; strictly ascending and below SegmentBlocks (checked).
	Blocks []uint32
	// TruncationBlocks is the minimum length of the result in blocks:
	// below it, a block absent from Blocks comes from the prior file.
	TruncationBlocks uint32
}

// headerLen is the header's length in bytes including its padding.
func headerLen(nblocks uint32, blockSize int) int64 {
	n := int64(12) + 4*int64(nblocks)
	if nblocks > 0 && n%int64(blockSize) != 0 {
		n += int64(blockSize) - n%int64(blockSize)
	}
	return n
}

// FileSize is the exact size of the incremental file h describes.
func (h *Header) FileSize(p Params) int64 {
	n := uint32(len(h.Blocks))
	return headerLen(n, p.BlockSize) + int64(n)*int64(p.BlockSize)
}

// Length is the reconstructed file's length in blocks (reconstruct.c's
// find_reconstructed_block_length): the truncation length, or past the
// highest block sent if that is further.
func (h *Header) Length() uint32 {
	l := h.TruncationBlocks
	if n := len(h.Blocks); n > 0 && h.Blocks[n-1] >= l {
		l = h.Blocks[n-1] + 1
	}
	return l
}

// The conditions a FormatError reports; test with errors.Is.
var (
	ErrBadMagic         = errors.New("bad magic number")
	ErrTooManyBlocks    = errors.New("block count exceeds the segment size")
	ErrTruncationLength = errors.New("truncation block length exceeds the segment size")
	ErrBlockOrder       = errors.New("block numbers not strictly ascending")
	ErrBlockRange       = errors.New("block number beyond the segment size")
	ErrSizeMismatch     = errors.New("file size does not match its header")
	ErrShort            = errors.New("file ends early")
	ErrTrailing         = errors.New("data past the last block")
)

// FormatError says an incremental file from the server is malformed. The
// file must not be used; nothing about it is trusted.
type FormatError struct {
	Name   string // member name, "" when unknown
	Offset int64  // byte offset in the incremental file
	Err    error  // one of the Err* conditions above
	Detail string
}

func (e *FormatError) Error() string {
	var b strings.Builder
	b.WriteString("incremental file")
	if e.Name != "" {
		fmt.Fprintf(&b, " %q", e.Name)
	}
	fmt.Fprintf(&b, " at byte %d: %v", e.Offset, e.Err)
	if e.Detail != "" {
		b.WriteString(" (" + e.Detail + ")")
	}
	return b.String()
}

func (e *FormatError) Unwrap() error { return e.Err }

// Sink receives a decoded incremental file: Header once, before any block,
// then each block in file order. data is borrowed: valid only during the call.
type Sink interface {
	Header(h *Header) error
	Block(blkno uint32, data []byte) error
}

// Decoder is a push decoder of one incremental file (a stage of the archive
// chain feeds it the member's contents chunk by chunk). Its memory is bounded
// by the parameters: 4 bytes per block number (at most 4*SegmentBlocks) and
// one block buffer, whatever the server sends.
type Decoder struct {
	p      Params
	name   string
	size   int64 // the member size announced by the archive; -1 if unknown
	sink   Sink
	off    int64
	fixed  [12]byte
	h      Header
	hdrEnd int64  // offset where block contents start; 0 until known
	buf    []byte // current block
	fill   int
	next   int // index in h.Blocks of the block being filled
	err    error
}

// NewDecoder decodes a file of size bytes (the tar member's size, or -1 when
// unknown) named name (for errors) into sink.
func NewDecoder(p Params, name string, size int64, sink Sink) (*Decoder, error) {
	if err := p.Check(); err != nil {
		return nil, err
	}
	return &Decoder{p: p, name: name, size: size, sink: sink}, nil
}

func (d *Decoder) fail(cond error, format string, args ...any) error {
	d.err = &FormatError{Name: d.name, Offset: d.off, Err: cond, Detail: fmt.Sprintf(format, args...)}
	return d.err
}

// Write consumes the next chunk of the file. After an error every call
// returns that error.
func (d *Decoder) Write(p []byte) error {
	for len(p) > 0 && d.err == nil {
		var n int
		var err error
		switch {
		case d.off < 12:
			n, err = d.writeFixed(p)
		case d.hdrEnd == 0 || d.off < d.hdrEnd:
			n, err = d.writeHeader(p)
		default:
			n, err = d.writeBlock(p)
		}
		d.off += int64(n)
		p = p[n:]
		if err != nil && d.err == nil {
			d.err = err
		}
	}
	return d.err
}

func (d *Decoder) writeFixed(p []byte) (int, error) {
	n := copy(d.fixed[d.off:], p)
	if d.off+int64(n) < 12 {
		return n, nil
	}
	ne := binary.NativeEndian
	if m := ne.Uint32(d.fixed[0:]); m != Magic {
		return n, d.fail(ErrBadMagic, "0x%x, want 0x%x", m, Magic)
	}
	count, trunc := ne.Uint32(d.fixed[4:]), ne.Uint32(d.fixed[8:])
	if count > d.p.SegmentBlocks {
		return n, d.fail(ErrTooManyBlocks, "%d blocks, segment of %d", count, d.p.SegmentBlocks)
	}
	if trunc > d.p.SegmentBlocks {
		return n, d.fail(ErrTruncationLength, "%d blocks, segment of %d", trunc, d.p.SegmentBlocks)
	}
	want := headerLen(count, d.p.BlockSize) + int64(count)*int64(d.p.BlockSize)
	if d.size >= 0 && d.size != want {
		return n, d.fail(ErrSizeMismatch, "member of %d bytes, header says %d blocks: %d bytes", d.size, count, want)
	}
	d.size = want
	d.h = Header{Blocks: make([]uint32, 0, count), TruncationBlocks: trunc}
	d.hdrEnd = headerLen(count, d.p.BlockSize)
	return n, d.headerDoneAt(d.off + int64(n))
}

// writeHeader takes block numbers, one word at a time, then the padding.
func (d *Decoder) writeHeader(p []byte) (int, error) {
	numEnd := 12 + 4*int64(cap(d.h.Blocks))
	if d.off >= numEnd { // padding: contents ignored, as pg_combinebackup does
		n := min(int64(len(p)), d.hdrEnd-d.off)
		return int(n), d.headerDoneAt(d.off + n)
	}
	n := copy(d.fixed[(d.off-12)%4:4], p)
	if (d.off-12)%4+int64(n) < 4 {
		return n, nil
	}
	b := binary.NativeEndian.Uint32(d.fixed[:4])
	if b >= d.p.SegmentBlocks {
		return n, d.fail(ErrBlockRange, "block %d, segment of %d", b, d.p.SegmentBlocks)
	}
	if k := len(d.h.Blocks); k > 0 && b <= d.h.Blocks[k-1] {
		return n, d.fail(ErrBlockOrder, "block %d after %d", b, d.h.Blocks[k-1])
	}
	d.h.Blocks = append(d.h.Blocks, b)
	return n, d.headerDoneAt(d.off + int64(n))
}

// headerDoneAt hands the header on once its last byte (at off-1) arrived.
func (d *Decoder) headerDoneAt(off int64) error {
	if off != d.hdrEnd {
		return nil
	}
	if len(d.h.Blocks) > 0 { // most increments of a resync have none: 8 KiB each for the GC
		d.buf = make([]byte, d.p.BlockSize)
	}
	return d.sink.Header(&d.h)
}

func (d *Decoder) writeBlock(p []byte) (int, error) {
	if d.next >= len(d.h.Blocks) {
		return 0, d.fail(ErrTrailing, "file of %d bytes", d.size)
	}
	n := copy(d.buf[d.fill:], p)
	d.fill += n
	if d.fill < len(d.buf) {
		return n, nil
	}
	d.fill = 0
	d.next++
	return n, d.sink.Block(d.h.Blocks[d.next-1], d.buf)
}

// Close checks that the whole file arrived.
func (d *Decoder) Close() error {
	if d.err != nil {
		return d.err
	}
	if d.off < 12 || d.off != d.size {
		want := d.size
		if d.off < 12 {
			want = 12
		}
		return d.fail(ErrShort, "%d of %d bytes", d.off, want)
	}
	return nil
}

// Decoded is the decoded header, nil before it has arrived. (Rebuilder's
// Header is its Sink method.)
func (d *Decoder) Decoded() *Header {
	if d.buf == nil {
		return nil
	}
	return &d.h
}

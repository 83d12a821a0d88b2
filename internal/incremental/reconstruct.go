package incremental

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
)

// IncrementalPrefix starts the base name of an incremental file in the
// archive: dir/INCREMENTAL.<name> stands for dir/<name>.
const IncrementalPrefix = "INCREMENTAL."

// TargetName maps a member name to the file it reconstructs: ok is false when
// the member is not an incremental file.
func TargetName(member string) (target string, ok bool) {
	dir, base := path.Split(member)
	rest, ok := strings.CutPrefix(base, IncrementalPrefix)
	if !ok || rest == "" {
		return "", false
	}
	return dir + rest, true
}

// ErrNoPrior says the file to reconstruct is not in the data directory (or is
// not a regular file): the increment cannot be applied, and the attempt must
// fall back to a full copy of that file.
var ErrNoPrior = errors.New("no prior file to apply the increment to")

// ErrPriorChanged says the file to reconstruct no longer has the size it
// was listed with: something else wrote the data directory since.
var ErrPriorChanged = errors.New("the prior file changed since it was listed")

// Result is what a reconstruction did.
type Result struct {
	Size       int64 // the reconstructed file's size
	PriorSize  int64 // the prior file's size
	Received   int   // blocks written from the increment
	Kept       int   // blocks kept from the prior file
	ZeroFilled int   // blocks that are zero (past the prior file, not sent)
	Changed    bool  // the file was cut, extended or written to
}

// Rebuilder reconstructs one file in place: fed the increment through its
// Decoder, it applies pg_combinebackup's rule (reconstruct.c) to the prior
// file root/name without a second copy of the file:
//
//   - the result has Header.Length() blocks;
//   - a block sent in the increment is the increment's;
//   - else a block below both the truncation length and the prior file's
//     length (in whole blocks) is the prior file's;
//   - else it is zeros.
//
// It does so by cutting the prior file to min(prior blocks, truncation
// length), extending it to the result's length (the kernel zero-fills), and
// writing the sent blocks at their offsets; Close fsyncs, or Finish hands
// the file on for the caller to fsync. The file is opened only when the
// increment changes it: a file the increment leaves as it was (no block
// sent, same length; on a resync most files are such) costs no system call.
//
// Crash safety is the caller's: from the first change the file is neither
// the prior version nor the result, so BeforeChange must durably record that
// name is incomplete (resume.Journal.Forget), and only once the file is
// fsynced may the caller record it complete again (resume.Journal.Complete).
// A kill at any moment then leaves the file either unlisted (and sent whole
// by the next attempt) or correct. A file left as it was is never changed,
// so it never leaves the journal.
//
// With Hold set, a changed file whose blocks fit in it is not touched at
// all: Finish leaves it Held, and Apply, called once the caller durably
// recorded the file incomplete (for several held files, one journal
// append), makes the change. BeforeChange then never runs.
type Rebuilder struct {
	*Decoder
	// BeforeChange, when set, runs once before the file's first change
	// (cut, extension or block); its error fails the reconstruction with
	// the file untouched.
	BeforeChange func() error
	// Hold, when set, is where a changed file's blocks wait for Apply.
	Hold *Held
	// MakeRoom, when set, runs when the blocks would fit in Hold were it
	// empty but not in what is left: the caller applies what Hold holds
	// and resets it.
	MakeRoom func() error
	// Open opens the prior file for writing (root.OpenFile(name, O_RDWR)
	// by default); a caller may walk the path its own way.
	Open func() (*os.File, error)
	// Path names the file in messages: NewRebuilder's name, which a caller
	// may replace with the whole path.
	Path    string
	f       *os.File
	p       Params
	res     Result
	keep    uint32   // prior blocks kept
	blocks  []uint32 // the sent block numbers, while held
	held    []byte   // their contents, in that order: a part of Hold
	n       int      // blocks held so far
	pending bool     // the change is held
}

// NewRebuilder prepares the reconstruction of root/name, a file of prior
// bytes (the size its caller listed it with, which the open checks), from
// an increment of size bytes (the member's size; -1 when unknown). root
// confines the open to the data directory (os.Root refuses paths and links
// leading out of it).
func NewRebuilder(root *os.Root, name string, prior, size int64, p Params) (*Rebuilder, error) {
	r := &Rebuilder{Path: name, p: p, res: Result{PriorSize: prior}}
	r.Open = func() (*os.File, error) { return root.OpenFile(name, os.O_RDWR, 0) }
	var err error
	if r.Decoder, err = NewDecoder(p, IncrementalPrefix+path.Base(name), size, r); err != nil {
		return nil, err
	}
	return r, nil
}

// Header (the Sink side) decides what the increment does to the file, and
// when it changes it and is not held, cuts and extends it before any block
// lands.
func (r *Rebuilder) Header(h *Header) error {
	bs := int64(r.p.BlockSize)
	r.keep = min(uint32(r.res.PriorSize/bs), h.TruncationBlocks)
	length := h.Length()
	r.res.Size = int64(length) * bs
	r.res.Received = len(h.Blocks)
	r.res.Kept = int(r.keep)
	for _, b := range h.Blocks {
		if b < r.keep {
			r.res.Kept--
		}
	}
	r.res.ZeroFilled = int(length) - r.res.Kept - r.res.Received
	if r.res.PriorSize == r.res.Size && len(h.Blocks) == 0 {
		return nil
	}
	r.res.Changed = true
	if held, err := r.hold(h.Blocks); held || err != nil {
		return err
	}
	if r.BeforeChange != nil {
		if err := r.BeforeChange(); err != nil {
			return fmt.Errorf("reconstruct %s: %w", r.Path, err)
		}
	}
	return r.resize()
}

// hold keeps the change for Apply when Hold can take the blocks, once
// MakeRoom emptied it if need be.
func (r *Rebuilder) hold(blocks []uint32) (bool, error) {
	if r.Hold == nil {
		return false, nil
	}
	n := len(blocks) * r.p.BlockSize
	if !r.Hold.room(n) && n <= r.Hold.Limit && r.MakeRoom != nil {
		if err := r.MakeRoom(); err != nil {
			return false, fmt.Errorf("reconstruct %s: %w", r.Path, err)
		}
	}
	if r.held, r.pending = r.Hold.take(n); r.pending {
		r.blocks = slices.Clone(blocks)
	}
	return r.pending, nil
}

// resize opens the prior file, checks it is the one listed, and cuts and
// extends it to the result's length.
func (r *Rebuilder) resize() error {
	f, err := r.Open()
	if errors.Is(err, fs.ErrNotExist) {
		err = ErrNoPrior
	}
	if err != nil {
		return fmt.Errorf("reconstruct %s: %w", r.Path, err)
	}
	r.f = f
	st, err := f.Stat()
	if err == nil && !st.Mode().IsRegular() {
		err = fmt.Errorf("%w: a %v", ErrNoPrior, st.Mode().Type())
	}
	if err == nil && st.Size() != r.res.PriorSize {
		err = fmt.Errorf("%w: %d bytes, listed with %d", ErrPriorChanged, st.Size(), r.res.PriorSize)
	}
	if err != nil {
		return fmt.Errorf("reconstruct %s: %w", r.Path, err)
	}
	bs := int64(r.p.BlockSize)
	if r.res.PriorSize != int64(r.keep)*bs {
		if err := f.Truncate(int64(r.keep) * bs); err != nil {
			return fmt.Errorf("reconstruct %s: cut to %d blocks: %w", r.Path, r.keep, err)
		}
	}
	if r.res.Size != int64(r.keep)*bs {
		if err := f.Truncate(r.res.Size); err != nil {
			return fmt.Errorf("reconstruct %s: extend to %d blocks: %w", r.Path, r.res.Size/bs, err)
		}
	}
	return nil
}

// Block (the Sink side) writes one sent block at its offset, or keeps it.
func (r *Rebuilder) Block(blkno uint32, data []byte) error {
	if r.pending {
		copy(r.held[r.n*r.p.BlockSize:], data)
		r.n++
		return nil
	}
	return r.write(blkno, data)
}

func (r *Rebuilder) write(blkno uint32, data []byte) error {
	if _, err := r.f.WriteAt(data, int64(blkno)*int64(r.p.BlockSize)); err != nil {
		return fmt.Errorf("reconstruct %s: write block %d: %w", r.Path, blkno, err)
	}
	return nil
}

// Finish checks the increment was complete and hands on the reconstructed
// file, open: the caller must fsync and close it (or give it to a
// durable.Syncer) before the file counts as reconstructed. The file is nil
// when the increment left it as it was, or when it is Held (then Apply
// changes it). On an error the file is closed, torn.
func (r *Rebuilder) Finish() (*os.File, Result, error) {
	if err := r.Decoder.Close(); err != nil {
		r.Abort()
		return nil, Result{}, err
	}
	f := r.f
	r.f = nil // the caller's now
	return f, r.res, nil
}

// Pending reports whether Finish left the file's change held for Apply.
func (r *Rebuilder) Pending() bool { return r.pending }

// Apply makes a held file's change and hands the file on as Finish does.
// Call it only once the file is durably recorded as incomplete: from here
// on it is torn until fsynced. The held blocks are released.
func (r *Rebuilder) Apply() (*os.File, error) {
	held, blocks := r.held, r.blocks
	r.held, r.blocks, r.pending = nil, nil, false
	err := r.resize()
	for i := 0; err == nil && i < len(blocks); i++ {
		bs := r.p.BlockSize
		err = r.write(blocks[i], held[i*bs:(i+1)*bs])
	}
	if err != nil {
		r.Abort()
		return nil, err
	}
	f := r.f
	r.f = nil
	return f, nil
}

// Close is Finish (and Apply, when held), then fsync and close. Only a nil
// error means the file is the reconstructed one, durably.
func (r *Rebuilder) Close() (Result, error) {
	f, res, err := r.Finish()
	if err == nil && r.Pending() {
		f, err = r.Apply()
	}
	if err != nil || f == nil {
		return res, err
	}
	err = f.Sync()
	if err != nil {
		err = fmt.Errorf("reconstruct %s: fsync: %w", r.Path, err)
	}
	if cerr := f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("reconstruct %s: close: %w", r.Path, cerr)
	}
	if err != nil {
		return Result{}, err
	}
	return res, nil
}

// Abort closes the file after a failure (a file changed is torn and must
// stay unlisted) and drops what is held.
func (r *Rebuilder) Abort() {
	if r.f != nil {
		r.f.Close()
		r.f = nil
	}
	r.held, r.blocks, r.pending = nil, nil, false
}

// Held is memory that Rebuilders share to keep changed files' blocks until
// their caller durably recorded, for all of them at once, that the files
// will change. Limit bounds it; Reset reuses it once every holder applied.
type Held struct {
	Limit int
	buf   []byte
}

// room reports whether n more bytes fit.
func (h *Held) room(n int) bool { return len(h.buf)+n <= h.Limit }

// take is n bytes of h; ok is false when they do not fit.
func (h *Held) take(n int) (b []byte, ok bool) {
	if !h.room(n) {
		return nil, false
	}
	if h.buf == nil {
		h.buf = make([]byte, 0, h.Limit)
	}
	start := len(h.buf)
	h.buf = h.buf[:start+n]
	return h.buf[start : start+n : start+n], true
}

// Reset makes all of h free again: its holders must have applied or aborted.
func (h *Held) Reset() { h.buf = h.buf[:0] }

package incremental

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
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

// Result is what a reconstruction did.
type Result struct {
	Size       int64 // the reconstructed file's size
	PriorSize  int64 // the prior file's size
	Received   int   // blocks written from the increment
	Kept       int   // blocks kept from the prior file
	ZeroFilled int   // blocks that are zero (past the prior file, not sent)
	Changed    bool  // the file was cut, extended or written to
}

// Rebuilder reconstructs one file in place: it opens the prior file
// root/name, and, fed the increment through its Decoder, applies
// pg_combinebackup's rule (reconstruct.c) without a second copy of the file:
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
// the file on for the caller to fsync.
//
// Crash safety is the caller's: from the first change the file is neither
// the prior version nor the result, so BeforeChange must durably record that
// name is incomplete (resume.Journal.Forget), and only once the file is
// fsynced may the caller record it complete again (resume.Journal.Complete).
// A kill at any moment then leaves the file either unlisted (and sent whole
// by the next attempt) or correct. A file the increment leaves as it was
// (no block sent, same length) is never changed, so it never leaves the
// journal: on a resync most files are such.
type Rebuilder struct {
	*Decoder
	// BeforeChange, when set, runs once before the file's first change
	// (cut, extension or block); its error fails the reconstruction with
	// the file untouched.
	BeforeChange func() error
	// Path names the file in messages: NewRebuilder's name, which a caller
	// opening in a subdirectory's root may replace with the whole path.
	Path  string
	f     *os.File
	p     Params
	res   Result
	ready bool
}

// NewRebuilder opens root/name for reconstruction from an increment of size
// bytes (the member's size; -1 when unknown). root confines the open to the
// data directory (os.Root refuses paths and links leading out of it).
func NewRebuilder(root *os.Root, name string, size int64, p Params) (*Rebuilder, error) {
	f, err := root.OpenFile(name, os.O_RDWR, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("reconstruct %s: %w", name, ErrNoPrior)
	}
	if err != nil {
		return nil, fmt.Errorf("reconstruct %s: %w", name, err)
	}
	st, err := f.Stat()
	if err == nil && !st.Mode().IsRegular() {
		err = fmt.Errorf("%w: %s is a %v", ErrNoPrior, name, st.Mode().Type())
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("reconstruct %s: %w", name, err)
	}
	r := &Rebuilder{f: f, Path: name, p: p, res: Result{PriorSize: st.Size()}}
	if r.Decoder, err = NewDecoder(p, IncrementalPrefix+path.Base(name), size, r); err != nil {
		f.Close()
		return nil, err
	}
	return r, nil
}

// Header (the Sink side) cuts and extends the file before any block lands.
func (r *Rebuilder) Header(h *Header) error {
	bs := int64(r.p.BlockSize)
	keep := min(uint32(r.res.PriorSize/bs), h.TruncationBlocks)
	length := h.Length()
	if r.res.PriorSize != int64(length)*bs || len(h.Blocks) > 0 {
		if err := r.change(); err != nil {
			return err
		}
	}
	if r.res.PriorSize != int64(keep)*bs {
		if err := r.f.Truncate(int64(keep) * bs); err != nil {
			return fmt.Errorf("reconstruct %s: cut to %d blocks: %w", r.Path, keep, err)
		}
	}
	if length != keep {
		if err := r.f.Truncate(int64(length) * bs); err != nil {
			return fmt.Errorf("reconstruct %s: extend to %d blocks: %w", r.Path, length, err)
		}
	}
	r.res.Size = int64(length) * bs
	r.res.Received = len(h.Blocks)
	r.res.Kept = int(keep)
	for _, b := range h.Blocks {
		if b < keep {
			r.res.Kept--
		}
	}
	r.res.ZeroFilled = int(length) - r.res.Kept - r.res.Received
	r.ready = true
	return nil
}

// change runs BeforeChange once, before anything in the file changes.
func (r *Rebuilder) change() error {
	if r.res.Changed {
		return nil
	}
	if r.BeforeChange != nil {
		if err := r.BeforeChange(); err != nil {
			return fmt.Errorf("reconstruct %s: %w", r.Path, err)
		}
	}
	r.res.Changed = true
	return nil
}

// Block (the Sink side) writes one sent block at its offset.
func (r *Rebuilder) Block(blkno uint32, data []byte) error {
	if _, err := r.f.WriteAt(data, int64(blkno)*int64(r.p.BlockSize)); err != nil {
		return fmt.Errorf("reconstruct %s: write block %d: %w", r.Path, blkno, err)
	}
	return nil
}

// Finish checks the increment was complete and hands on the reconstructed
// file, open: the caller must fsync and close it (or give it to a
// durable.Syncer) before the file counts as reconstructed. On an error the
// file is closed, torn.
func (r *Rebuilder) Finish() (*os.File, Result, error) {
	if err := r.Decoder.Close(); err != nil {
		r.f.Close()
		return nil, Result{}, err
	}
	return r.f, r.res, nil
}

// Close is Finish, then fsync and close. Only a nil error means the file is
// the reconstructed one, durably.
func (r *Rebuilder) Close() (Result, error) {
	f, res, err := r.Finish()
	if err != nil {
		return Result{}, err
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

// Abort closes the file after a failure; the file is torn and must stay
// unlisted.
func (r *Rebuilder) Abort() { r.f.Close() }

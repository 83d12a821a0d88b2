package manifest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
)

// Observed is what pg-standby saw while writing one file.
type Observed struct {
	Size     int64
	Checksum []byte // Sum() of the manifest algorithm's hash (Algorithm.NewHash); nil if none
	listed   bool   // VerifyEach's mark: the manifest lists the file (cleared before it returns)
}

// SizeMismatch is a file written with a size other than the manifest's.
type SizeMismatch struct {
	Path              string
	Manifest, Written int64
}

// ChecksumMismatch is a file whose written bytes do not hash to the
// manifest's checksum. Written is nil when no checksum was computed.
type ChecksumMismatch struct {
	Path              string
	Algorithm         Algorithm
	Manifest, Written []byte
}

// Mismatch is the error Verify returns: every way the written files differ
// from the manifest. The lists are complete; Error shows the first
// MaxListed entries.
type Mismatch struct {
	Missing       []string           // in the manifest, never written (manifest order)
	Extra         []string           // written, not in the manifest (sorted)
	WrongSize     []SizeMismatch     // manifest order
	WrongChecksum []ChecksumMismatch // manifest order; only files whose size matched
}

// MaxListed is how many problems Mismatch.Error spells out before
// summarising the rest as "and N more".
const MaxListed = 20

// Count is the number of problems.
func (e *Mismatch) Count() int {
	return len(e.Missing) + len(e.Extra) + len(e.WrongSize) + len(e.WrongChecksum)
}

// Error is a summary line followed by one indented line per problem, at
// most MaxListed of them.
func (e *Mismatch) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "written files do not match the backup manifest: %d missing, %d not in manifest, %d wrong size, %d wrong checksum",
		len(e.Missing), len(e.Extra), len(e.WrongSize), len(e.WrongChecksum))
	listed := 0
	line := func(format string, args ...any) {
		if listed < MaxListed {
			b.WriteString("\n\t")
			fmt.Fprintf(&b, format, args...)
		}
		listed++
	}
	for _, p := range e.Missing {
		line("%q: in the manifest, never written", p)
	}
	for _, p := range e.Extra {
		line("%q: written, not in the manifest", p)
	}
	for _, s := range e.WrongSize {
		line("%q: wrote %d bytes, manifest says %d", s.Path, s.Written, s.Manifest)
	}
	for _, c := range e.WrongChecksum {
		if c.Written == nil {
			line("%q: no %s checksum computed, manifest says %x", c.Path, c.Algorithm, c.Manifest)
		} else {
			line("%q: %s checksum %x, manifest says %x", c.Path, c.Algorithm, c.Written, c.Manifest)
		}
	}
	if listed > MaxListed {
		fmt.Fprintf(&b, "\n\tand %d more", listed-MaxListed)
	}
	return b.String()
}

// Verify compares what was written, keyed by manifest path (File.Path:
// decoded, '/'-separated, relative to the data directory, tablespace files
// as pg_tblspc/<oid>/...), against m. observed must hold only files the
// manifest describes: not backup_manifest itself, and not WAL segments
// (the manifest never lists them; it does list pg_wal/archive_status/*.done
// files when WAL is included in the backup).
//
// keep reports paths the instance deliberately kept from its own copy
// (e.g. postgresql.conf); a kept path is not compared and raises no
// finding, whether or not it was written or is in the manifest. keep may be
// nil.
//
// Verify reports, all at once, files in the manifest never written, files
// written but not in the manifest, size mismatches, and checksum mismatches
// (for files with a manifest checksum whose size matched; a file of the
// wrong size is reported only as such). It returns nil when everything
// matches, and otherwise a *Mismatch. m is expected to come from Parse,
// which guarantees unique paths.
func Verify(m *Manifest, observed map[string]Observed, keep func(path string) bool) error {
	if m == nil {
		return errors.New("verify: no manifest")
	}
	v := newVerifier(observed, keep)
	for i := range m.Files {
		v.file(&m.Files[i])
	}
	// Paths are unique in a parsed manifest, so extras exist exactly when
	// fewer manifest paths were written than paths were observed; only then
	// is a set of manifest paths worth building.
	var inManifest map[string]struct{}
	return v.finish(func(p string) bool {
		if inManifest == nil {
			inManifest = make(map[string]struct{}, len(m.Files))
			for i := range m.Files {
				inManifest[m.Files[i].Path] = struct{}{}
			}
		}
		_, ok := inManifest[p]
		return ok
	})
}

// verifier is Verify one file at a time, for VerifyReader.
type verifier struct {
	observed  map[string]Observed
	keep      func(string) bool
	e         Mismatch
	matched   int
	unwritten map[string]struct{} // listed paths not in observed (seen)
}

func newVerifier(observed map[string]Observed, keep func(string) bool) *verifier {
	return &verifier{observed: observed, keep: keep}
}

func (v *verifier) kept(p string) bool { return v.keep != nil && v.keep(p) }

func (v *verifier) file(f *File) {
	o, written := v.observed[f.Path]
	if written {
		v.matched++
	}
	if v.kept(f.Path) {
		return
	}
	switch {
	case !written:
		v.e.Missing = append(v.e.Missing, f.Path)
	case o.Size != f.Size:
		v.e.WrongSize = append(v.e.WrongSize, SizeMismatch{Path: f.Path, Manifest: f.Size, Written: o.Size})
	case f.Algorithm != None && !bytes.Equal(o.Checksum, f.Checksum):
		v.e.WrongChecksum = append(v.e.WrongChecksum, ChecksumMismatch{
			Path: f.Path, Algorithm: f.Algorithm, Manifest: f.Checksum, Written: o.Checksum,
		})
	}
}

// seen is the streaming parser's duplicate check: an observed path is
// marked in observed itself, so that no second set of every path is built
// (4.2 MB at 60,000 files); only listed paths never written get a set.
func (v *verifier) seen(p string) bool {
	if o, ok := v.observed[p]; ok {
		if o.listed {
			return true
		}
		o.listed = true
		v.observed[p] = o
		return false
	}
	if _, dup := v.unwritten[p]; dup {
		return true
	}
	if v.unwritten == nil {
		v.unwritten = make(map[string]struct{})
	}
	v.unwritten[p] = struct{}{}
	return false
}

// unmark clears seen's marks: observed is left as the caller gave it.
func (v *verifier) unmark() {
	for p, o := range v.observed {
		if o.listed {
			o.listed = false
			v.observed[p] = o
		}
	}
}

// finish adds the extras; listed reports whether the manifest has a path.
func (v *verifier) finish(listed func(string) bool) error {
	e := &v.e
	if v.matched < len(v.observed) {
		for p := range v.observed {
			if !listed(p) && !v.kept(p) {
				e.Extra = append(e.Extra, p)
			}
		}
		slices.Sort(e.Extra)
	}
	if e.Count() == 0 {
		return nil
	}
	return e
}

// VerifyReader parses the manifest from r as ParseReader does and checks
// the files against observed as Verify does, one file at a time, so that
// neither the list of files nor a set of their paths is kept (duplicates
// are told by marks in observed, cleared before it returns): the returned
// Manifest has no Files, and NumFiles says how many there were. err is
// ParseReader's (a *FormatError); mismatch, meaningful only when err is
// nil, is Verify's.
func VerifyReader(r io.Reader, observed map[string]Observed, keep func(path string) bool) (m *Manifest, mismatch, err error) {
	return VerifyEach(r, observed, keep, nil)
}

// VerifyEach is VerifyReader that also hands each file, once checked, to
// each (when not nil), in the manifest's order: a caller writes what it
// derives from the files in the same pass. *File is valid only during the
// call. each sees the files of a document that may still turn out bad
// (a later syntax error, a wrong Manifest-Checksum): it must not act on
// them until err is known to be nil.
func VerifyEach(r io.Reader, observed map[string]Observed, keep func(path string) bool, each func(*File)) (m *Manifest, mismatch, err error) {
	v := newVerifier(observed, keep)
	defer v.unmark()
	n := 0
	m, err = parseStreamFiles(r, func(f *File) {
		n++
		v.file(f)
		if each != nil {
			each(f)
		}
	}, v.seen)
	if err != nil {
		return nil, nil, &FormatError{Err: err}
	}
	m.NumFiles = n
	return m, v.finish(func(p string) bool { return v.observed[p].listed }), nil
}

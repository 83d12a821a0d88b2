package extract

import "github.com/pg-standby/pg-standby/internal/tarstream"

// Keep edits which members reach the writer, as astreamer_inject.c does
// between parser and writer: a file the instance keeps its own copy of is
// dropped (the stages in front have recorded it), and a diverted file goes
// on under its local name. The writer never learns either happened.
type Keep struct {
	next   tarstream.Stage
	prefix string                 // manifest path of the archive's root
	keep   func(path string) bool // manifest paths whose local copy the instance keeps
	divert map[string]string      // manifest path → local name it is written under

	drop    bool             // the current member is kept: nothing goes on
	rename  bool             // the current member goes on as renamed
	renamed tarstream.Member // its copy under the local name
}

// NewKeep returns a Keep stage in front of next; keep may be nil.
func NewKeep(next tarstream.Stage, prefix string, keep func(path string) bool, divert map[string]string) *Keep {
	return &Keep{next: next, prefix: prefix, keep: keep, divert: divert}
}

// Write implements tarstream.Stage.
func (k *Keep) Write(part tarstream.Part, m *tarstream.Member, p []byte) error {
	if part == tarstream.Header {
		k.drop, k.rename = false, false
		if m.Type == tarstream.File {
			mpath := k.prefix + m.Name
			k.drop = k.keep != nil && k.keep(mpath)
			if local, ok := k.divert[mpath]; ok {
				k.renamed, k.rename = *m, true
				k.renamed.Name = local
			}
		}
	}
	switch {
	case part == tarstream.ArchiveEnd:
	case k.drop:
		return nil
	case k.rename:
		return k.next.Write(part, &k.renamed, p)
	}
	return k.next.Write(part, m, p)
}

// WriteFrom implements tarstream.SourceStage.
func (k *Keep) WriteFrom(m *tarstream.Member, src tarstream.Source, n int) error {
	switch {
	case k.drop:
		return tarstream.Skip(src, n)
	case k.rename:
		return tarstream.WriteFrom(k.next, &k.renamed, src, n)
	}
	return tarstream.WriteFrom(k.next, m, src, n)
}

// Close implements tarstream.Stage.
func (k *Keep) Close() error { return k.next.Close() }

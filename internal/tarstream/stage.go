package tarstream

import (
	"io/fs"
)

// Part labels what a Stage.Write call carries.
type Part uint8

const (
	// Header starts a member; m is set, p is nil.
	Header Part = iota
	// Contents is a chunk of the member's data, in order.
	Contents
	// Trailer ends the member after exactly m.Size content bytes.
	Trailer
	// ArchiveEnd follows the last member, after the two zero blocks; m is nil.
	ArchiveEnd
)

func (p Part) String() string {
	return [...]string{"header", "contents", "trailer", "archive end"}[p]
}

// Type is a member's kind; PostgreSQL's archives hold only these three.
type Type uint8

const (
	File Type = iota
	Dir
	Symlink
)

// Member describes one archive entry. Name is a clean relative path without
// a trailing slash.
type Member struct {
	Name     string
	Type     Type
	Mode     fs.FileMode
	Size     int64
	Linkname string
}

// Stage is one link of the archive chain, built back to front: each stage
// holds the next. Write receives, per member, one Header, any number of
// Contents and one Trailer, and after the last member one ArchiveEnd.
//
// Both arguments are borrowed for the call only: p aliases the caller's
// chunk, and *m is a Member the parser reuses for the next member. A stage
// that needs either later copies it; a stage may pass a copy of its own on
// (a renamed member, say), the same one for a member's every part.
//
// Close is called once, after ArchiveEnd or when the archive stopped early:
// the stage flushes or releases what it holds, then closes the next stage,
// and returns the first error.
type Stage interface {
	Write(part Part, m *Member, p []byte) error
	Close() error
}

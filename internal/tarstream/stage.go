package tarstream

import (
	"io/fs"
)

// Part labels what a Stage.Write call carries.
type Part uint8

const (
	// Header starts a member; m is set, p is nil.
	Header Part = iota
	// Contents is a chunk of the member's data; p is borrowed for the call.
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

// Stage is one link of the archive chain. Write receives parts in the order
// the package comment states; Close finalizes the stage, then closes the next.
type Stage interface {
	Write(part Part, m *Member, p []byte) error
	Close() error
}

package extract

import (
	"hash"
	"sync/atomic"

	"github.com/pg-standby/pg-standby/internal/manifest"
	"github.com/pg-standby/pg-standby/internal/tarstream"
)

// Checksum records every file member as the primary sent it (size, and the
// manifest's checksum when newHash is set) under its manifest path, for the
// manifest check: the stage of astreamer_verify.c, in front of any stage that
// edits what is written. It counts the bytes into streamed.
type Checksum struct {
	next     tarstream.Stage
	files    map[string]manifest.Observed
	prefix   string // manifest path of the archive's root: "" or "pg_tblspc/<oid>/"
	h        hash.Hash
	streamed *atomic.Int64
}

// NewChecksum returns a Checksum stage in front of next; newHash nil records sizes only.
func NewChecksum(next tarstream.Stage, res *Result, prefix string, newHash func() hash.Hash, streamed *atomic.Int64) *Checksum {
	c := &Checksum{next: next, files: res.Files, prefix: prefix, streamed: streamed}
	if newHash != nil {
		c.h = newHash()
	}
	return c
}

// Write implements tarstream.Stage.
func (c *Checksum) Write(part tarstream.Part, m *tarstream.Member, p []byte) error {
	switch part {
	case tarstream.Header:
		if c.h != nil {
			c.h.Reset()
		}
	case tarstream.Contents:
		if c.h != nil {
			c.h.Write(p)
		}
		c.streamed.Add(int64(len(p)))
	case tarstream.Trailer:
		if m.Type == tarstream.File {
			obs := manifest.Observed{Size: m.Size}
			if c.h != nil {
				obs.Checksum = c.h.Sum(nil)
			}
			c.files[c.prefix+m.Name] = obs
		}
	}
	return c.next.Write(part, m, p)
}

// Close implements tarstream.Stage.
func (c *Checksum) Close() error { return c.next.Close() }

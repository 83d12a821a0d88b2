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
	src      hashed // WriteFrom's source, reused
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

// WriteFrom implements tarstream.SourceStage: the bytes are hashed as they
// arrive, where the next stage reads them to.
func (c *Checksum) WriteFrom(m *tarstream.Member, src tarstream.Source, n int) error {
	var err error
	if c.h == nil {
		err = tarstream.WriteFrom(c.next, m, src, n)
	} else {
		c.src = hashed{Source: src, h: c.h}
		err = tarstream.WriteFrom(c.next, m, &c.src, n)
		c.src = hashed{}
	}
	if err == nil {
		c.streamed.Add(int64(n))
	}
	return err
}

// hashed is a Source that hashes what is read from it.
type hashed struct {
	tarstream.Source
	h hash.Hash
}

func (s *hashed) ReadFull(dst []byte) error {
	if err := s.Source.ReadFull(dst); err != nil {
		return err
	}
	s.h.Write(dst)
	return nil
}

func (s *hashed) Next(n int) ([]byte, error) {
	p, err := s.Source.Next(n)
	s.h.Write(p)
	return p, err
}

// Close implements tarstream.Stage.
func (c *Checksum) Close() error { return c.next.Close() }

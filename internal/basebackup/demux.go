package basebackup

import (
	"fmt"
	"io"
	"strconv"

	"github.com/pg-standby/pg-standby/internal/manifest"
	"github.com/pg-standby/pg-standby/internal/tarstream"
)

// Archive is an announced archive whose name the server's tablespace list
// accounts for: the base directory (Tablespace.OID 0) or one tablespace.
type Archive struct {
	Name       string
	Tablespace Tablespace
}

// Sent is what the archives held when the manifest starts: their files and
// the sum of the files' path lengths, which bound the manifest's size.
type Sent struct {
	Files     int
	PathBytes int64
}

// Receiver takes what Stream demultiplexes, in stream order.
type Receiver interface {
	// Archive returns the chain for an announced archive. Stream writes the
	// archive's bytes to it (borrowed for the call), or lets it read them
	// when it is a SourceWriter, and closes it before the next archive, the
	// manifest, or its own return.
	Archive(Archive) (io.WriteCloser, error)
	// Manifest returns where the manifest goes, after the last archive's
	// chain closed, with what the archives sent.
	Manifest() (io.Writer, Sent, error)
}

// SourceWriter is a chain that reads an archive's bytes itself, into its
// own buffers (tarstream.Parser): a message's bytes are copied once, from
// the socket to where they are written. WriteFrom reads src whole.
type SourceWriter interface {
	WriteFrom(src tarstream.Source) error
}

// suffixes are the archive name suffixes the server gives each
// compression method (src/backend/backup/basebackup_{gzip,lz4,zstd}.c).
var suffixes = map[string]string{"gzip": ".gz", "lz4": ".lz4", "zstd": ".zst"}

// demux routes the CopyData messages of one stream, as pg_basebackup's
// ReceiveArchiveStreamChunk: 'n' closes the archive's chain and opens the
// next one, 'd' feeds it or the manifest, 'm' starts the manifest.
type demux struct {
	to          Receiver
	tablespaces []Tablespace
	suffix      string          // of every archive name, for the compression
	archives    map[string]bool // names seen
	chain       io.WriteCloser

	inManifest bool
	man        io.Writer
	manLen     int64
	manBound   int64 // set at the manifest's start, when every file has been sent
	manFiles   int
}

func (d *demux) message(m Message) error {
	switch m := m.(type) {
	case Data:
		if d.inManifest {
			return d.manifestData(m.Bytes)
		}
		if d.chain == nil {
			return Violation("archive data before any archive started")
		}
		_, err := d.chain.Write(m.Bytes)
		return err
	case NewArchive:
		if d.inManifest {
			return Violation("an archive after the manifest")
		}
		if err := d.closeChain(); err != nil {
			return err
		}
		return d.openChain(m)
	case ManifestStart:
		if d.inManifest {
			return Violation("a second manifest")
		}
		d.inManifest = true
		if err := d.closeChain(); err != nil {
			return err
		}
		return d.startManifest()
	}
	return nil // Progress: the chain counts what arrives
}

// data routes one archive data message whose bytes are still to be read.
func (d *demux) data(src tarstream.Source) error {
	sw, direct := d.chain.(SourceWriter)
	switch {
	case d.inManifest:
	case d.chain == nil:
		return Violation("archive data before any archive started")
	case direct:
		if err := sw.WriteFrom(src); err != nil {
			return err
		}
		if src.Len() != 0 { // the next message's header would be read from inside this one
			return fmt.Errorf("archive chain left %d bytes of a message unread", src.Len())
		}
		return nil
	}
	for src.Len() > 0 {
		p, err := src.Next(src.Len())
		if err != nil {
			return err
		}
		if err := d.message(Data{Bytes: p}); err != nil {
			return err
		}
	}
	return nil
}

func (d *demux) closeChain() error {
	if d.chain == nil {
		return nil
	}
	c := d.chain
	d.chain = nil
	return c.Close()
}

// openChain checks an archive's name against the tablespace list, then asks
// the receiver for its chain.
func (d *demux) openChain(m NewArchive) error {
	if d.archives[m.Name] {
		return Violation("archive %q sent twice", m.Name)
	}
	d.archives[m.Name] = true
	a := Archive{Name: m.Name}
	if m.TablespacePath == "" {
		if m.Name != "base.tar"+d.suffix {
			return Violation("unexpected archive %q for the data directory (want base.tar%s)", m.Name, d.suffix)
		}
	} else {
		for _, ts := range d.tablespaces {
			if ts.OID != 0 && ts.Location == m.TablespacePath {
				a.Tablespace = ts
			}
		}
		if a.Tablespace.OID == 0 || m.Name != strconv.FormatUint(uint64(a.Tablespace.OID), 10)+".tar"+d.suffix {
			return Violation("archive %q for %q matches no tablespace the server listed", m.Name, m.TablespacePath)
		}
	}
	c, err := d.to.Archive(a)
	if err != nil {
		return err
	}
	d.chain = c
	return nil
}

// startManifest bounds the manifest by what the archives sent: it comes
// after the last one.
func (d *demux) startManifest() error {
	w, sent, err := d.to.Manifest()
	if err != nil {
		return err
	}
	d.man, d.manFiles = w, sent.Files
	d.manBound = manifest.SizeBound(sent.Files, sent.PathBytes)
	return nil
}

func (d *demux) manifestData(p []byte) error {
	if d.manLen+int64(len(p)) > d.manBound {
		return &manifest.FormatError{Err: fmt.Errorf("backup manifest from the primary: more than %d bytes, "+
			"more than any PostgreSQL server writes for the %d files it sent: a broken or hostile server", d.manBound, d.manFiles)}
	}
	if _, err := d.man.Write(p); err != nil {
		return err
	}
	d.manLen += int64(len(p))
	return nil
}

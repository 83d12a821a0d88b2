package decompress

import (
	"compress/gzip"
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/zstd"
)

// bufSize is the output buffer handed to the next stage, as astreamer's
// decompressors size theirs.
const bufSize = 256 << 10

// Methods are the server-side compression methods, with the archive name
// suffix PostgreSQL gives each.
var Methods = map[string]string{"gzip": ".gz", "lz4": ".lz4", "zstd": ".zst"}

// Stage decompresses what is written to it into next. The decoders read, so
// they run in one goroutine behind a pipe; Close waits for it.
type Stage struct {
	pw   *io.PipeWriter
	done chan error
	next io.WriteCloser
}

// New starts a decompressing stage for method in front of next.
func New(method string, next io.WriteCloser) (*Stage, error) {
	if _, ok := Methods[method]; !ok {
		return nil, fmt.Errorf("unknown compression method %q: want gzip, lz4 or zstd", method)
	}
	pr, pw := io.Pipe()
	s := &Stage{pw: pw, done: make(chan error, 1), next: next}
	go func() {
		err := run(method, pr, next)
		pr.CloseWithError(err) // a writer blocked in Write sees the failure
		s.done <- err
	}()
	return s, nil
}

func run(method string, r io.Reader, next io.Writer) error {
	var dec io.Reader
	switch method {
	case "gzip":
		z, err := gzip.NewReader(r)
		if err != nil {
			return fmt.Errorf("gzip archive: %w", err)
		}
		defer z.Close()
		dec = z
	case "lz4":
		// Ours, not pierrec's lz4.Reader: that one reallocates its
		// dictionary for every linked block, which is how the server
		// writes them, and the garbage made RSS jump.
		dec = newLZ4Reader(r)
	case "zstd":
		// One goroutine and a bounded window: memory stays flat.
		z, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true), zstd.WithDecoderMaxWindow(64<<20))
		if err != nil {
			return fmt.Errorf("zstd archive: %w", err)
		}
		defer z.Close()
		dec = z
	}
	buf := make([]byte, bufSize)
	for {
		n, err := io.ReadFull(dec, buf)
		if n > 0 {
			if _, werr := next.Write(buf[:n]); werr != nil {
				return werr
			}
		}
		switch {
		case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
			return trailing(method, dec)
		case err != nil:
			return fmt.Errorf("%s archive: %w", method, err)
		}
	}
}

// trailing makes sure the compressed stream really ended (ReadFull's short
// read is also how a truncated stream looks to some decoders).
func trailing(method string, dec io.Reader) error {
	var one [1]byte
	if n, err := dec.Read(one[:]); n > 0 || (err != nil && !errors.Is(err, io.EOF)) {
		if err == nil {
			err = errors.New("data after the end")
		}
		return fmt.Errorf("%s archive: %w", method, err)
	}
	return nil
}

// Write passes compressed bytes to the decoder.
func (s *Stage) Write(p []byte) (int, error) { return s.pw.Write(p) }

// Close ends the compressed stream, waits for the decoder, then closes next.
func (s *Stage) Close() error {
	s.pw.Close()
	err := <-s.done
	if cerr := s.next.Close(); err == nil {
		err = cerr
	}
	return err
}

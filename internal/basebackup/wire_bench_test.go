package basebackup

import (
	"context"
	"io"
	"net"
	"testing"

	"github.com/pg-standby/pg-standby/internal/tarstream"
)

// sinkStage reads every member's contents into one reused buffer: the cost
// of framing and reading, without a disk.
type sinkStage struct{ buf []byte }

func (s *sinkStage) Write(tarstream.Part, *tarstream.Member, []byte) error { return nil }
func (s *sinkStage) Close() error                                          { return nil }
func (s *sinkStage) WriteFrom(_ *tarstream.Member, src tarstream.Source, n int) error {
	for n > 0 {
		c := min(n, len(s.buf))
		if err := src.ReadFull(s.buf[:c]); err != nil {
			return err
		}
		n -= c
	}
	return nil
}

type sinkReceiver struct{ st sinkStage }

func (r *sinkReceiver) Archive(Archive) (io.WriteCloser, error) {
	return tarstream.NewParser(&r.st), nil
}
func (r *sinkReceiver) Manifest() (io.Writer, Sent, error) {
	return io.Discard, Sent{Files: 64, PathBytes: 1 << 12}, nil
}

// BenchmarkWire receives a 64 MiB archive of 1 MiB files, in the server's
// 32 kB CopyData messages, over a loopback socket (the readv path).
func BenchmarkWire(b *testing.B) {
	sizes := make([]int, 64)
	for i := range sizes {
		sizes[i] = 1 << 20
	}
	benchWire(b, sizes)
}

// BenchmarkWireSmallMembers receives 8,192 members of 100 bytes (an
// increment without blocks is smaller): a header's read each.
func BenchmarkWireSmallMembers(b *testing.B) {
	sizes := make([]int, 8192)
	for i := range sizes {
		sizes[i] = 100
	}
	benchWire(b, sizes)
}

// BenchmarkWireTrickle is BenchmarkWire from a sender that writes 8 kB at
// a time, so that reads come back short, as from a primary slower than
// this side; copied/B is the share of the archive taken from the read-ahead.
func BenchmarkWireTrickle(b *testing.B) {
	sizes := make([]int, 64)
	for i := range sizes {
		sizes[i] = 1 << 20
	}
	ln, archive := serveArchive(b, sizes, 8<<10)
	b.SetBytes(int64(len(archive)))
	b.ReportAllocs()
	var copied int64
	for b.Loop() {
		copied += receiveArchive(b, ln)
	}
	b.ReportMetric(float64(copied)/float64(int64(b.N)*int64(len(archive))), "copied/B")
}

func benchWire(b *testing.B, sizes []int) {
	ln, archive := serveArchive(b, sizes, 0)
	b.SetBytes(int64(len(archive)))
	b.ReportAllocs()
	for b.Loop() {
		receiveArchive(b, ln)
	}
}

// serveArchive serves a backup of files of sizes, in the server's 32 kB
// CopyData messages, to every connection; piece > 0 writes it that many
// bytes at a time.
func serveArchive(t testing.TB, sizes []int, piece int) (net.Listener, []byte) {
	archive, _ := testArchive(t, sizes...)
	stream := backendStream(t, archive, []byte("{}"), func(int) int { return 32 << 10 })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				if _, err := c.Read(make([]byte, 4096)); err != nil {
					return
				}
				for rest := stream; len(rest) > 0; {
					n := len(rest)
					if piece > 0 {
						n = min(n, piece)
					}
					if _, err := c.Write(rest[:n]); err != nil {
						return
					}
					rest = rest[n:]
				}
			}()
		}
	}()
	return ln, archive
}

// receiveArchive takes one backup from ln into a sink and returns the bytes
// the wire copied out of its read-ahead.
func receiveArchive(t testing.TB, ln net.Listener) int64 {
	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	conn := &Conn{nc: nc, w: newWire(nc)}
	bk, err := Start(context.Background(), conn, Options{Label: "b"})
	if err != nil {
		t.Fatal(err)
	}
	recv := &sinkReceiver{st: sinkStage{buf: make([]byte, 1<<20)}}
	if _, err := bk.Stream(context.Background(), recv); err != nil {
		t.Fatal(err)
	}
	return conn.w.copied
}

// TestWireBigReadsNotCopied: reads of a big file from a sender slower than
// the reader come back short; what is left of such a read must still go
// straight to the caller's buffer, not through the read-ahead (before, most
// of a 2 GB backup was copied a second time that way).
func TestWireBigReadsNotCopied(t *testing.T) {
	sizes := make([]int, 16)
	for i := range sizes {
		sizes[i] = 1 << 20
	}
	ln, archive := serveArchive(t, sizes, 8<<10)
	copied := receiveArchive(t, ln)
	if share := float64(copied) / float64(len(archive)); share > 0.10 {
		t.Errorf("%d of the archive's %d bytes (%.0f %%) were copied from the read-ahead; want at most 10 %%", copied, len(archive), 100*share)
	}
}

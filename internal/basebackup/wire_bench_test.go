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

func benchWire(b *testing.B, sizes []int) {
	archive, _ := testArchive(b, sizes...)
	stream := backendStream(b, archive, []byte("{}"), func(int) int { return 32 << 10 })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				if _, err := c.Read(make([]byte, 4096)); err == nil {
					c.Write(stream)
				}
			}()
		}
	}()
	recv := &sinkReceiver{st: sinkStage{buf: make([]byte, 1<<20)}}
	b.SetBytes(int64(len(archive)))
	b.ReportAllocs()
	for b.Loop() {
		nc, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		conn := &Conn{nc: nc, w: newWire(nc)}
		bk, err := Start(context.Background(), conn, Options{Label: "b"})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := bk.Stream(context.Background(), recv); err != nil {
			b.Fatal(err)
		}
		nc.Close()
	}
}

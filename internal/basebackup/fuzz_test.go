package basebackup

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"net"
	"strings"
	"testing"
)

// FuzzDecode feeds arbitrary CopyData payloads to Decode: it must never
// panic, a decoded message must be exactly what the payload encodes (so
// nothing is silently dropped or invented), and every error must be a
// ProtocolError that names the tag and length.
func FuzzDecode(f *testing.F) {
	for _, s := range [][]byte{
		[]byte("nbase.tar\x00\x00"),
		[]byte("n16385.tar\x00/srv/ts1\x00"),
		[]byte("n../base.tar\x00\x00"),
		[]byte("nbase.tar\x00"),
		[]byte("dsome archive bytes"),
		{'d'},
		{'p', 0, 0, 0, 0, 0, 1, 0, 0},
		{'p', 0xff, 0, 0, 0, 0, 0, 0, 0},
		{'p', 0, 0},
		{'m'},
		[]byte("mx"),
		{},
		[]byte("x"),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		msg, err := Decode(p)
		if err != nil {
			pe, ok := err.(*ProtocolError)
			if !ok {
				t.Fatalf("Decode(%q): error %T %v, want a *ProtocolError", p, err, err)
			}
			if len(p) > 0 && (pe.Tag != p[0] || pe.Length != len(p) || pe.Reason == "") {
				t.Fatalf("Decode(%q): error %+v does not name tag and length", p, pe)
			}
			if msg != nil {
				t.Fatalf("Decode(%q): message %#v returned with error %v", p, msg, err)
			}
			return
		}
		var again []byte
		switch m := msg.(type) {
		case Data:
			again = append([]byte{'d'}, m.Bytes...)
			if len(m.Bytes) > 0 && &m.Bytes[0] != &p[1] {
				t.Fatalf("Decode(%q): Data does not alias the payload", p)
			}
		case NewArchive:
			if strings.ContainsRune(m.Name, 0) || strings.ContainsRune(m.TablespacePath, 0) {
				t.Fatalf("Decode(%q): NUL inside %+v", p, m)
			}
			again = append(append(append([]byte{'n'}, m.Name...), 0), append([]byte(m.TablespacePath), 0)...)
		case Progress:
			if m.BytesDone < 0 {
				t.Fatalf("Decode(%q): negative progress %d", p, m.BytesDone)
			}
			again = binary.BigEndian.AppendUint64([]byte{'p'}, uint64(m.BytesDone))
		case ManifestStart:
			again = []byte{'m'}
		default:
			t.Fatalf("Decode(%q): unknown message %T", p, msg)
		}
		if !bytes.Equal(again, p) {
			t.Fatalf("Decode(%q) = %#v, which encodes as %q", p, msg, again)
		}
	})
}

// memConn is a connection over bytes in memory: the wire's plain-read path.
type memConn struct {
	net.Conn
	r io.Reader
}

func (c *memConn) Read(b []byte) (int, error)  { return c.r.Read(b) }
func (c *memConn) Write(b []byte) (int, error) { return len(b), nil }
func (c *memConn) Close() error                { return nil }

// FuzzWire feeds arbitrary backend bytes after a valid start of the COPY
// stream (or in place of it) to Start and Stream: framing, the pgproto3
// decoding, the demultiplexer and the tar parser must end with an answer,
// never panic, and never take more memory than a message may announce.
func FuzzWire(f *testing.F) {
	archive, _ := testArchive(f, 0, 700, 9000)
	whole := backendStream(f, archive, []byte("{}"), func(i int) int { return []int{300, 5000}[i%2] })
	start := bytes.Index(whole, []byte("nbase.tar\x00\x00")) + 11
	f.Add(whole, false)
	f.Add(whole[start:], true)
	f.Add(whole[start:start+600], true)
	f.Add([]byte{'d', 0, 0, 0, 5, 'd'}, true)
	f.Add([]byte{'d', 0x7f, 0xff, 0xff, 0xff, 'd'}, true)
	f.Add([]byte{'Z', 0, 0, 0, 5, 'I'}, false)
	f.Fuzz(func(t *testing.T, b []byte, afterStart bool) {
		if afterStart {
			b = append(append([]byte{}, whole[:start]...), b...)
		}
		conn := &Conn{nc: &memConn{r: bytes.NewReader(b)}}
		conn.w = newWire(conn.nc)
		ctx := context.Background()
		bk, err := Start(ctx, conn, Options{Label: "f"})
		if err != nil {
			return
		}
		bk.Stream(ctx, &collect{direct: len(b)%2 == 0, files: map[string][]byte{}})
	})
}

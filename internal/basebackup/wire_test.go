package basebackup

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pg-standby/pg-standby/internal/tarstream"
)

// backendStream encodes what a PostgreSQL 15+ server answers to BASE_BACKUP
// for one base archive: start row, tablespace list, the COPY stream with the
// archive in messages of the sizes chunk gives, a manifest, the end row.
func backendStream(t testing.TB, archive, manifest []byte, chunk func(i int) int) []byte {
	var out []byte
	add := func(m pgproto3.BackendMessage) {
		var err error
		if out, err = m.Encode(out); err != nil {
			t.Fatal(err)
		}
	}
	rows := func(cols []string, rows ...[][]byte) {
		rd := &pgproto3.RowDescription{}
		for _, c := range cols {
			rd.Fields = append(rd.Fields, pgproto3.FieldDescription{Name: []byte(c), DataTypeOID: 25, DataTypeSize: -1, TypeModifier: -1})
		}
		add(rd)
		for _, r := range rows {
			add(&pgproto3.DataRow{Values: r})
		}
		add(&pgproto3.CommandComplete{CommandTag: []byte("SELECT")})
	}
	rows([]string{"recptr", "tli"}, [][]byte{[]byte("0/2000028"), []byte("1")})
	rows([]string{"spcoid", "spclocation", "size"}, [][]byte{nil, nil, []byte("1")})
	add(&pgproto3.CopyOutResponse{})
	add(&pgproto3.NoticeResponse{Severity: "WARNING", Code: "01000", Message: "a notice inside the stream"})
	add(&pgproto3.CopyData{Data: []byte("nbase.tar\x00\x00")})
	for i, rest := 0, archive; len(rest) > 0; i++ {
		c := min(chunk(i), len(rest))
		add(&pgproto3.CopyData{Data: append([]byte{'d'}, rest[:c]...)})
		rest = rest[c:]
		if i%7 == 3 {
			add(&pgproto3.CopyData{Data: []byte{'p', 0, 0, 0, 0, 0, 0, 0, byte(i)}})
		}
	}
	add(&pgproto3.CopyData{Data: []byte{'m'}})
	add(&pgproto3.CopyData{Data: append([]byte{'d'}, manifest...)})
	add(&pgproto3.CopyDone{})
	rows([]string{"recptr", "tli"}, [][]byte{[]byte("0/2000138"), []byte("1")})
	add(&pgproto3.CommandComplete{CommandTag: []byte("BASE_BACKUP")})
	add(&pgproto3.ReadyForQuery{TxStatus: 'I'})
	return out
}

// testArchive is a tar of files whose sizes cross every message boundary.
func testArchive(t testing.TB, sizes ...int) ([]byte, map[string][]byte) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	files := map[string][]byte{}
	for i, size := range sizes {
		name := "base/1/" + strconv.Itoa(16384+i)
		data := make([]byte, size)
		for j := range data {
			data[j] = byte(j*7 + i)
		}
		files[name] = data
		tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o600, Size: int64(size), Format: tar.FormatUSTAR})
		tw.Write(data)
	}
	tw.Close()
	return buf.Bytes(), files
}

// collect is a Receiver whose chain keeps every file's bytes; direct picks a
// last stage that reads from the Source or one that takes borrowed chunks.
type collect struct {
	direct   bool
	files    map[string][]byte
	manifest bytes.Buffer
}

func (c *collect) Archive(Archive) (io.WriteCloser, error) {
	var s tarstream.Stage = &keepStage{files: c.files}
	if c.direct {
		s = &keepSourceStage{keepStage{files: c.files}}
	}
	return tarstream.NewParser(s), nil
}

func (c *collect) Manifest() (io.Writer, Sent, error) {
	return &c.manifest, Sent{Files: len(c.files), PathBytes: 1 << 10}, nil
}

type keepStage struct{ files map[string][]byte }

func (k *keepStage) Write(part tarstream.Part, m *tarstream.Member, p []byte) error {
	switch part {
	case tarstream.Header:
		k.files[m.Name] = []byte{}
	case tarstream.Contents:
		k.files[m.Name] = append(k.files[m.Name], p...)
	}
	return nil
}
func (k *keepStage) Close() error { return nil }

type keepSourceStage struct{ keepStage }

func (k *keepSourceStage) WriteFrom(m *tarstream.Member, src tarstream.Source, n int) error {
	b := make([]byte, n)
	if err := src.ReadFull(b); err != nil {
		return err
	}
	k.files[m.Name] = append(k.files[m.Name], b...)
	return nil
}

// pieces is a connection without SyscallConn (as under TLS) whose reads
// return at most max bytes.
type pieces struct {
	net.Conn
	max int
}

func (p pieces) Read(b []byte) (int, error) { return p.Conn.Read(b[:min(len(b), p.max)]) }

// serve answers the client's first message on one end of a socket pair with
// stream, then closes.
func serve(t *testing.T, stream []byte) net.Conn {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		if _, err := c.Read(make([]byte, 4096)); err != nil {
			return
		}
		c.Write(stream)
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestWireFraming receives one backup through every way the wire reads: one
// readv per message on a socket, and plain reads cut to a few bytes (as
// under TLS), into stages that read from the Source and stages that take
// borrowed chunks; every file must arrive as sent.
func TestWireFraming(t *testing.T) {
	big, bigWant := testArchive(t, 0, 1, 511, 512, 513, 8192, 32<<10, 100_001, 1<<20)
	small, smallWant := testArchive(t, 0, 1, 511, 513, 3000)
	manifest := []byte(`{"PostgreSQL-Backup-Manifest-Version": 1}`)
	chunks := map[string]func(int) int{
		"32 kB messages":  func(int) int { return 32 << 10 },
		"odd messages":    func(i int) int { return []int{1, 700, 511, 4096, 33_000, 3}[i%6] },
		"1 byte messages": func(int) int { return 1 },
	}
	for cname, chunk := range chunks {
		archive, want, reads := big, bigWant, []int{0, 7, 4099}
		if cname == "1 byte messages" {
			archive, want, reads = small, smallWant, []int{0, 1, 7}
		}
		stream := backendStream(t, archive, manifest, chunk)
		for _, readMax := range reads {
			for _, direct := range []bool{true, false} {
				name := fmt.Sprintf("%s/reads %d/direct %v", cname, readMax, direct)
				t.Run(name, func(t *testing.T) {
					nc := serve(t, stream)
					if readMax > 0 {
						nc = pieces{nc, readMax}
					}
					var notices []string
					conn := &Conn{nc: nc, w: newWire(nc), notice: func(_ *pgconn.PgConn, n *pgconn.Notice) { notices = append(notices, n.Code+" "+n.Message) }}
					if (conn.w.raw != nil) != (readMax == 0) {
						t.Fatalf("readv used: %v, want %v", conn.w.raw != nil, readMax == 0)
					}
					ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
					defer cancel()
					bk, err := Start(ctx, conn, Options{Label: "t"})
					if err != nil {
						t.Fatal(err)
					}
					c := &collect{direct: direct, files: map[string][]byte{}}
					end, err := bk.Stream(ctx, c)
					if err != nil {
						t.Fatal(err)
					}
					if len(notices) != 1 || notices[0] != "01000 a notice inside the stream" {
						t.Errorf("notices %q, want the one sent", notices)
					}
					if end.LSN.String() != "0/2000138" || end.Timeline != 1 {
						t.Errorf("end %v/%d", end.LSN, end.Timeline)
					}
					for n, data := range want {
						if !bytes.Equal(c.files[n], data) {
							t.Errorf("%s: got %d bytes, want %d as sent", n, len(c.files[n]), len(data))
						}
					}
					if len(c.files) != len(want) {
						t.Errorf("%d files, want %d", len(c.files), len(want))
					}
					if !bytes.Equal(c.manifest.Bytes(), manifest) {
						t.Errorf("manifest %q", c.manifest.Bytes())
					}
				})
			}
		}
	}
}

// TestWireCut: a stream cut at any byte fails with a wrapped
// io.ErrUnexpectedEOF (a lost connection), never a panic or a hang.
func TestWireCut(t *testing.T) {
	archive, _ := testArchive(t, 100, 20_000, 9000)
	stream := backendStream(t, archive, []byte("{}"), func(i int) int { return []int{1000, 9000}[i%2] })
	for _, cut := range []int{1, 5, 200, 300, 1200, 1205, 5000, 30_000, len(stream) - 1} {
		t.Run(strconv.Itoa(cut), func(t *testing.T) {
			nc := serve(t, stream[:cut])
			conn := &Conn{nc: nc, w: newWire(nc)}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			bk, err := Start(ctx, conn, Options{Label: "t"})
			if err == nil {
				_, err = bk.Stream(ctx, &collect{direct: true, files: map[string][]byte{}})
			}
			if !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("error %v, want a lost connection (unexpected EOF)", err)
			}
		})
	}
}

// TestWireBadLength: a length below its own four bytes breaks the protocol;
// one above replconn.MaxMessageBody fails before anything is allocated.
func TestWireBadLength(t *testing.T) {
	for _, c := range []struct {
		header []byte
		check  func(error) bool
	}{
		{[]byte{'d', 0, 0, 0, 2}, func(err error) bool { var se *StreamError; return errors.As(err, &se) }},
		{[]byte{'d', 0xff, 0xff, 0xff, 0xff}, func(err error) bool { var se *StreamError; return errors.As(err, &se) }},
		{[]byte{'d', 0x01, 0, 0, 5}, func(err error) bool { var tl *pgproto3.ExceededMaxBodyLenErr; return errors.As(err, &tl) }},
	} {
		nc := &memConn{r: bytes.NewReader(c.header)}
		conn := &Conn{nc: nc, w: newWire(nc)}
		_, err := Start(context.Background(), conn, Options{Label: "t"})
		if !c.check(err) {
			t.Errorf("header % x: error %T %v", c.header, err, err)
		}
	}
}

// TestWireBadMessage: a message type BASE_BACKUP's answer never holds, and
// a body its type cannot decode, break the protocol: a *StreamError naming
// them.
func TestWireBadMessage(t *testing.T) {
	for _, c := range []struct {
		stream []byte
		want   string
	}{
		// BackendKeyData, which only comes at startup.
		{[]byte{'K', 0, 0, 0, 12, 0, 0, 0, 1, 0, 0, 0, 2}, `unexpected message type 'K'`},
		// A CopyOutResponse without its column count.
		{[]byte{'H', 0, 0, 0, 5, 0}, `malformed *pgproto3.CopyOutResponse message`},
	} {
		nc := &memConn{r: bytes.NewReader(c.stream)}
		conn := &Conn{nc: nc, w: newWire(nc)}
		_, err := Start(context.Background(), conn, Options{Label: "t"})
		var se *StreamError
		if !errors.As(err, &se) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("% x: error %T %v, want a *StreamError saying %s", c.stream, err, err, c.want)
		}
	}
}

// shortReader is a chain that reads from the Source but stops short of a
// message's end: a bug of ours, which demux refuses to read past.
type shortReader struct{}

func (shortReader) Write(p []byte) (int, error) { return len(p), nil }
func (shortReader) Close() error                { return nil }
func (shortReader) WriteFrom(src tarstream.Source) error {
	return src.ReadFull(make([]byte, src.Len()/2))
}

type shortReceiver struct{ collect }

func (shortReceiver) Archive(Archive) (io.WriteCloser, error) { return shortReader{}, nil }

// TestWireChainLeftBytes: a SourceWriter chain that leaves part of a message
// unread stops the stream with an error, before the next header would be
// read from inside that message.
func TestWireChainLeftBytes(t *testing.T) {
	archive, _ := testArchive(t, 3000)
	nc := serve(t, backendStream(t, archive, []byte("{}"), func(int) int { return 1000 }))
	conn := &Conn{nc: nc, w: newWire(nc)}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	bk, err := Start(ctx, conn, Options{Label: "t"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = bk.Stream(ctx, &shortReceiver{})
	if err == nil || !strings.Contains(err.Error(), "archive chain left 500 bytes of a message unread") {
		t.Fatalf("error %v, want the chain's unread bytes named", err)
	}
}

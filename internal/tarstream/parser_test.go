package tarstream

import (
	"archive/tar"
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// recorder is a Stage that renders what it is given, checking the part order.
type recorder struct {
	out    strings.Builder
	inFile bool
	closed bool
}

func (r *recorder) Write(part Part, m *Member, p []byte) error {
	switch part {
	case Header:
		if r.inFile {
			return fmt.Errorf("header inside member")
		}
		r.inFile = true
		fmt.Fprintf(&r.out, "[%s %d %o %d %s]", m.Name, m.Type, m.Mode, m.Size, m.Linkname)
	case Contents:
		r.out.Write(p)
	case Trailer:
		r.inFile = false
		r.out.WriteString("[end]")
	case ArchiveEnd:
		r.out.WriteString("[archive end]")
	}
	return nil
}

func (r *recorder) Close() error { r.closed = true; return nil }

type entry struct {
	name, link string
	typ        byte
	data       string
}

func archive(t *testing.T, entries []entry, terminate bool) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Linkname: e.link, Mode: 0o600, Size: int64(len(e.data)), Format: tar.FormatUSTAR}
		if e.typ != tar.TypeReg {
			h.Size = 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatalf("write header %q: %v", e.name, err)
		}
		if _, err := tw.Write([]byte(e.data)); err != nil {
			t.Fatal(err)
		}
	}
	if terminate {
		if err := tw.Close(); err != nil {
			t.Fatal(err)
		}
	} else if err := tw.Flush(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func parse(data []byte, chunk int) (string, error) {
	r := &recorder{}
	p := NewParser(r)
	for len(data) > 0 {
		n := min(chunk, len(data))
		if _, err := p.Write(data[:n]); err != nil {
			return r.out.String(), err
		}
		data = data[n:]
	}
	err := p.Close()
	if !r.closed {
		return "", fmt.Errorf("next stage not closed")
	}
	return r.out.String(), err
}

func TestParserChunkings(t *testing.T) {
	big := strings.Repeat("0123456789abcdef", 1000) // 16000 bytes: not a multiple of 512
	data := archive(t, []entry{
		{name: "global/", typ: tar.TypeDir},
		{name: "./pg_wal/archive_status", typ: tar.TypeDir},
		{name: "global/pg_control", typ: tar.TypeReg, data: "control"},
		{name: "base/1/1259", typ: tar.TypeReg, data: big},
		{name: "empty", typ: tar.TypeReg},
		{name: "pg_tblspc/16385", typ: tar.TypeSymlink, link: "/srv/ts1"},
	}, true)
	want := "[global 1 600 0 ][end][pg_wal/archive_status 1 600 0 ][end][global/pg_control 0 600 7 ]control[end][base/1/1259 0 600 16000 ]" + big +
		"[end][empty 0 600 0 ][end][pg_tblspc/16385 2 600 0 /srv/ts1][end][archive end]"
	for _, chunk := range []int{1, 7, 511, 512, 513, 4096, 1 << 20} {
		got, err := parse(data, chunk)
		if err != nil {
			t.Fatalf("chunk %d: %v", chunk, err)
		}
		if got != want {
			t.Errorf("chunk %d:\ngot  %.200s\nwant %.200s", chunk, got, want)
		}
	}
}

func TestParserRefuses(t *testing.T) {
	ok := archive(t, []entry{{name: "a", typ: tar.TypeReg, data: "hello"}}, true)
	cases := []struct {
		name    string
		data    []byte
		wantErr string
	}{
		{"no end marker", archive(t, []entry{{name: "a", typ: tar.TypeReg, data: "x"}}, false), "no end-of-archive marker"},
		{"truncated in member", ok[:512+3], "truncated inside member \"a\""},
		{"dot dot inside", archive(t, []entry{{name: "base/../../etc/passwd", typ: tar.TypeReg, data: "x"}}, true), "leaves the directory"},
		{"only dot", archive(t, []entry{{name: "./", typ: tar.TypeDir}}, true), "empty name"},
		{"dot dot clean", archive(t, []entry{{name: "../x", typ: tar.TypeReg, data: "x"}}, true), "leaves the directory"},
		{"absolute", archive(t, []entry{{name: "/etc/passwd", typ: tar.TypeReg, data: "x"}}, true), "absolute path"},
		{"hard link", archive(t, []entry{{name: "b", typ: tar.TypeLink, link: "a"}}, true), "not a file, directory or symbolic link"},
		{"device", archive(t, []entry{{name: "dev", typ: tar.TypeChar}}, true), "not a file, directory or symbolic link"},
		{"fifo", archive(t, []entry{{name: "fifo", typ: tar.TypeFifo}}, true), "not a file, directory or symbolic link"},
		{"corrupt header", func() []byte { b := bytes.Clone(ok); b[0] ^= 1; return b }(), "checksum mismatch"},
		{"garbage after end", append(bytes.Clone(ok), 'x'), "after the end-of-archive marker"},
		{"lone zero block", append(make([]byte, 512), ok...), "single zero block"},
	}
	for _, c := range cases {
		_, err := parse(c.data, 100)
		if err == nil || !strings.Contains(err.Error(), c.wantErr) {
			t.Errorf("%s: got error %v, want one containing %q", c.name, err, c.wantErr)
		}
	}
}

func TestBase256Size(t *testing.T) {
	var f [12]byte
	f[0] = 0x80
	f[11] = 0x01
	f[10] = 0x02 // 0x0201 = 513
	if n, err := size(f[:]); err != nil || n != 513 {
		t.Errorf("size(base-256 513) = %d, %v", n, err)
	}
	f[0] = 0xff
	if _, err := size(f[:]); err == nil {
		t.Errorf("negative base-256 size accepted")
	}
}

func FuzzParser(f *testing.F) {
	f.Add([]byte{}, 512)
	f.Add(archive(&testing.T{}, []entry{{name: "a/b", typ: tar.TypeReg, data: "hello"}, {name: "d/", typ: tar.TypeDir}}, true), 3)
	f.Fuzz(func(t *testing.T, data []byte, chunk int) {
		if chunk <= 0 || chunk > 1<<16 {
			chunk = 512
		}
		var total int64
		counting := stageFunc(func(part Part, m *Member, p []byte) error {
			if part == Header && (m.Name == "" || strings.HasPrefix(m.Name, "/") || slices.Contains(strings.Split(m.Name, "/"), "..")) {
				t.Fatalf("unsafe name passed on: %q", m.Name)
			}
			total += int64(len(p))
			return nil
		})
		p := NewParser(counting)
		for len(data) > 0 {
			n := min(chunk, len(data))
			if _, err := p.Write(data[:n]); err != nil {
				return
			}
			data = data[n:]
		}
		_ = p.Close()
	})
}

type stageFunc func(part Part, m *Member, p []byte) error

func (f stageFunc) Write(part Part, m *Member, p []byte) error { return f(part, m, p) }
func (f stageFunc) Close() error                               { return nil }

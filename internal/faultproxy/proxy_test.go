package faultproxy

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"
)

// echoServer answers every connection by sending back what it reads.
func echoServer(t *testing.T) string {
	t.Helper()
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
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	return ln.Addr().String()
}

func dial(t *testing.T, p *Proxy) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestProxy(t *testing.T) {
	p, err := Start(echoServer(t))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	msg := bytes.Repeat([]byte("0123456789"), 1000)

	t.Run("forwards", func(t *testing.T) {
		c := dial(t, p)
		c.Write(msg)
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("echo through the proxy: %v", err)
		}
	})
	t.Run("drop", func(t *testing.T) {
		p.Arm(Fault{Conn: 1, Dir: ToClient, After: 3000, Action: Drop})
		// The proxy numbers links as it accepts them: an echo through the
		// first shows it accepted before the second is dialled.
		first := dial(t, p)
		first.Write([]byte("x"))
		if _, err := io.ReadFull(first, make([]byte, 1)); err != nil {
			t.Fatalf("echo through the first link: %v", err)
		}
		second := dial(t, p)
		second.Write(msg)
		second.SetReadDeadline(time.Now().Add(5 * time.Second))
		got, err := io.ReadAll(second)
		if len(got) != 3000 || err != nil {
			t.Fatalf("dropped link delivered %d bytes (%v), want exactly 3000 then EOF", len(got), err)
		}
		if f := p.Fired(); len(f) != 1 || f[0].Action != Drop {
			t.Fatalf("fired %v", f)
		}
	})
	t.Run("stall", func(t *testing.T) {
		p.Arm(Fault{Conn: 0, Dir: ToServer, After: 10, Action: Stall})
		c := dial(t, p)
		c.Write(msg)
		c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		got, err := io.ReadAll(c)
		// The server got 10 bytes and echoed them, but a stalled link
		// forwards nothing in either direction.
		if ne, ok := err.(net.Error); !ok || !ne.Timeout() || len(got) != 0 {
			t.Fatalf("stalled link: read %d bytes, %v; want nothing and a timeout", len(got), err)
		}
	})
	t.Run("pattern", func(t *testing.T) {
		// The pattern arrives split across two reads; the link drops 5
		// bytes after its end.
		p.Arm(Fault{Conn: 0, Dir: ToClient, Pattern: []byte("MARK"), After: 5, Action: Drop})
		c := dial(t, p)
		c.Write([]byte("aaaaMA"))
		got := make([]byte, 6)
		if _, err := io.ReadFull(c, got); err != nil {
			t.Fatalf("echo before the pattern: %v", err)
		}
		c.Write([]byte("RK1234567890"))
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		rest, err := io.ReadAll(c)
		if string(rest) != "RK12345" || err != nil {
			t.Fatalf("after the pattern: %q (%v), want %q then EOF", rest, err, "RK12345")
		}
		if f := p.Fired(); len(f) != 1 || string(f[0].Pattern) != "MARK" {
			t.Fatalf("fired %v", f)
		}
	})
}

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

// TestCountsAndWatch: the proxy counts each link's bytes in both
// directions, and a Watch over all links strikes at exactly its byte.
func TestCountsAndWatch(t *testing.T) {
	p, err := Start(echoServer(t))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	echo := func(c net.Conn, n int) {
		t.Helper()
		c.Write(bytes.Repeat([]byte("x"), n))
		if _, err := io.ReadFull(c, make([]byte, n)); err != nil {
			t.Fatalf("echo of %d bytes: %v", n, err)
		}
	}
	a, b := dial(t, p), dial(t, p)
	echo(a, 1000)
	echo(b, 3000)
	echo(a, 500)
	if got := p.Total(ToClient); got != 4500 {
		t.Fatalf("Total(ToClient) = %d, want 4500", got)
	}
	if got := p.Total(ToServer); got != 4500 {
		t.Fatalf("Total(ToServer) = %d, want 4500", got)
	}
	cs := p.Counts()
	if len(cs) != 2 || cs[0].ToClient+cs[1].ToClient != 4500 || (cs[0].ToClient != 1500 && cs[0].ToClient != 3000) {
		t.Fatalf("Counts = %+v, want links of 1500 and 3000 bytes each way", cs)
	}

	// 2000 more bytes to clients over both links, then every link stalls.
	struck := make(chan int64, 1)
	p.Watch(ToClient, 2000, func() {
		p.CutAll(Stall)
		struck <- p.Total(ToClient)
	})
	echo(a, 1500)
	b.Write(bytes.Repeat([]byte("y"), 4000))
	select {
	case n := <-struck:
		if n != 6500 {
			t.Fatalf("the watch struck at %d bytes to clients, want 6500", n)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the watch did not strike")
	}
	b.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	got, _ := io.ReadAll(b)
	if len(got) != 500 {
		t.Fatalf("the second link delivered %d bytes, want the 500 up to the watch's point", len(got))
	}
	if n := p.Total(ToClient); n != 6500 {
		t.Fatalf("after the stall %d bytes went to clients, want 6500", n)
	}

	// CutAll(Drop) closes the links: the client reads EOF.
	c := dial(t, p)
	echo(c, 10)
	p.CutAll(Drop)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("read after CutAll(Drop): %v, want EOF", err)
	}
}

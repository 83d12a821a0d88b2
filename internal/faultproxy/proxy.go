// Package faultproxy is a TCP proxy for tests that breaks a link on cue. It
// listens on 127.0.0.1, forwards every connection to one target, and can drop
// a connection (close both sides) or stall it (stop forwarding in both
// directions, sockets left open) once a given number of bytes has passed in
// one direction.
//
// Connections are numbered in the order they are accepted, counting from the
// last Arm: a pg-standby attempt opens its data connection first and its WAL
// connection second, so Conn 0 is the archive and Conn 1 the WAL stream.
//
// The proxy also counts the bytes it forwards, per link and in all (Counts,
// Total), and can call a function once a number of bytes has passed in one
// direction over all links together (Watch), for a benchmark that cuts a
// backup at a share of a clean run's bytes on the wire; CutAll drops or
// stalls every open link.
package faultproxy

import (
	"bytes"
	"errors"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
)

// Direction is the way bytes flow through a link.
type Direction int

const (
	// ToServer is client → target (queries, WAL status updates).
	ToServer Direction = iota
	// ToClient is target → client (archives, WAL).
	ToClient
)

func (d Direction) String() string { return [...]string{"to server", "to client"}[d] }

// Action is what a Fault does to its link.
type Action int

const (
	// Drop closes both sides of the link, as a reset connection or a dead
	// middlebox does.
	Drop Action = iota
	// Stall stops forwarding in both directions and keeps both sockets
	// open, as a black-holing network does: only a timeout notices.
	Stall
)

func (a Action) String() string { return [...]string{"drop", "stall"}[a] }

// Fault breaks connection Conn (counted from the Arm call, 0 first) once
// After bytes have been forwarded in Dir. With a Pattern, After counts from
// the end of Pattern's first occurrence in Dir: a point in a stream found by
// what it carries (a tar member's name), not by a guessed offset.
type Fault struct {
	Conn    int
	Dir     Direction
	After   int64
	Action  Action
	Pattern []byte
}

// Proxy forwards connections to a target; see the package comment.
type Proxy struct {
	// Host and Port are where clients connect.
	Host string
	Port int

	target string
	ln     net.Listener
	wg     sync.WaitGroup

	mu       sync.Mutex
	closed   bool
	accepted int // connections accepted in all
	base     int // value of accepted at the last Arm
	faults   []Fault
	fired    []Fault
	links    map[*link]bool
	counts   []*counter // per link, in accept order since Start
	watch    *watch     // nil when none is set
}

// counter is the bytes forwarded on one link, per direction.
type counter [2]atomic.Int64

// Count is the bytes forwarded on one link: Conn is its number in accept
// order since Start (not since Arm).
type Count struct {
	Conn     int
	ToServer int64
	ToClient int64
}

// watch is a Watch call not yet struck: fn runs once sent reaches n.
type watch struct {
	dir  Direction
	n    int64
	sent int64
	fn   func()
	done bool
}

// Start listens on a free port of 127.0.0.1 and forwards to target (host:port).
func Start(target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{Host: "127.0.0.1", Port: ln.Addr().(*net.TCPAddr).Port, target: target, ln: ln, links: map[*link]bool{}}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr is host:port of the proxy.
func (p *Proxy) Addr() string { return net.JoinHostPort(p.Host, strconv.Itoa(p.Port)) }

// Arm replaces the faults; connection numbers count from now.
func (p *Proxy) Arm(faults ...Fault) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.base, p.faults, p.fired = p.accepted, faults, nil
}

// Disarm removes the faults. Links already stalled stay stalled until the
// client closes them or the proxy is closed.
func (p *Proxy) Disarm() { p.Arm() }

// Fired returns the faults that have struck since the last Arm.
func (p *Proxy) Fired() []Fault {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Fault(nil), p.fired...)
}

// Counts returns the bytes forwarded so far on every link accepted since
// Start, in accept order (closed links included).
func (p *Proxy) Counts() []Count {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]Count, len(p.counts))
	for i, c := range p.counts {
		out[i] = Count{Conn: i, ToServer: c[ToServer].Load(), ToClient: c[ToClient].Load()}
	}
	return out
}

// Total is the bytes forwarded in dir over all links since Start.
func (p *Proxy) Total(dir Direction) int64 {
	var n int64
	for _, c := range p.Counts() {
		if dir == ToClient {
			n += c.ToClient
		} else {
			n += c.ToServer
		}
	}
	return n
}

// Watch calls fn once, when n more bytes (counted from this call, over all
// links together) have been forwarded in dir. No link forwards a byte past
// the n-th until fn has returned, so fn can stop the links (CutAll) or the
// client at exactly that point; bytes already read from a socket are held,
// not lost. A later Watch replaces one that has not struck; n <= 0 removes it.
func (p *Proxy) Watch(dir Direction, n int64, fn func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.watch = nil
	if n > 0 && fn != nil {
		p.watch = &watch{dir: dir, n: n, fn: fn}
	}
}

// CutAll applies action (Drop or Stall) to every open link.
func (p *Proxy) CutAll(action Action) {
	p.mu.Lock()
	links := make([]*link, 0, len(p.links))
	for l := range p.links {
		links = append(links, l)
	}
	p.mu.Unlock()
	for _, l := range links {
		l.act(action)
	}
}

// reserve returns how many of want bytes a link may forward in dir now,
// counting them against the watch; fire is the watch's function when these
// bytes reach its point (the caller runs it after writing them).
func (p *Proxy) reserve(dir Direction, want int) (allowed int, fire func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	w := p.watch
	if w == nil || w.done || w.dir != dir {
		return want, nil
	}
	allowed = int(min(int64(want), w.n-w.sent))
	w.sent += int64(allowed)
	if w.sent >= w.n {
		w.done = true
		return allowed, w.fn
	}
	return allowed, nil
}

// Close stops listening and closes every link.
func (p *Proxy) Close() error {
	p.mu.Lock()
	p.closed = true
	links := make([]*link, 0, len(p.links))
	for l := range p.links {
		links = append(links, l)
	}
	p.mu.Unlock()
	err := p.ln.Close()
	for _, l := range links {
		l.close()
	}
	p.wg.Wait()
	return err
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			c.Close()
			return
		}
		n := p.accepted - p.base
		p.accepted++
		cnt := new(counter)
		p.counts = append(p.counts, cnt)
		var faults []Fault
		for _, f := range p.faults {
			if f.Conn == n {
				faults = append(faults, f)
			}
		}
		p.mu.Unlock()
		p.wg.Add(1)
		go p.serve(c, faults, cnt)
	}
}

// link is one proxied connection.
type link struct {
	client, server net.Conn
	once           sync.Once
	done           chan struct{} // closed when the link is closed
	mu             sync.Mutex
	stalled        bool
}

func (l *link) close() {
	l.once.Do(func() {
		close(l.done)
		l.client.Close()
		l.server.Close()
	})
}

func (p *Proxy) serve(client net.Conn, faults []Fault, cnt *counter) {
	defer p.wg.Done()
	server, err := net.Dial("tcp", p.target)
	if err != nil {
		client.Close()
		return
	}
	l := &link{client: client, server: server, done: make(chan struct{})}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		l.close()
		return
	}
	p.links[l] = true
	p.mu.Unlock()
	defer func() {
		l.close()
		p.mu.Lock()
		delete(p.links, l)
		p.mu.Unlock()
	}()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); p.pipe(l, server, client, ToServer, faults, &cnt[ToServer]) }()
	go func() { defer wg.Done(); p.pipe(l, client, server, ToClient, faults, &cnt[ToClient]) }()
	wg.Wait()
}

// pipe copies src to dst until an error, applying the faults of dir. On a
// stalled link it keeps reading and discards what it reads, so that a side
// that gives up and closes still closes the whole link (the primary's
// walsender then ends at once instead of at wal_sender_timeout).
func (p *Proxy) pipe(l *link, dst, src net.Conn, dir Direction, faults []Fault, count *atomic.Int64) {
	var mine []*armed
	for _, f := range faults {
		if f.Dir == dir {
			mine = append(mine, &armed{Fault: f, from: -1})
		}
	}
	buf := make([]byte, 32<<10)
	var sent int64
	for {
		n, err := src.Read(buf)
		data := buf[:n]
		for _, a := range mine {
			a.find(data, sent)
		}
		for len(data) > 0 && !l.isStalled() {
			chunk := data
			var strike *Fault
			for _, a := range mine {
				if a.from < 0 {
					continue
				}
				if left := a.from + a.After - sent; left < int64(len(chunk)) {
					chunk, strike = data[:max(left, 0)], &a.Fault
				}
			}
			var fire func()
			if len(chunk) > 0 {
				var allowed int
				allowed, fire = p.reserve(dir, len(chunk))
				if allowed < len(chunk) {
					chunk, strike = chunk[:allowed], nil // the watch's point comes first
				}
			}
			if strike != nil && strike.Action == Stall {
				// Stalled before the last bytes go: the peer's answer to
				// them must find the link stalled, not race back through.
				p.strike(l, *strike)
			}
			if len(chunk) > 0 {
				// Counted before the write: the peer cannot see (or answer)
				// bytes the count does not hold yet.
				count.Add(int64(len(chunk)))
				if w, werr := dst.Write(chunk); werr != nil {
					count.Add(int64(w - len(chunk)))
					l.close()
					return
				}
				sent += int64(len(chunk))
				data = data[len(chunk):]
			}
			if fire != nil {
				fire()
			}
			if strike != nil {
				if strike.Action != Stall {
					p.strike(l, *strike)
				}
				mine = nil
				if strike.Action == Drop {
					return
				}
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) || l.isStalled() {
				l.close()
				return
			}
			// Half-close: pass the EOF on and let the other direction finish.
			if tc, ok := dst.(*net.TCPConn); ok {
				tc.CloseWrite()
			}
			return
		}
	}
}

// armed is a Fault on one link; from is the stream offset After counts
// from, -1 while its Pattern has not passed.
type armed struct {
	Fault
	from int64
	tail []byte // the last len(Pattern)-1 bytes seen, for a match across reads
}

// find looks for the Pattern in data, which starts at stream offset off.
func (a *armed) find(data []byte, off int64) {
	if a.from >= 0 {
		return
	}
	if len(a.Pattern) == 0 {
		a.from = 0
		return
	}
	buf := append(a.tail, data...)
	if i := bytes.Index(buf, a.Pattern); i >= 0 {
		a.from = off - int64(len(a.tail)) + int64(i+len(a.Pattern))
		a.tail = nil
		return
	}
	a.tail = append([]byte(nil), buf[max(len(buf)-len(a.Pattern)+1, 0):]...)
}

func (l *link) isStalled() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.stalled
}

func (p *Proxy) strike(l *link, f Fault) {
	p.mu.Lock()
	p.fired = append(p.fired, f)
	p.mu.Unlock()
	l.act(f.Action)
}

// act drops the link or stalls it.
func (l *link) act(a Action) {
	switch a {
	case Drop:
		l.close()
	case Stall:
		l.mu.Lock()
		l.stalled = true
		l.mu.Unlock()
	}
}

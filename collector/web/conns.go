package web

import (
	"net"
	"net/http"
	"sync"
)

// connLimit caps the open connections over all the listeners it wraps. Each listener
// accepts the next connection and then, at the cap, makes room for it by closing the
// connection that has been idle (a keep-alive between requests, or one that never sent a
// byte) the longest; with none idle, it holds the new one until a connection closes,
// and the kernel's backlog holds the others. A listener holds one connection at most
// while it makes room, so the served ones are kept to the cap less one per listener,
// and the sockets never pass the cap. A flood of idle connections cannot take the file
// descriptors or the memory, and the newest client, a health check say, is served.
type connLimit struct {
	max int // 0: no cap

	mu        sync.Mutex
	freed     *sync.Cond // signalled when a connection closes or a listener is closed
	open      map[*limitedConn]struct{}
	listeners int
	seq       uint64 // orders the idle connections
	peak      int
	closed    uint64 // closed to make room
	waiting   int    // listeners holding a connection until one closes
}

func newConnLimit(max int) *connLimit {
	l := &connLimit{max: max, open: map[*limitedConn]struct{}{}}
	l.freed = sync.NewCond(&l.mu)
	return l
}

// limitedConn is an accepted connection and what connState last said of it.
type limitedConn struct {
	net.Conn
	limit *connLimit
	once  sync.Once
	// Guarded by limit.mu.
	state   http.ConnState
	since   uint64 // seq when it became new or idle
	closing bool
}

// Close closes the connection and frees its place.
func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.limit.mu.Lock()
		delete(c.limit.open, c)
		c.limit.freed.Broadcast()
		c.limit.mu.Unlock()
	})
	return err
}

// Stats are the limiter's figures.
type Stats struct {
	Open, Peak int
	// ClosedToMakeRoom counts the idle connections closed at the cap.
	ClosedToMakeRoom uint64
	// Waiting counts the accepted connections held until a connection closes.
	Waiting int
}

// Stats returns the connections served, the most ever served at once, how many idle ones
// were closed to make room, and how many wait to be served.
func (l *connLimit) Stats() Stats {
	l.mu.Lock()
	defer l.mu.Unlock()
	return Stats{Open: len(l.open), Peak: l.peak, ClosedToMakeRoom: l.closed, Waiting: l.waiting}
}

// admit serves conn, accepted by ln, once there is room: at the cap it closes the
// longest idle connection, or waits for one to close. It fails, closing conn, when ln is
// closed.
func (l *connLimit) admit(ln *limitedListener, conn net.Conn) (net.Conn, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for l.max > 0 && len(l.open) >= max(l.max-l.listeners, 1) && !ln.closed {
		if victim := l.longestIdleLocked(); victim != nil {
			victim.closing = true
			l.closed++
			l.mu.Unlock()
			_ = victim.Close()
			l.mu.Lock()
			continue
		}
		l.waiting++
		l.freed.Wait()
		l.waiting--
	}
	if ln.closed {
		_ = conn.Close()
		return nil, net.ErrClosed
	}
	l.seq++
	c := &limitedConn{Conn: conn, limit: l, state: http.StateNew, since: l.seq}
	l.open[c] = struct{}{}
	l.peak = max(l.peak, len(l.open))
	return c, nil
}

func (l *connLimit) longestIdleLocked() *limitedConn {
	var victim *limitedConn
	for c := range l.open {
		if c.closing || (c.state != http.StateNew && c.state != http.StateIdle) {
			continue
		}
		if victim == nil || c.since < victim.since {
			victim = c
		}
	}
	return victim
}

// connState is the server's ConnState hook: it records which connections are new, busy
// or idle, and since when they are idle.
func (l *connLimit) connState(conn net.Conn, state http.ConnState) {
	c := asLimited(conn)
	if c == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	c.state = state
	if state == http.StateIdle {
		l.seq++
		c.since = l.seq
	}
}

// asLimited finds the limitedConn under conn (a TLS connection wraps it).
func asLimited(conn net.Conn) *limitedConn {
	for conn != nil {
		switch c := conn.(type) {
		case *limitedConn:
			return c
		case interface{ NetConn() net.Conn }:
			conn = c.NetConn()
		default:
			return nil
		}
	}
	return nil
}

// limitedListener accepts within its connLimit.
type limitedListener struct {
	net.Listener
	limit  *connLimit
	closed bool // guarded by limit.mu
}

func (l *connLimit) wrap(ln net.Listener) net.Listener {
	l.mu.Lock()
	l.listeners++
	l.mu.Unlock()
	return &limitedListener{Listener: ln, limit: l}
}

func (ln *limitedListener) Accept() (net.Conn, error) {
	conn, err := ln.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return ln.limit.admit(ln, conn)
}

func (ln *limitedListener) Close() error {
	ln.limit.mu.Lock()
	ln.closed = true
	ln.limit.freed.Broadcast()
	ln.limit.mu.Unlock()
	return ln.Listener.Close()
}

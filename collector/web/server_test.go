package web

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	toolkit "github.com/prometheus/exporter-toolkit/web"
)

// serve runs a Server made of opts on a loopback listener (counted, see countingListener)
// until the test ends.
func serve(t *testing.T, opts Options) (*Server, *countingListener) {
	t.Helper()
	if opts.TelemetryPath == "" {
		opts.TelemetryPath = "/metrics"
	}
	if opts.Ready == nil {
		opts.Ready = func() bool { return true }
	}
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	counted := &countingListener{Listener: ln}
	noConfig, noSystemd := "", false
	flags := &toolkit.FlagConfig{WebConfigFile: &noConfig, WebSystemdSocket: &noSystemd, WebListenAddresses: &[]string{ln.Addr().String()}}
	done := make(chan error, 1)
	go func() { done <- s.Serve([]net.Listener{counted}, flags, slog.New(slog.DiscardHandler)) }()
	t.Cleanup(func() {
		_ = s.HTTP.Close()
		if err := <-done; err != http.ErrServerClosed {
			t.Errorf("Serve: %v", err)
		}
	})
	return s, counted
}

// countingListener counts the connections the server holds, under the limiter: the
// sockets, not the limiter's view of them.
type countingListener struct {
	net.Listener
	open, peak atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	n := l.open.Add(1)
	for p := l.peak.Load(); n > p && !l.peak.CompareAndSwap(p, n); p = l.peak.Load() {
	}
	return &countedConn{Conn: c, l: l}, nil
}

type countedConn struct {
	net.Conn
	l    *countingListener
	once sync.Once
}

func (c *countedConn) Close() error {
	c.once.Do(func() { c.l.open.Add(-1) })
	return c.Conn.Close()
}

// bigExposition writes size bytes in chunks of 192 KiB, as the exposition does, and
// counts the handlers blocked in a write.
type bigExposition struct {
	size     int
	inWrite  atomic.Int64
	returned atomic.Int64
}

var chunk = []byte(strings.Repeat("qualys_certview_filler 1\n", 192<<10/25))

func (b *bigExposition) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	defer b.returned.Add(1)
	for left := b.size; left > 0; {
		p := chunk[:min(left, len(chunk))]
		b.inWrite.Add(1)
		_, err := w.Write(p)
		b.inWrite.Add(-1)
		if err != nil {
			return
		}
		left -= len(p)
	}
}

// nonReader sends GET path on a socket with a 4 KiB receive buffer and reads only the
// status line: the server's writes then block once the socket buffers are full.
func nonReader(t *testing.T, addr, path string) (net.Conn, string) {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second, Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) }); err != nil {
			return err
		}
		return serr
	}}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if _, err := fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", path, addr); err != nil {
		t.Fatal(err)
	}
	status := make([]byte, len("HTTP/1.1 200"))
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(conn, status); err != nil {
		t.Fatalf("a non-reader's status line: %v", err)
	}
	return conn, string(status)
}

// waitFor polls cond until it holds, for at most 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}

// scrape GETs path within 5 s and reads the whole answer.
func scrape(addr, path string) (int, int, error) {
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Get("http://" + addr + path)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, int(n), err
}

// Issue 25, item 2: eight clients that ask for /metrics and never read used to hold the
// four scrape slots for the whole write timeout; every other scrape got 503. A scrape
// now gives its slot back while it waits for its client, so a normal scrape is served
// within 5 s while the eight are connected and blocked (the stall timeout is long here,
// so it is not what frees them).
func TestClientsThatReadNothingCostNoScrapeSlot(t *testing.T) {
	const size = 32 << 20 // far more than the socket buffers hold
	metrics := &bigExposition{size: size}
	_, ln := serve(t, Options{Metrics: metrics, WriteTimeout: 2 * time.Minute, StallTimeout: 2 * time.Minute})
	addr := ln.Addr().String()
	var served int
	for range 8 {
		if _, status := nonReader(t, addr, "/metrics"); status == "HTTP/1.1 200" {
			served++
		}
	}
	waitFor(t, "the non-readers' handlers to block in a write", func() bool { return metrics.inWrite.Load() == int64(served) })
	start := time.Now()
	code, n, err := scrape(addr, "/metrics")
	took := time.Since(start)
	if err != nil || code != 200 || n != size {
		t.Fatalf("a scrape while 8 clients read nothing: %d, %d bytes, %v (after %s)", code, n, err, took)
	}
	if served != 8 {
		t.Fatalf("%d of the 8 non-readers were served", served)
	}
	if metrics.inWrite.Load() != 8 {
		t.Fatalf("%d non-readers blocked after the scrape, want 8", metrics.inWrite.Load())
	}
	t.Logf("a %d MiB scrape took %s while 8 clients read nothing", size>>20, took)
}

// A client that reads nothing is cut off after the stall timeout, not the write timeout,
// and its handler returns.
func TestStallTimeoutCutsClientsThatReadNothing(t *testing.T) {
	metrics := &bigExposition{size: 32 << 20}
	_, ln := serve(t, Options{Metrics: metrics, WriteTimeout: 2 * time.Minute, StallTimeout: 300 * time.Millisecond})
	start := time.Now()
	var conns []net.Conn
	for range 4 {
		c, status := nonReader(t, ln.Addr().String(), "/metrics")
		if status != "HTTP/1.1 200" {
			t.Fatalf("non-reader: %s", status)
		}
		conns = append(conns, c)
	}
	waitFor(t, "the non-readers' handlers to fail their write and return", func() bool { return metrics.returned.Load() == 4 })
	took := time.Since(start)
	for i, c := range conns {
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, err := io.Copy(io.Discard, c) // now it reads: what was sent before the cut, then the end
		if n >= int64(metrics.size) {
			t.Fatalf("non-reader %d read %d bytes (%v): not cut off", i, n, err)
		}
	}
	t.Logf("4 non-readers cut off within %s (stall timeout 300ms, write timeout 2m)", took)
}

// At most ScrapesInProgress scrapes are in progress; beyond, 503, and /-/healthy is
// still served.
func TestScrapesInProgressAreBounded(t *testing.T) {
	metrics := &bigExposition{size: 32 << 20}
	_, ln := serve(t, Options{Metrics: metrics, WriteTimeout: 2 * time.Minute, StallTimeout: 2 * time.Minute})
	addr := ln.Addr().String()
	for i := range ScrapesInProgress {
		if _, status := nonReader(t, addr, "/metrics"); status != "HTTP/1.1 200" {
			t.Fatalf("non-reader %d: %s", i, status)
		}
	}
	waitFor(t, "the non-readers to block", func() bool { return metrics.inWrite.Load() == ScrapesInProgress })
	if code, _, err := scrape(addr, "/metrics"); code != http.StatusServiceUnavailable {
		t.Fatalf("scrape %d: %d %v, want 503", ScrapesInProgress+1, code, err)
	}
	if code, _, err := scrape(addr, "/-/healthy"); code != 200 {
		t.Fatalf("/-/healthy: %d %v", code, err)
	}
}

// A scrape gives its slot back while it writes, and holds it again when the write
// returns; http.ResponseController reaches the connection through the wrappers.
func TestSlotIsGivenBackDuringWrites(t *testing.T) {
	slots := make(chan struct{}, 1)
	slots <- struct{}{} // the scrape's slot, as wrap takes it
	inner := &blockingWriter{ResponseWriter: httptest.NewRecorder(), entered: make(chan struct{}), proceed: make(chan struct{})}
	sw := &slotWriter{ResponseWriter: inner, slots: slots}
	returned := make(chan struct{})
	go func() { _, _ = sw.Write([]byte("x 1\n")); close(returned) }()
	<-inner.entered
	select {
	case slots <- struct{}{}: // another scrape can take it
		<-slots
	default:
		t.Fatal("the slot is held while the scrape waits for its client")
	}
	close(inner.proceed)
	<-returned
	if len(slots) != 1 {
		t.Fatal("the scrape renders on after its write without its slot")
	}

	// Through both wrappers, as New stacks them.
	rcErr := make(chan error, 1)
	h := withWriteDeadlines(newScrapeLimit(1, 1).wrap(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		rcErr <- http.NewResponseController(w).SetWriteDeadline(time.Now().Add(time.Minute))
	})), time.Minute, time.Second)
	srv := httptest.NewServer(h)
	defer srv.Close()
	if code, _, err := scrape(srv.Listener.Addr().String(), "/"); code != 200 || err != nil {
		t.Fatalf("%d %v", code, err)
	}
	if err := <-rcErr; err != nil {
		t.Fatalf("ResponseController through the wrappers: %v", err)
	}
}

// blockingWriter's Write says it was entered, then waits to be let through.
type blockingWriter struct {
	http.ResponseWriter
	entered, proceed chan struct{}
}

func (b *blockingWriter) Write(p []byte) (int, error) {
	close(b.entered)
	<-b.proceed
	return b.ResponseWriter.Write(p)
}

// Issue 25, item 3: a flood of idle connections (never used, or kept alive after a
// request) is held under the cap: the oldest idle ones are closed to make room, so
// /-/healthy answers, and the server never holds more connections than the cap.
func TestConnectionFloodStaysUnderTheCap(t *testing.T) {
	const max, flood = 16, 300
	s, ln := serve(t, Options{Metrics: http.NotFoundHandler(), MaxConnections: max})
	addr := ln.Addr().String()
	var conns []net.Conn
	for i := range flood {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		if i%2 == 1 {
			// One request, kept alive; a closed connection shows as an error here,
			// which is allowed: the server may have closed it to make room.
			_, _ = fmt.Fprintf(c, "GET /-/healthy HTTP/1.1\r\nHost: x\r\n\r\n")
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			if resp, err := http.ReadResponse(bufio.NewReader(c), nil); err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}
		if i%50 == 49 {
			if code, _, err := scrape(addr, "/-/healthy"); code != 200 {
				t.Fatalf("/-/healthy after %d idle connections: %d %v", i+1, code, err)
			}
		}
	}
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	for range 10 {
		if code, _, err := scrape(addr, "/-/healthy"); code != 200 {
			t.Fatalf("/-/healthy under the flood: %d %v", code, err)
		}
	}
	st := s.Stats()
	if p := ln.peak.Load(); p > max || st.Peak > max || st.Open > max {
		t.Fatalf("the server held %d connections at once (limiter: peak %d, open %d), cap %d", p, st.Peak, st.Open, max)
	}
	if st.ClosedToMakeRoom < flood-max {
		t.Fatalf("%d idle connections closed to make room, want at least %d", st.ClosedToMakeRoom, flood-max)
	}
	t.Logf("%d connections opened against a cap of %d: peak %d, %d idle ones closed to make room", flood, max, ln.peak.Load(), st.ClosedToMakeRoom)
}

// With every connection busy, the next one waits for a place instead of passing the cap;
// it is served when one closes.
func TestConnectionCapWaitsWhenNoneIsIdle(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{}, 2)
	metrics := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		started <- struct{}{}
		<-release
		_, _ = w.Write([]byte("x 1\n"))
	})
	const max = 3 // one listener: two served, and one held while room is made
	s, ln := serve(t, Options{Metrics: metrics, MaxConnections: max})
	addr := ln.Addr().String()
	busy := make(chan int, 2)
	for range 2 {
		go func() { code, _, _ := scrape(addr, "/metrics"); busy <- code }()
	}
	<-started
	<-started
	third, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer third.Close()
	_, _ = fmt.Fprintf(third, "GET /-/healthy HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	waitFor(t, "the third connection to be held", func() bool { return s.Stats().Waiting == 1 })
	_ = third.SetReadDeadline(time.Now())
	if n, err := third.Read(make([]byte, 1)); n != 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("the third connection was answered while two were busy at a cap of %d: %d bytes, %v", max, n, err)
	}
	close(release)
	if c1, c2 := <-busy, <-busy; c1 != 200 || c2 != 200 {
		t.Fatalf("the busy scrapes: %d %d", c1, c2)
	}
	_ = third.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(third), nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("the third connection once room was made: %v %v", resp, err)
	}
	resp.Body.Close()
	if p := ln.peak.Load(); p > max {
		t.Fatalf("the server held %d connections at once, cap %d", p, max)
	}
}

// The ConnState hook finds the limited connection under a TLS one.
func TestLimitedConnUnderTLS(t *testing.T) {
	a, b := net.Pipe()
	defer b.Close()
	lim := newConnLimit(0)
	c, err := lim.admit(&limitedListener{limit: lim}, a)
	if err != nil {
		t.Fatal(err)
	}
	if got := asLimited(tls.Server(c, &tls.Config{})); got != c {
		t.Fatalf("asLimited(tls.Server(c)) = %v", got)
	}
	lim.connState(tls.Server(c, &tls.Config{}), http.StateIdle)
	if c.(*limitedConn).state != http.StateIdle {
		t.Fatal("the state of a TLS connection was not recorded")
	}
	_ = c.Close()
	if st := lim.Stats(); st.Open != 0 {
		t.Fatalf("open after close: %d", st.Open)
	}
}

// The stall deadline a response leaves on a keep-alive connection does not outlive it
// (net/http clears the connection's write deadline after each response): the next
// request's answer is written even when net/http writes it before any handler (431
// here; exporter-toolkit's 401 likewise) and no write timeout gives it a fresh deadline.
func TestNoStaleDeadlineOnAKeptAliveConnection(t *testing.T) {
	const stall = 50 * time.Millisecond
	_, ln := serve(t, Options{Metrics: http.NotFoundHandler(), StallTimeout: stall})
	c, err := net.DialTimeout("tcp", ln.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, _ = fmt.Fprintf(c, "GET /-/healthy HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(r, nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("first request: %v %v", resp, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	answered := time.Now()
	waitFor(t, "the first answer's stall deadline to pass", func() bool { return time.Since(answered) > 3*stall })
	_, _ = fmt.Fprintf(c, "GET /-/healthy HTTP/1.1\r\nHost: x\r\nX-Big: %s\r\n\r\n", strings.Repeat("a", MaxHeaderBytes+8192))
	resp, err = http.ReadResponse(r, nil)
	if err != nil || resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("an oversized header on the kept-alive connection: %v %v, want 431", resp, err)
	}
}

// A large write goes out in pieces of at most 64 KiB, each with its own stall deadline,
// so a slow but steady client is not cut off for a 1 MiB write (a gzip scrape's cached
// part) it could not read within the stall timeout.
func TestLargeWritesGetADeadlinePerPiece(t *testing.T) {
	rec := &deadlineRecorder{ResponseRecorder: httptest.NewRecorder()}
	const stall = 10 * time.Second
	sw := &stallWriter{ResponseWriter: rec, rc: http.NewResponseController(rec), stall: stall}
	p := make([]byte, 1<<20+5)
	before := time.Now()
	if n, err := sw.Write(p); n != len(p) || err != nil {
		t.Fatalf("Write: %d, %v", n, err)
	}
	after := time.Now()
	if len(rec.sizes) != 17 || len(rec.deadlines) != 17 {
		t.Fatalf("%d writes and %d deadlines for 1 MiB + 5 bytes, want 17 each", len(rec.sizes), len(rec.deadlines))
	}
	// Each deadline is the stall timeout from the moment of its piece (the connection's
	// deadlines are wall-clock ones: the network poller measures them).
	for i, d := range rec.deadlines {
		if d.Before(before.Add(stall)) || d.After(after.Add(stall)) || (i > 0 && d.Before(rec.deadlines[i-1])) {
			t.Fatalf("deadline %d is %v, want the stall timeout from its write (between %v and %v), not before the last",
				i, d, before.Add(stall), after.Add(stall))
		}
	}
	for i, n := range rec.sizes {
		if n > 64<<10 {
			t.Fatalf("write %d: %d bytes", i, n)
		}
	}
	if rec.Body.Len() != len(p) {
		t.Fatalf("%d bytes written", rec.Body.Len())
	}
	// The overall end caps every piece's deadline.
	rec.deadlines = nil
	sw.end = time.Now().Add(time.Second)
	if _, err := sw.Write(p[:100]); err != nil || len(rec.deadlines) != 1 || !rec.deadlines[0].Equal(sw.end) {
		t.Fatalf("with the overall end one second away, the piece's deadline is %v, want %v", rec.deadlines, sw.end)
	}
}

// deadlineRecorder records the size of each write and each write deadline set.
type deadlineRecorder struct {
	*httptest.ResponseRecorder
	sizes     []int
	deadlines []time.Time
}

func (d *deadlineRecorder) Write(p []byte) (int, error) {
	d.sizes = append(d.sizes, len(p))
	return d.ResponseRecorder.Write(p)
}

func (d *deadlineRecorder) SetWriteDeadline(t time.Time) error {
	d.deadlines = append(d.deadlines, t)
	return nil
}

// A request that announces a body and sends a few bytes of it was answered, then held
// its connection active while net/http drained the rest under the 30 s read timeout:
// active connections are never closed to make room, so a handful of such clients held
// the cap and /-/healthy with it; a chunked body on /-/reload (answered 403 without the
// lifecycle flag) as well. No route reads a body: such a request is answered with
// Connection: close, and net/http drains nothing.
func TestTrickledBodiesDoNotHoldTheCap(t *testing.T) {
	const max = 4 // one listener: three served, one held while room is made
	s, ln := serve(t, Options{Metrics: http.NotFoundHandler(), MaxConnections: max})
	addr := ln.Addr().String()
	for i := range max - 1 {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		// Any route: a reload's 403 (or its answer with the lifecycle on) reads no body.
		req := []string{"GET /-/healthy HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\nabc",
			"POST /-/reload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nfffff\r\nab"}[i%2]
		_, _ = fmt.Fprint(c, req)
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("trickler %d: %v", i, err)
		}
		if !resp.Close {
			t.Errorf("trickler %d: the answer keeps the connection open", i)
		}
		resp.Body.Close()
	}
	// The tricklers' connections are closed once answered: health answers at once.
	if code, _, err := scrape(addr, "/-/healthy"); err != nil || code != 200 {
		t.Fatalf("/-/healthy with %d tricklers at a cap of %d: %d %v (stats %+v)", max-1, max, code, err, s.Stats())
	}
}

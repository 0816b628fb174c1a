package certview

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/jonboulle/clockwork"
)

// testJWT is the token a hostile test server issues.
const testJWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"

// countingTransport counts the bytes the client reads from response bodies, after the
// inner transport has inflated them, and notes whether it did inflate.
type countingTransport struct {
	inner        http.RoundTripper
	read         atomic.Int64
	uncompressed atomic.Bool
}

func (t *countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.inner.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	if resp.Uncompressed {
		t.uncompressed.Store(true)
	}
	resp.Body = &countingBody{ReadCloser: resp.Body, n: &t.read}
	return resp, nil
}

type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	return n, err
}

// newHTTPRig is a rig whose API is handler on an httptest server: /auth issues testJWT,
// every other path goes to handler. The client reads through a countingTransport.
func newHTTPRig(t *testing.T, handler http.HandlerFunc, tweak func(*Config)) (*rig, *countingTransport) {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/auth" {
			w.WriteHeader(http.StatusCreated)
			_, _ = io.WriteString(w, testJWT)
			return
		}
		handler(w, r)
	}))
	t.Cleanup(srv.Close)
	ct := &countingTransport{inner: http.DefaultTransport.(*http.Transport).Clone()}
	t.Cleanup(ct.inner.(*http.Transport).CloseIdleConnections)
	r := &rig{t: t, clock: clockwork.NewFakeClockAt(epoch), waitCh: make(chan WaitEvent, 1000)}
	cfg := Config{
		BaseURL:             srv.URL,
		Credentials:         Credentials{Username: "demo", Password: "demo-password"},
		CertificatesVersion: "v2",
		Clock:               r.clock,
		Timeout:             30 * time.Second,
		Transport:           ct,
		Hooks: Hooks{
			Request: func(e RequestEvent) { r.mu.Lock(); r.requests = append(r.requests, e); r.mu.Unlock() },
			Wait: func(e WaitEvent) {
				r.mu.Lock()
				r.waits = append(r.waits, e)
				r.mu.Unlock()
				r.waitCh <- e
			},
			Skip: func(e SkipEvent) { r.mu.Lock(); r.skips = append(r.skips, e); r.mu.Unlock() },
		},
	}
	if tweak != nil {
		tweak(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r.c = c
	return r, ct
}

// endless writes chunk until the client goes away.
func endless(start, chunk string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, start)
		buf := strings.Repeat(chunk, 32<<10/len(chunk))
		for r.Context().Err() == nil {
			if _, err := io.WriteString(w, buf); err != nil {
				return
			}
		}
	}
}

// gzipBomb is about 1 MiB of gzip that inflates to a JSON array opening followed by
// 1 GiB of spaces: gzip members of 1 MiB of spaces each, concatenated.
var gzipBomb = sync.OnceValue(func() []byte {
	member := func(s string) []byte {
		var b bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&b, gzip.BestCompression)
		_, _ = io.WriteString(zw, s)
		_ = zw.Close()
		return b.Bytes()
	}
	spaces := strings.Repeat(" ", 1<<20)
	out := member("[" + spaces)
	rest := member(spaces)
	for len(out) < 1<<20 {
		out = append(out, rest...)
	}
	return out
})

func wantPageLimit(t *testing.T, err error, unit string, limit int64) {
	t.Helper()
	var pl *PageLimitError
	if !errors.As(err, &pl) || pl.Unit != unit || pl.Limit != limit || pl.Endpoint != EndpointCertificates || pl.Page != 0 {
		t.Fatalf("err = %v, want a PageLimitError of %d %s on certificates page 0", err, limit, unit)
	}
	msg := err.Error()
	for _, want := range []string{"certificates", "page 0", fmt.Sprint(limit), unit} {
		if !strings.Contains(msg, want) {
			t.Fatalf("error %q does not name %q", msg, want)
		}
	}
}

// A page's body is limited to PageSize*PageBytesPerRecord+PageBytesSlack bytes, after
// the transport has inflated it: a gzip bomb, a huge plain answer and an endless stream
// all stop at the limit, with an error naming the page and the limit, and no retry.
func TestPageBodyIsBounded(t *testing.T) {
	const size = 10
	limit := int64(size*PageBytesPerRecord + PageBytesSlack)
	bomb := gzipBomb()
	if len(bomb) > 1<<20+64<<10 {
		t.Fatalf("the bomb is %d bytes", len(bomb))
	}
	for name, h := range map[string]http.HandlerFunc{
		"gzip bomb": func(w http.ResponseWriter, r *http.Request) {
			if !strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
				t.Errorf("the transport did not ask for gzip: %q", r.Header.Get("Accept-Encoding"))
			}
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Content-Encoding", "gzip")
			_, _ = w.Write(bomb)
		},
		"endless whitespace": endless("[", " "),
		"endless string":     endless(`[{"certhash": "`, "a"),
		"one huge record":    endless(`[{"certhash": "a", "dn": "`, "x"),
	} {
		t.Run(name, func(t *testing.T) {
			r, ct := newHTTPRig(t, h, func(c *Config) { c.PageSize = size })
			_, _, err := r.listCertificates()
			wantPageLimit(t, err, "bytes", limit)
			if got := len(r.requests); got != 2 {
				t.Fatalf("%d requests, want the auth and one page (no retry)", got)
			}
			// What was read: the limit, one byte past it, and at most the 64 KiB drain.
			if n := ct.read.Load(); n > limit+1+64<<10+int64(len(testJWT)) {
				t.Fatalf("read %d bytes of body, limit %d", n, limit)
			}
			if name == "gzip bomb" && !ct.uncompressed.Load() {
				t.Fatal("the transport did not inflate the answer itself")
			}
		})
	}
}

// MaxPageBytes replaces the derived limit.
func TestMaxPageBytesSetting(t *testing.T) {
	body := `[{"certhash": "a", "dn": "` + strings.Repeat("x", 5000) + `"}]`
	h := func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, body) }
	r, _ := newHTTPRig(t, h, func(c *Config) { c.MaxPageBytes = 4096 })
	_, _, err := r.listCertificates()
	wantPageLimit(t, err, "bytes", 4096)
	r, _ = newHTTPRig(t, h, func(c *Config) { c.MaxPageBytes = int64(len(body)) })
	if _, certs, err := r.listCertificates(); err != nil || len(certs) != 1 {
		t.Fatalf("a body of exactly the limit: %d records, err %v", len(certs), err)
	}
	if err := (&Config{BaseURL: "https://x", Credentials: Credentials{Username: "u", Password: "p"}, MaxPageBytes: -1}).Validate(); err == nil {
		t.Fatal("a negative MaxPageBytes was accepted")
	}
}

// A page holding more records than the page size asked for fails at the first extra
// record, however many follow, and logs nothing per record.
func TestPageRecordsAreBounded(t *testing.T) {
	million := "[" + strings.TrimSuffix(strings.Repeat("{},", 1000000), ",") + "]"
	var logs bytes.Buffer
	r, ct := newHTTPRig(t, func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, million) },
		func(c *Config) { c.Logger = log.NewLogfmtLogger(&logs) })
	_, _, err := r.listCertificates()
	wantPageLimit(t, err, "records", DefaultPageSize)
	if n := ct.read.Load(); n > 1<<20 {
		t.Fatalf("read %d bytes to find the 201st record", n)
	}
	if lines := strings.Count(logs.String(), "\n"); lines > 1 {
		t.Fatalf("%d log lines for one refused page:\n%.2000s", lines, logs.String())
	}
	// 201 good records fail the same way.
	var b strings.Builder
	b.WriteString("[")
	for i := range DefaultPageSize + 1 {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `{"id": %d, "certhash": "h%d"}`, i+1, i)
	}
	b.WriteString("]")
	r, _ = newHTTPRig(t, func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, b.String()) }, nil)
	_, certs, err := r.listCertificates()
	wantPageLimit(t, err, "records", DefaultPageSize)
	if len(certs) != 0 {
		t.Fatalf("%d records of a refused page reached the caller", len(certs))
	}
}

// Error bodies are read to a bound too: an endless 400 or 500 answer ends the call.
func TestErrorBodiesAreBounded(t *testing.T) {
	for _, status := range []int{400, 500} {
		r, ct := newHTTPRig(t, func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(status)
			endless("", "e")(w, r)
		}, func(c *Config) { c.MaxRetries = 1 })
		_, _, err := r.listCertificates()
		var apiErr *APIError
		if !errors.As(err, &apiErr) || apiErr.Status != status || len(apiErr.Body) != maxErrorBodyBytes {
			t.Fatalf("err = %v, want an APIError %d with a %d-byte body", err, status, maxErrorBodyBytes)
		}
		if n, calls := ct.read.Load(), int64(len(r.requests)-1); n > calls*(128<<10+1)+int64(len(testJWT)) {
			t.Fatalf("read %d bytes of error bodies in %d calls", n, calls)
		}
	}
}

// A token answer larger than the token bound is refused, not cut to size and used.
func TestOversizedTokenIsRefused(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusCreated)
		endless("eyJ", "a")(w, r)
	}))
	defer srv.Close()
	c, err := New(Config{BaseURL: srv.URL, Credentials: Credentials{Username: "u", Password: "pw-secret"}, Clock: clockwork.NewFakeClockAt(epoch)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	tok, err := c.Token(context.Background())
	var authErr *AuthError
	if !errors.As(err, &authErr) || tok != "" || !strings.Contains(err.Error(), fmt.Sprint(maxTokenBytes)) {
		t.Fatalf("token of %d bytes, err %v; want an AuthError naming the %d-byte bound", len(tok), err, maxTokenBytes)
	}
}

// pagedHandler answers page n of a listing with pages[n], and [] past the last.
func pagedHandler(t *testing.T, pages ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			PageNumber int `json:"pageNumber"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			t.Errorf("request body: %v", err)
		}
		w.Header().Set("Content-Type", "application/json")
		if req.PageNumber < len(pages) {
			_, _ = io.WriteString(w, pages[req.PageNumber])
			return
		}
		_, _ = io.WriteString(w, "[]")
	}
}

// A page of bad records gives one summary line (count and first error), and a skip
// event per record, so that a counter fed by the hook stays exact.
func TestBadRecordsAreSummarisedPerPage(t *testing.T) {
	bad := "[" + strings.TrimSuffix(strings.Repeat("{},", DefaultPageSize), ",") + "]"
	var logs bytes.Buffer
	r, _ := newHTTPRig(t, pagedHandler(t, bad, `[{"id": 1, "certhash": "a"}, 7]`), func(c *Config) { c.Logger = log.NewLogfmtLogger(&logs) })
	st, certs, err := r.listCertificates()
	if err != nil || len(certs) != 1 {
		t.Fatalf("%d records, err %v", len(certs), err)
	}
	if st.Skipped != DefaultPageSize+1 || len(r.skips) != DefaultPageSize+1 {
		t.Fatalf("stats %+v, %d skip events; want %d", st, len(r.skips), DefaultPageSize+1)
	}
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d log lines, want one per page:\n%s", len(lines), logs.String())
	}
	for _, want := range []string{"level=warn", "page=0", "skipped=200", "first_index=0", "certhash is missing"} {
		if !strings.Contains(lines[0], want) {
			t.Errorf("summary %q lacks %q", lines[0], want)
		}
	}
	if !strings.Contains(lines[1], "page=1") || !strings.Contains(lines[1], "skipped=1") || !strings.Contains(lines[1], "first_index=1") {
		t.Errorf("summary of page 1: %q", lines[1])
	}
}

// A page that is read again after a broken stream reports its bad records once.
func TestSkipsOfARetriedPageCountOnce(t *testing.T) {
	var calls atomic.Int32
	r, _ := newHTTPRig(t, func(w http.ResponseWriter, _ *http.Request) {
		if calls.Add(1) == 1 {
			_, _ = io.WriteString(w, `[{}, {"id": 1, "certhash": "a"}, {"id": 2,, }`)
			return
		}
		_, _ = io.WriteString(w, `[{}, {"id": 1, "certhash": "a"}]`)
	}, nil)
	st, certs, err := r.listCertificates()
	if err != nil || len(certs) != 1 || calls.Load() != 2 {
		t.Fatalf("%d records in %d calls, err %v", len(certs), calls.Load(), err)
	}
	if st.Skipped != 1 || len(r.skips) != 1 {
		t.Fatalf("stats %+v, %d skip events; want 1", st, len(r.skips))
	}
}

// The client's own transport refuses a response whose headers run past their bound.
func TestHugeResponseHeadersAreRefused(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Header().Set("X-RateLimit-Limit", strings.Repeat("9", maxResponseHeaderBytes))
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, testJWT)
	}))
	defer srv.Close()
	c, err := New(Config{BaseURL: srv.URL, Credentials: Credentials{Username: "u", Password: "pw-secret"},
		Clock: clockwork.NewFakeClockAt(epoch), MaxRetries: 1, BackoffBase: 1, BackoffMax: 1}) // a 1 ns backoff rounds down to no wait
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Token(context.Background()); err == nil || !strings.Contains(err.Error(), "header") {
		t.Fatalf("err = %v, want the headers refused", err)
	}
}

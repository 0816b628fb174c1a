package certview

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/certview-exporter/certview_exporter/certview/certviewtest"
	"github.com/jonboulle/clockwork"
)

// fuzzAnswer is what the fuzzed API answers to every data call.
type fuzzAnswer struct {
	status  int
	header  http.Header
	gzipped bool
	body    []byte
}

const fuzzPassword = "fz-Pass+word@9"

// FuzzListPageHTTP drives a real Client's certificate listing against an httptest
// server answering a fuzzed status, rate-limit headers and body (gzipped or not). The
// listing must end, without a panic; no wait may be negative or past MaxHeaderWait, no
// window past MaxHeaderWindow, no record without a certhash, no page past its size, and
// no error may hold the password. Waits run on a fake clock: nothing sleeps.
func FuzzListPageHTTP(f *testing.F) {
	page := string(certviewtest.Sample("certificates_v2.json"))
	far := epoch.Add(50 * 365 * 24 * time.Hour).Format(http.TimeFormat)
	empties := "[" + strings.TrimSuffix(strings.Repeat("{},", 50), ",") + "]"
	for _, s := range []struct {
		status                             int
		toWait, retryAfter, window, remain string
		gzipped                            bool
		body                               string
	}{
		{200, "", "", "", "", false, page},
		{200, "", "", "", "", true, page},
		{429, "10000000000", "", "", "", false, ""},
		{409, "1000000000", "", "", "0", false, ""},
		{503, "", "10000000000", "", "", false, ""},
		{429, "", far, "", "", false, ""},
		{429, "99999999999999999999999", "-1", "2147483648", "", false, ""},
		{200, "", "", "2147483648", "99999999999999999999", false, "[]"},
		{200, "5", "", "", "0", false, `[{"id": "1", "certhash": "a", "keySize": "2048", "subjectAlternativeNames": "a, b"}]`},
		{200, "", "", "", "", false, empties},
		{200, "", "", "", "", true, "[" + strings.Repeat(" ", 1<<16)},
		{200, "", "", "", "", false, `[{"validTo": 9223372036854775807, "certhash": "x"}, {"validTo": 1e400, "certhash": "y"}]`},
		{400, "", "", "", "", false, "password=fz-Pass%2Bword%409&username=demo"},
		{400, "", "", "", "", false, `{"password": "fz-Pass+word@9", "echo": "fz-Pass%2bword%409 fz-Pass%2Bword@9"}`},
		{500, "", "", "", "", false, "<html>oops</html>"},
		{204, "", "", "", "", false, ""},
		{200, "", "", "", "", false, `{"errorCode": 500}`},
	} {
		f.Add(s.status, s.toWait, s.retryAfter, s.window, s.remain, s.gzipped, []byte(s.body))
	}

	var current atomic.Pointer[fuzzAnswer]
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/auth" {
			w.WriteHeader(http.StatusCreated)
			_, _ = io.WriteString(w, testJWT)
			return
		}
		a := current.Load()
		for k, v := range a.header {
			w.Header()[k] = v
		}
		body := a.body
		if a.gzipped {
			var b bytes.Buffer
			zw := gzip.NewWriter(&b)
			_, _ = zw.Write(body)
			_ = zw.Close()
			body = b.Bytes()
			w.Header().Set("Content-Encoding", "gzip")
		}
		w.WriteHeader(a.status)
		_, _ = w.Write(body)
	}))
	defer srv.Close()

	f.Fuzz(func(t *testing.T, status int, toWait, retryAfterValue, window, remaining string, gzipped bool, body []byte) {
		if status < 200 || status > 599 {
			status = 200 + (status%400+400)%400
		}
		h := http.Header{}
		for k, v := range map[string]string{"X-RateLimit-ToWait-Sec": toWait, "Retry-After": retryAfterValue,
			"X-RateLimit-Window-Sec": window, "X-RateLimit-Remaining": remaining} {
			if v != "" {
				h[k] = []string{v}
			}
		}
		current.Store(&fuzzAnswer{status: status, header: h, gzipped: gzipped, body: body})

		const size = 5
		clock := clockwork.NewFakeClockAt(epoch)
		var mu sync.Mutex
		var bad []string
		waits := make(chan WaitEvent, 100)
		c, err := New(Config{
			BaseURL: srv.URL, Credentials: Credentials{Username: "demo", Password: fuzzPassword},
			CertificatesVersion: "v2", PageSize: size, MaxPages: 3, MaxRetries: 1, MaxThrottleRetries: 1,
			Clock: clock, Timeout: 10 * time.Second,
			Hooks: Hooks{Wait: func(e WaitEvent) {
				if e.Duration < 0 || e.Duration > MaxHeaderWait {
					mu.Lock()
					bad = append(bad, e.Reason+" wait of "+e.Duration.String())
					mu.Unlock()
				}
				waits <- e
			}},
		})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		r := &rig{t: t, clock: clock, c: c, waitCh: waits}
		st, certs, err := r.listCertificates()
		for _, b := range bad {
			t.Error(b)
		}
		if err != nil {
			// The body may hold any fragment of the password; redaction answers for the
			// whole password in each spelling a server could echo it in.
			for _, s := range secretSpellings(fuzzPassword) {
				if strings.Contains(err.Error(), s) {
					t.Fatalf("the error shows the password (as %q): %v", s, err)
				}
			}
			var pl *PageLimitError
			if errors.As(err, &pl) && (pl.Endpoint != EndpointCertificates || pl.Limit <= 0) {
				t.Fatalf("page limit error %+v", pl)
			}
		}
		if st.Pages > 3 || len(certs) > st.Pages*size {
			t.Fatalf("%d records in %d pages of %d", len(certs), st.Pages, size)
		}
		for _, cert := range certs {
			if cert.CertHash == "" {
				t.Fatal("a certificate without certhash was accepted")
			}
			_ = UnixSeconds(cert.ValidTo.Time)
		}
		if b, _ := c.Budget(EndpointCertificates); b.Window < 0 || b.Window > MaxHeaderWindow {
			t.Fatalf("window %s", b.Window)
		}
	})
}

// FuzzRateLimitHeaders drives the rate-limit headers through ParseRateLimit, the
// limiter's clamp and update, Retry-After and the throttling wait, with any configured
// window. Nothing may panic; no wait may be negative or past the cap; no window may pass
// MaxHeaderWindow (or the configured window, if wider).
func FuzzRateLimitHeaders(f *testing.F) {
	far := epoch.Add(50 * 365 * 24 * time.Hour).Format(http.TimeFormat)
	past := epoch.Add(-time.Hour).Format(http.TimeFormat)
	for _, s := range [][7]string{
		{"300", "3600", "12", "7", "2", "1", ""},
		{"", "", "", "10000000000", "", "", ""},
		{"", "", "0", "1000000000", "", "", "10000000000"},
		{"", "2147483648", "", "", "", "", far},
		{"99999999999999999999999", "99999999999999999999999", "99999999999999999999999", "99999999999999999999999", "9223372036854775807", "0", "99999999999999999999999"},
		{"-1", "-1", "-1", "-1", "-1", "-1", "-1"},
		{" 7 ", "1e3", "0x10", "", "", "", past},
		{"300", "86400", "0", "90000", "1", "1", "1.5"},
		{strings.Repeat("9", 4096), "", "", "", "", "", strings.Repeat("x", 4096)},
	} {
		f.Add(s[0], s[1], s[2], s[3], s[4], s[5], s[6], int64(time.Hour))
	}
	f.Add("1", "1", "1", "1", "1", "1", "1", int64(48*time.Hour))
	f.Add("1", "1", "1", "1", "1", "1", "1", int64(-1))

	c, err := New(Config{BaseURL: "https://certview.invalid", Credentials: Credentials{Username: "u", Password: "p"},
		Clock: clockwork.NewFakeClockAt(epoch)})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, limit, window, remaining, toWait, concLimit, concRunning, retryAfterValue string, cfgWindow int64) {
		h := http.Header{}
		for k, v := range map[string]string{"X-RateLimit-Limit": limit, "X-RateLimit-Window-Sec": window,
			"X-RateLimit-Remaining": remaining, "X-RateLimit-ToWait-Sec": toWait, "X-Concurrency-Limit-Limit": concLimit,
			"X-Concurrency-Limit-Running": concRunning, "Retry-After": retryAfterValue} {
			h[k] = []string{v}
		}
		info, problems := ParseRateLimit(h)
		for _, v := range []int{info.Limit, info.WindowSec, info.Remaining, info.ToWaitSec, info.ConcurrencyLimit, info.ConcurrencyRunning} {
			if v < Unknown {
				t.Fatalf("parsed %+v", info)
			}
		}
		for _, p := range problems {
			if len(p.Error()) > 200 {
				t.Fatalf("a %d-byte problem: %.200s", len(p.Error()), p)
			}
		}
		// A configured window of a second to a year (Validate refuses less).
		w := time.Duration(cfgWindow)
		if w < time.Second || w > 365*24*time.Hour {
			w = time.Hour
		}
		clock := clockwork.NewFakeClockAt(epoch)
		l := newLimiter(clock, RateLimit{Calls: 300, Window: w, Concurrency: 2})
		wcap := l.waitCap()
		if wcap <= 0 || wcap > MaxHeaderWait {
			t.Fatalf("wait cap %s", wcap)
		}
		clamped := l.clamp(info, 0)
		if clamped.WindowSec > int(MaxHeaderWindow/time.Second) || time.Duration(clamped.ToWaitSec)*time.Second > MaxHeaderWait {
			t.Fatalf("clamped %+v", clamped)
		}
		l.update(info) // unclamped: update must bound it on its own
		l.update(clamped)
		if b := l.budget(); b.Window <= 0 || b.Window > max(w, MaxHeaderWindow) || b.Used < 0 {
			t.Fatalf("budget %+v", b)
		}
		if d, ok := retryAfter(h, epoch); ok && d < 0 {
			t.Fatalf("Retry-After %s", d)
		}
		for attempt := range 3 {
			if d := c.throttleWait(l, 0, clamped, h, attempt); d < 0 || d > MaxHeaderWait {
				t.Fatalf("throttle wait %s", d)
			}
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		var planned time.Duration
		if _, err := l.acquire(ctx, func(_ string, d time.Duration) { planned = d }); err == nil {
			planned = 0
		}
		if planned < 0 || planned > max(w, MaxHeaderWait) {
			t.Fatalf("planned wait %s", planned)
		}
	})
}

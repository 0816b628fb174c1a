package certview

import (
	"bytes"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/certview-exporter/certview_exporter/certview/certviewtest"
	"github.com/go-kit/log"
)

// A throttling answer whose wait header is absurd (overflowing, decades long, or far
// past any window) is waited out for at most the wait cap, never for a negative or
// decades-long time, and the clamp is logged naming the header.
func TestHostileWaitHeadersAreClamped(t *testing.T) {
	far := epoch.Add(50 * 365 * 24 * time.Hour).Format(http.TimeFormat)
	for _, tc := range []struct {
		name, header, value string
	}{
		{"ToWait overflows", "X-RateLimit-ToWait-Sec", "10000000000"},
		{"ToWait 31 years", "X-RateLimit-ToWait-Sec", "1000000000"},
		{"ToWait past int64", "X-RateLimit-ToWait-Sec", "99999999999999999999999999"},
		{"Retry-After overflows", "Retry-After", "10000000000"},
		{"Retry-After 31 years", "Retry-After", "1000000000"},
		{"Retry-After date in 50 years", "Retry-After", far},
	} {
		for _, status := range []int{409, 429, 503} {
			t.Run(tc.name+"/"+http.StatusText(status), func(t *testing.T) {
				var logs bytes.Buffer
				r := newRig(t, inventory(10, 0), func(c *Config) { c.Logger = log.NewLogfmtLogger(&logs) })
				r.srv.Sim.Inject(certviewtest.Fault{Endpoint: "certificates", Page: 0, Kind: certviewtest.FaultStatus, Status: status,
					Header: map[string]string{tc.header: tc.value}})
				start := r.clock.Now()
				_, certs, err := r.listCertificates()
				if err != nil || len(certs) != 10 {
					t.Fatalf("%d records, err %v", len(certs), err)
				}
				var throttled []time.Duration
				for _, w := range r.waitEvents() {
					if w.Duration < 0 || w.Duration > DefaultRateLimitWindow {
						t.Fatalf("wait %+v is outside [0, %s]", w, DefaultRateLimitWindow)
					}
					if w.Reason == "throttled" {
						throttled = append(throttled, w.Duration)
					}
				}
				// The default window is an hour: the wait is clamped to exactly that.
				if len(throttled) != 1 || throttled[0] != DefaultRateLimitWindow {
					t.Fatalf("throttled waits %v, want one of %s", throttled, DefaultRateLimitWindow)
				}
				if took := r.clock.Since(start); took > DefaultRateLimitWindow+time.Minute {
					t.Fatalf("the listing took %s of clock time", took)
				}
				line := logLine(t, logs.String(), "clamp")
				if !strings.Contains(line, tc.header) || !strings.Contains(line, "level=warn") {
					t.Fatalf("clamp log %q does not name %s at warn", line, tc.header)
				}
			})
		}
	}
}

// A wait up to the window the server announces is honoured, up to a day; beyond a day
// it is clamped to a day.
func TestWaitCapFollowsTheWindowUpToADay(t *testing.T) {
	for _, tc := range []struct {
		window, toWait string
		want           time.Duration
	}{
		{"86400", "80000", 80000 * time.Second},
		{"86400", "90000", 24 * time.Hour},
		{"7200", "7000", 7000 * time.Second},
		{"7200", "9000", 2 * time.Hour},
		{"600", "3000", 3000 * time.Second}, // never below the default hour
	} {
		r := newRig(t, inventory(10, 0), nil)
		r.srv.Sim.Inject(certviewtest.Fault{Endpoint: "certificates", Page: 0, Kind: certviewtest.FaultStatus, Status: 429,
			Header: map[string]string{"X-RateLimit-Window-Sec": tc.window, "X-RateLimit-ToWait-Sec": tc.toWait}})
		if _, _, err := r.listCertificates(); err != nil {
			t.Fatal(err)
		}
		w := r.waitEvents()
		if len(w) == 0 || w[0].Reason != "throttled" || w[0].Duration != tc.want {
			t.Errorf("window %s, ToWait %s: waits %+v, want %s throttled first", tc.window, tc.toWait, w, tc.want)
		}
	}
}

// X-RateLimit-Window-Sec cannot widen the client's window past a day.
func TestHostileWindowHeaderIsClamped(t *testing.T) {
	var logs bytes.Buffer
	r := newRig(t, inventory(10, 0), func(c *Config) { c.Logger = log.NewLogfmtLogger(&logs) })
	r.srv.Sim.Inject(certviewtest.Fault{Endpoint: "certificates", Page: 0, Kind: certviewtest.FaultStatus, Status: 200, Body: "[]",
		Header: map[string]string{"X-RateLimit-Window-Sec": "2147483648"}})
	if _, _, err := r.listCertificates(); err != nil {
		t.Fatal(err)
	}
	if b, _ := r.c.Budget(EndpointCertificates); b.Window != MaxHeaderWindow {
		t.Fatalf("window %s, want the cap of %s", b.Window, MaxHeaderWindow)
	}
	if line := logLine(t, logs.String(), "clamp"); !strings.Contains(line, "X-RateLimit-Window-Sec") {
		t.Fatalf("clamp log %q does not name the header", line)
	}
}

// Header values that are not numbers are reported with a short prefix, however long.
func TestHugeHeaderValueIsQuotedShort(t *testing.T) {
	h := http.Header{}
	h.Set("X-RateLimit-Limit", strings.Repeat("x", 1<<20))
	h.Set("X-RateLimit-Remaining", "99999999999999999999999")
	info, problems := ParseRateLimit(h)
	if len(problems) != 1 || len(problems[0].Error()) > 120 || !strings.Contains(problems[0].Error(), `"xxxxxxxxxxxxxxxx"`) ||
		!strings.Contains(problems[0].Error(), "1048576 bytes") || !strings.Contains(problems[0].Error(), "X-RateLimit-Limit") {
		t.Fatalf("problems %v", problems)
	}
	// A number too large for an int is a number: it saturates rather than vanish.
	if info.Remaining <= 0 || info.Limit != Unknown {
		t.Fatalf("info %+v", info)
	}
}

// logLine returns the one line of logs that contains word, failing unless there is
// exactly one.
func logLine(t *testing.T, logs, word string) string {
	t.Helper()
	var found []string
	for _, l := range strings.Split(logs, "\n") {
		if strings.Contains(l, word) {
			found = append(found, l)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d log lines contain %q, want 1:\n%s", len(found), word, logs)
	}
	return found[0]
}

// A malformed header holding a secret is not quoted in the log, not even its prefix.
func TestHeaderHoldingASecretIsNotQuoted(t *testing.T) {
	var logs bytes.Buffer
	r := newRig(t, inventory(10, 0), func(c *Config) { c.Logger = log.NewLogfmtLogger(&logs) })
	pw := r.srv.Sim.Options().Password
	r.srv.Sim.Inject(certviewtest.Fault{Endpoint: "certificates", Page: 0, Kind: certviewtest.FaultStatus, Status: 200, Body: "[]",
		Header: map[string]string{"X-RateLimit-Limit": pw + strings.Repeat("!", 40)}})
	if _, _, err := r.listCertificates(); err != nil {
		t.Fatal(err)
	}
	line := logLine(t, logs.String(), "X-RateLimit-Limit")
	if strings.Contains(line, pw[:8]) || !strings.Contains(line, "not shown") {
		t.Fatalf("log line %q quotes a secret", line)
	}
}

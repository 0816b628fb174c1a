package certview

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/certview-exporter/certview_exporter/certview/certviewtest"
	"github.com/jonboulle/clockwork"
)

// A throttling answer is waited out for exactly its X-RateLimit-ToWait-Sec.
func TestThrottleWaitsToWaitSec(t *testing.T) {
	for _, status := range []int{409, 429, 503} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			r := newRig(t, inventory(10, 0), nil)
			r.srv.Sim.Inject(certviewtest.Fault{Endpoint: "certificates", Page: 0, Kind: certviewtest.FaultStatus, Status: status,
				Header: map[string]string{"X-RateLimit-ToWait-Sec": "7"}})
			done := make(chan error, 1)
			go func() {
				_, err := r.c.ListCertificates(context.Background(), func([]Certificate) error { return nil })
				done <- err
			}()
			ev := <-r.waitCh
			if ev.Reason != "throttled" || ev.Duration != 7*time.Second {
				t.Fatalf("wait %+v, want 7s throttled", ev)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := r.clock.BlockUntilContext(ctx, 1); err != nil {
				t.Fatal(err)
			}
			r.clock.Advance(7*time.Second - time.Millisecond)
			select {
			case err := <-done:
				t.Fatalf("the call went on before the wait was over (err %v)", err)
			default:
			}
			if got := r.srv.Sim.Requests("certificates"); got != 1 {
				t.Fatalf("%d calls before the wait ended, want 1", got)
			}
			r.clock.Advance(time.Millisecond)
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if got := r.srv.Sim.Requests("certificates"); got != 2 {
				t.Fatalf("%d calls, want 2", got)
			}
		})
	}
}

func TestThrottleFallsBackToRetryAfterThenBackoff(t *testing.T) {
	r := newRig(t, inventory(10, 0), nil)
	r.srv.Sim.Inject(certviewtest.Fault{Endpoint: "certificates", Page: 0, Kind: certviewtest.FaultStatus, Status: 429,
		Header: map[string]string{"Retry-After": "11"}})
	r.srv.Sim.Inject(certviewtest.Fault{Endpoint: "certificates", Page: 0, Kind: certviewtest.FaultStatus, Status: 429})
	if _, _, err := r.listCertificates(); err != nil {
		t.Fatal(err)
	}
	w := r.waitEvents()
	if len(w) != 2 || w[0].Duration != 11*time.Second {
		t.Fatalf("waits %+v, want Retry-After's 11s first", w)
	}
	// Second throttle without headers: backoff step 1 is base*2, jittered into [base, 2*base].
	if w[1].Duration < DefaultBackoffBase || w[1].Duration > 2*DefaultBackoffBase {
		t.Fatalf("backoff wait %s, want %s..%s", w[1].Duration, DefaultBackoffBase, 2*DefaultBackoffBase)
	}
}

func TestThrottleRetriesAreBounded(t *testing.T) {
	r := newRig(t, inventory(10, 0), func(c *Config) { c.MaxThrottleRetries = 2 })
	r.srv.Sim.Inject(certviewtest.Fault{Endpoint: "certificates", Page: 0, Kind: certviewtest.FaultStatus, Status: 429, Times: 10,
		Header: map[string]string{"X-RateLimit-ToWait-Sec": "1"}})
	_, _, err := r.listCertificates()
	var thr *ThrottledError
	if !errors.As(err, &thr) || thr.Attempts != 3 {
		t.Fatalf("err = %v, want ThrottledError after 3 attempts", err)
	}
}

// The simulator's own sliding window throttles a client whose budget is larger; the
// client waits ToWait-Sec and finishes.
func TestServerWindowThrottlesAndClientRecovers(t *testing.T) {
	opts := inventory(1000, 0)
	opts.RateLimit, opts.RateWindow = 3, time.Minute
	r := newRig(t, opts, func(c *Config) { c.RateLimit = RateLimit{Calls: 1000, Window: time.Minute} })
	// The first answer says the limit is 3: the client tightens and never draws a 429.
	_, certs, err := r.listCertificates()
	if err != nil || len(certs) != 1000 {
		t.Fatalf("%d records, err %v", len(certs), err)
	}
	if s := r.statuses(); slices.Contains(s, 429) {
		t.Fatalf("statuses %v: the client should have tightened to the header's limit", s)
	}
	if b, _ := r.c.Budget(EndpointCertificates); b.Limit != 3 {
		t.Fatalf("budget %+v, want the header's limit of 3", b)
	}
	var waited time.Duration
	for _, w := range r.waitEvents() {
		if w.Reason == "rate_limit" {
			waited += w.Duration
		}
	}
	// 6 calls at 3 per minute: the 4th waits for the window to open.
	if waited < time.Minute || waited > 2*time.Minute {
		t.Fatalf("rate-limit waits total %s, want about a minute", waited)
	}
}

func TestSharedBudgetFromRemainingHeader(t *testing.T) {
	clk := clockwork.NewFakeClockAt(epoch)
	l := newLimiter(clk, RateLimit{Calls: 300, Window: time.Hour, Concurrency: 2})
	// Other tools spent 298 of the 300: two calls remain in this window.
	l.update(RateLimitInfo{Limit: 300, WindowSec: 3600, Remaining: 2, ToWaitSec: Unknown, ConcurrencyLimit: Unknown, ConcurrencyRunning: Unknown})
	for i := 0; i < 2; i++ {
		rel, err := l.acquire(context.Background(), nil)
		if err != nil {
			t.Fatal(err)
		}
		rel()
	}
	var waited time.Duration
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := l.acquire(ctx, func(_ string, d time.Duration) { waited = d })
	if !errors.Is(err, context.Canceled) || waited != time.Hour {
		t.Fatalf("third call: err %v after a planned wait of %s; want a 1h wait, cancelled", err, waited)
	}
}

// A throttling answer that says no calls remain but gives ToWait-Sec is over after
// ToWait-Sec, not after a whole window.
func TestRemainingZeroWithToWaitIsNotAWindow(t *testing.T) {
	clk := clockwork.NewFakeClockAt(epoch)
	l := newLimiter(clk, RateLimit{Calls: 100000, Window: time.Hour, Concurrency: 2})
	l.update(RateLimitInfo{Limit: 100000, WindowSec: 3600, Remaining: 0, ToWaitSec: 1, ConcurrencyLimit: Unknown, ConcurrencyRunning: Unknown})
	clk.Advance(time.Second)
	var waited time.Duration
	rel, err := l.acquire(context.Background(), func(_ string, d time.Duration) { waited += d })
	if err != nil || waited != 0 {
		t.Fatalf("after the server's 1s: err %v, waited %s more", err, waited)
	}
	rel()
	if b := l.budget(); b.Used != 1 {
		t.Fatalf("budget %+v: the other tools' calls should have stopped counting", b)
	}
}

func TestRemainingZeroPausesForToWait(t *testing.T) {
	clk := clockwork.NewFakeClockAt(epoch)
	l := newLimiter(clk, RateLimit{Calls: 300, Window: time.Hour, Concurrency: 2})
	l.update(RateLimitInfo{Limit: 300, WindowSec: 3600, Remaining: 0, ToWaitSec: 90, ConcurrencyLimit: Unknown, ConcurrencyRunning: Unknown})
	var reason string
	var waited time.Duration
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, _ = l.acquire(ctx, func(r string, d time.Duration) { reason, waited = r, d })
	if reason != "throttled" || waited != 90*time.Second {
		t.Fatalf("planned wait %s (%s), want 90s throttled", waited, reason)
	}
}

func TestConcurrencyLimit(t *testing.T) {
	clk := clockwork.NewFakeClockAt(epoch)
	l := newLimiter(clk, RateLimit{Calls: 300, Window: time.Hour, Concurrency: 2})
	l.update(RateLimitInfo{Limit: Unknown, WindowSec: Unknown, Remaining: Unknown, ToWaitSec: Unknown, ConcurrencyLimit: 1, ConcurrencyRunning: 1})
	rel, err := l.acquire(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan struct{})
	go func() {
		rel2, err := l.acquire(context.Background(), nil)
		if err == nil {
			rel2()
		}
		close(got)
	}()
	select {
	case <-got:
		t.Fatal("a second call started while the header's concurrency limit of 1 was taken")
	default:
	}
	rel()
	<-got
	if b := l.budget(); b.Concurrency != 1 || b.Used != 2 {
		t.Fatalf("budget %+v", b)
	}
}

func TestParseRateLimitHeaders(t *testing.T) {
	h := http.Header{}
	h["x-ratelimit-limit"] = []string{"300"}
	h["X-RATELIMIT-WINDOW-SEC"] = []string{"3600"}
	h.Set("X-RateLimit-Remaining", "12")
	h["X-ConcurrencyLimit-Limit"] = []string{"2"}
	h.Set("X-Concurrency-Limit-Running", "1")
	h.Set("X-RateLimit-ToWait-Sec", "soon")
	info, problems := ParseRateLimit(h)
	want := RateLimitInfo{Limit: 300, WindowSec: 3600, Remaining: 12, ToWaitSec: Unknown, ConcurrencyLimit: 2, ConcurrencyRunning: 1}
	if info != want {
		t.Fatalf("info %+v, want %+v", info, want)
	}
	if len(problems) != 1 || problems[0].Error() != `header X-RateLimit-ToWait-Sec: "soon" is not a non-negative integer` {
		t.Fatalf("problems %v, want one naming X-RateLimit-ToWait-Sec", problems)
	}
	if info, _ := ParseRateLimit(http.Header{}); info != noRateLimit {
		t.Fatalf("no headers: %+v", info)
	}
}

func TestHeaderSpellingsFromTheSimulator(t *testing.T) {
	for _, style := range []string{"", "lower", "legacy"} {
		opts := inventory(5, 0)
		opts.HeaderStyle, opts.Concurrency, opts.RateLimit = style, 1, 250
		r := newRig(t, opts, nil)
		if _, _, err := r.listCertificates(); err != nil {
			t.Fatal(err)
		}
		rl := r.requests[len(r.requests)-1].RateLimit
		if rl.Limit != 250 || rl.WindowSec != 3600 || rl.Remaining != 249 || rl.ConcurrencyLimit != 1 || rl.ConcurrencyRunning != 1 {
			t.Fatalf("style %q: parsed %+v", style, rl)
		}
		if b, _ := r.c.Budget(EndpointCertificates); b.Concurrency != 1 || b.Limit != 250 || b.Remaining != 249 {
			t.Fatalf("style %q: budget %+v", style, b)
		}
	}
}

func TestRetryAfterDate(t *testing.T) {
	h := http.Header{}
	h.Set("Retry-After", epoch.Add(42*time.Second).Format(http.TimeFormat))
	if d, ok := retryAfter(h, epoch); !ok || d != 42*time.Second {
		t.Fatalf("Retry-After date: %s %v", d, ok)
	}
}

func TestBackoffIsBoundedAndJittered(t *testing.T) {
	for attempt := 0; attempt < 40; attempt++ {
		for _, rnd := range []float64{0, 0.5, 0.999} {
			d := backoff(attempt, time.Second, time.Minute, func() float64 { return rnd })
			if d > time.Minute || d < 500*time.Millisecond {
				t.Fatalf("attempt %d rnd %v: %s out of bounds", attempt, rnd, d)
			}
		}
	}
	if a, b := backoff(3, time.Second, time.Hour, func() float64 { return 0 }), backoff(3, time.Second, time.Hour, func() float64 { return 0.999 }); a == b {
		t.Fatal("no jitter")
	}
}

// NoRateLimit sets no client-side budget: calls start without waiting until the server
// gives a limit, which then applies.
func TestNoRateLimitKeepsToTheServersLimit(t *testing.T) {
	clk := clockwork.NewFakeClockAt(epoch)
	l := newLimiter(clk, RateLimit{Calls: NoRateLimit, Window: time.Hour, Concurrency: 2})
	for i := 0; i < 1000; i++ {
		rel, err := l.acquire(context.Background(), func(reason string, d time.Duration) { t.Fatalf("call %d waited %s (%s)", i, d, reason) })
		if err != nil {
			t.Fatal(err)
		}
		rel()
	}
	l.update(RateLimitInfo{Limit: 1000, WindowSec: 3600, Remaining: 0, ToWaitSec: Unknown, ConcurrencyLimit: Unknown, ConcurrencyRunning: Unknown})
	var reason string
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, _ = l.acquire(ctx, func(r string, _ time.Duration) { reason = r })
	if reason != "rate_limit" {
		t.Fatalf("after the server's limit of 1000 was spent: wait reason %q, want rate_limit", reason)
	}
	if err := (&Config{BaseURL: "https://gateway.example", Credentials: Credentials{Username: "u", Password: "p"},
		RateLimit: RateLimit{Calls: NoRateLimit}, MaxRetries: NoRetries}).Validate(); err != nil {
		t.Fatalf("NoRateLimit and NoRetries refused: %v", err)
	}
}

// A refusal for a spent budget teaches the limiter how far the API's window lags its
// own: the calls it starts from then on leave its window that much later, so that the
// refusal does not come back every window.
func TestThrottleTeachesTheWindowLag(t *testing.T) {
	clock := clockwork.NewFakeClockAt(epoch)
	l := newLimiter(clock, RateLimit{Calls: 2, Window: 6 * time.Second})
	for i := 0; i < 2; i++ {
		done, err := l.acquire(context.Background(), nil)
		if err != nil {
			t.Fatal(err)
		}
		done()
	}
	clock.Advance(6 * time.Second) // free in the client's view; the API saw the calls a little later
	l.throttled(400 * time.Millisecond)
	if b := l.budget(); b.Used != 2 || len(b.Freed) != 2 || !b.Freed[0].Equal(epoch.Add(6*time.Second+400*time.Millisecond)) {
		t.Fatalf("after the refusal: used %d, freed %v; want the calls counted 400ms longer", b.Used, b.Freed)
	}
	// The lag is capped: a long wait (another tool spent the budget) does not slow the
	// client for good.
	l.throttled(time.Hour)
	if l.lag != 600*time.Millisecond {
		t.Fatalf("lag %s, want a tenth of the window", l.lag)
	}
}

package certview

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"
)

// Unknown marks a rate-limit header that was absent or unreadable.
const Unknown = -1

// RateLimitInfo holds the rate-limit headers of one response. A field is Unknown when
// its header was missing or malformed.
type RateLimitInfo struct {
	Limit              int
	WindowSec          int
	Remaining          int
	ToWaitSec          int
	ConcurrencyLimit   int
	ConcurrencyRunning int
}

// rateLimitHeaders lists each field's header names, in order of preference. Matching
// is case-insensitive.
var rateLimitHeaders = []struct {
	names []string
	field func(*RateLimitInfo) *int
}{
	{[]string{"X-RateLimit-Limit"}, func(r *RateLimitInfo) *int { return &r.Limit }},
	{[]string{"X-RateLimit-Window-Sec"}, func(r *RateLimitInfo) *int { return &r.WindowSec }},
	{[]string{"X-RateLimit-Remaining"}, func(r *RateLimitInfo) *int { return &r.Remaining }},
	{[]string{"X-RateLimit-ToWait-Sec"}, func(r *RateLimitInfo) *int { return &r.ToWaitSec }},
	{[]string{"X-Concurrency-Limit-Limit", "X-ConcurrencyLimit-Limit"}, func(r *RateLimitInfo) *int { return &r.ConcurrencyLimit }},
	{[]string{"X-Concurrency-Limit-Running", "X-ConcurrencyLimit-Running"}, func(r *RateLimitInfo) *int { return &r.ConcurrencyRunning }},
}

// ParseRateLimit reads the rate-limit headers. A malformed value is reported as an
// error naming the header and is otherwise treated as missing.
func ParseRateLimit(h http.Header) (RateLimitInfo, []error) {
	info := RateLimitInfo{Unknown, Unknown, Unknown, Unknown, Unknown, Unknown}
	var problems []error
	for _, hdr := range rateLimitHeaders {
		for _, name := range hdr.names {
			raw, ok := headerValue(h, name)
			if !ok {
				continue
			}
			v, err := strconv.Atoi(strings.TrimSpace(raw))
			if err != nil || v < 0 {
				problems = append(problems, fmt.Errorf("header %s: %s is not a non-negative integer", name, quoteShort(raw)))
				break
			}
			*hdr.field(&info) = v
			break
		}
	}
	return info, problems
}

// quoteShort quotes a short header value; a long one, which may be anything, is only
// measured.
func quoteShort(v string) string {
	if len(v) <= 16 {
		return strconv.Quote(v)
	}
	return fmt.Sprintf("a %d-byte value", len(v))
}

// headerValue finds a header by name, ignoring case even where the map was built by hand
// and not canonicalised.
func headerValue(h http.Header, name string) (string, bool) {
	if v, ok := h[http.CanonicalHeaderKey(name)]; ok && len(v) > 0 {
		return v[0], true
	}
	for k, v := range h {
		if strings.EqualFold(k, name) && len(v) > 0 {
			return v[0], true
		}
	}
	return "", false
}

// retryAfter reads Retry-After as seconds or an HTTP date.
func retryAfter(h http.Header, now time.Time) (time.Duration, bool) {
	raw, ok := headerValue(h, "Retry-After")
	if !ok {
		return 0, false
	}
	raw = strings.TrimSpace(raw)
	if s, err := strconv.Atoi(raw); err == nil && s >= 0 {
		return time.Duration(s) * time.Second, true
	}
	if t, err := http.ParseTime(raw); err == nil {
		d := t.Sub(now)
		if d < 0 {
			d = 0
		}
		return d, true
	}
	return 0, false
}

// limiter keeps one API's budget: at most limit calls started in any window, at most
// conc running at once, and no call before pauseUntil (set by a throttling answer).
type limiter struct {
	clock clockwork.Clock

	mu      sync.Mutex
	limit   int
	window  time.Duration
	conc    int
	running int
	starts  []time.Time // start times within the window, oldest first
	// Calls the server counted that this client did not make (other tools on the
	// subscription), from X-RateLimit-Remaining; they stop counting at externalUntil.
	external      int
	externalUntil time.Time
	pauseUntil    time.Time
	released      chan struct{} // closed when a running call ends
	remaining     int           // last X-RateLimit-Remaining seen, or Unknown
}

func newLimiter(clock clockwork.Clock, rl RateLimit) *limiter {
	return &limiter{
		clock:     clock,
		limit:     rl.Calls,
		window:    rl.Window,
		conc:      rl.Concurrency,
		released:  make(chan struct{}),
		remaining: Unknown,
	}
}

// acquire blocks until a call may start, reporting each wait through onWait, and
// returns the function that ends the call.
func (l *limiter) acquire(ctx context.Context, onWait func(reason string, d time.Duration)) (func(), error) {
	for {
		l.mu.Lock()
		now := l.clock.Now()
		l.prune(now)
		var wait time.Duration
		var reason string
		var ch <-chan struct{}
		switch {
		case now.Before(l.pauseUntil):
			wait, reason = l.pauseUntil.Sub(now), "throttled"
		case l.limit > 0 && l.used(now) >= l.limit:
			wait, reason = l.nextSlot(now).Sub(now), "rate_limit"
		case l.conc > 0 && l.running >= l.conc:
			ch, reason = l.released, "concurrency"
		default:
			l.starts = append(l.starts, now)
			l.running++
			if l.remaining > 0 {
				l.remaining--
			}
			l.mu.Unlock()
			var once sync.Once
			return func() { once.Do(l.release) }, nil
		}
		l.mu.Unlock()
		if onWait != nil && reason != "concurrency" {
			onWait(reason, wait)
		}
		if ch != nil {
			select {
			case <-ch:
				continue
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		if err := sleep(ctx, l.clock, wait); err != nil {
			return nil, err
		}
	}
}

func (l *limiter) release() {
	l.mu.Lock()
	l.running--
	close(l.released)
	l.released = make(chan struct{})
	l.mu.Unlock()
}

// used is the calls counted against the window at now.
func (l *limiter) used(now time.Time) int {
	n := len(l.starts)
	if now.Before(l.externalUntil) {
		n += l.external
	}
	return n
}

// nextSlot is when the budget next frees a call: the oldest call leaving the window, or
// the external calls ceasing to count, whichever comes first.
func (l *limiter) nextSlot(now time.Time) time.Time {
	next := time.Time{}
	if len(l.starts) > 0 {
		next = l.starts[0].Add(l.window)
	}
	if now.Before(l.externalUntil) && (next.IsZero() || l.externalUntil.Before(next)) {
		next = l.externalUntil
	}
	if next.IsZero() {
		next = now.Add(l.window)
	}
	return next
}

func (l *limiter) prune(now time.Time) {
	cut := 0
	for cut < len(l.starts) && !l.starts[cut].Add(l.window).After(now) {
		cut++
	}
	if cut > 0 {
		l.starts = append(l.starts[:0], l.starts[cut:]...)
	}
}

// update tightens the budget to what the response headers say. It never loosens the
// configured budget, which may be a share of the subscription's.
func (l *limiter) update(info RateLimitInfo) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if info.Limit > 0 && (l.limit <= 0 || info.Limit < l.limit) {
		l.limit = info.Limit
	}
	if info.WindowSec > 0 {
		if w := time.Duration(info.WindowSec) * time.Second; w > l.window {
			l.window = w
		}
	}
	if info.ConcurrencyLimit > 0 && (l.conc <= 0 || info.ConcurrencyLimit < l.conc) {
		l.conc = info.ConcurrencyLimit
	}
	if info.Remaining >= 0 {
		l.remaining = info.Remaining
		now := l.clock.Now()
		l.prune(now)
		// Other clients of the subscription spend the same budget: the calls the server
		// counted beyond this client's own count until the server's wait is over (when
		// it says), else for a whole window.
		l.external = 0
		if extra := l.limit - info.Remaining - len(l.starts); l.limit > 0 && extra > 0 {
			l.external = extra
			l.externalUntil = now.Add(l.window)
			if info.ToWaitSec >= 0 {
				l.externalUntil = now.Add(time.Duration(info.ToWaitSec) * time.Second)
			}
		}
		if info.Remaining == 0 && info.ToWaitSec > 0 {
			l.pauseLocked(now, time.Duration(info.ToWaitSec)*time.Second)
		}
	}
}

// pause stops new calls for d, after a throttling answer.
func (l *limiter) pause(d time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.pauseLocked(l.clock.Now(), d)
}

func (l *limiter) pauseLocked(now time.Time, d time.Duration) {
	if until := now.Add(d); until.After(l.pauseUntil) {
		l.pauseUntil = until
	}
}

// Budget is a view of one API's limiter.
type Budget struct {
	Limit       int
	Window      time.Duration
	Concurrency int
	Used        int // calls started within the current window
	Remaining   int // the server's last X-RateLimit-Remaining, or Unknown
}

func (l *limiter) budget() Budget {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.clock.Now()
	l.prune(now)
	return Budget{Limit: l.limit, Window: l.window, Concurrency: l.conc, Used: l.used(now), Remaining: l.remaining}
}

// sleep waits d on the clock, or until ctx ends.
func sleep(ctx context.Context, clock clockwork.Clock, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := clock.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.Chan():
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// backoff returns the wait before retry number attempt (0-based): exponential from base,
// capped at max, with equal jitter (between half and all of the step).
func backoff(attempt int, base, max time.Duration, rnd func() float64) time.Duration {
	step := float64(base) * math.Pow(2, float64(attempt))
	if step > float64(max) || math.IsInf(step, 0) {
		step = float64(max)
	}
	return time.Duration(step/2 + rnd()*step/2)
}

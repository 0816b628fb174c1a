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

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/jonboulle/clockwork"
)

// Bounds on the durations response headers can ask for. A hostile or broken gateway
// must not pause the client for decades, nor make its arithmetic overflow.
const (
	// MaxHeaderWait caps a wait taken from X-RateLimit-ToWait-Sec or Retry-After: a day,
	// the window of the Express tier (50 calls a day). Within it, such a wait is capped
	// at the limiter's window (the configured one, or the server's if wider), but never
	// at less than DefaultRateLimitWindow (see waitCap).
	MaxHeaderWait = 24 * time.Hour
	// MaxHeaderWindow caps the window X-RateLimit-Window-Sec can widen a budget to.
	MaxHeaderWindow = 24 * time.Hour
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
// error naming the header (a *HeaderError) and is otherwise treated as missing. A
// number too large for an int saturates at the largest int: it is read, and bounded
// where it is used.
func ParseRateLimit(h http.Header) (RateLimitInfo, []error) {
	info := RateLimitInfo{Unknown, Unknown, Unknown, Unknown, Unknown, Unknown}
	var problems []error
	for _, hdr := range rateLimitHeaders {
		for _, name := range hdr.names {
			raw, ok := headerValue(h, name)
			if !ok {
				continue
			}
			v, ok := parseCount(raw)
			if !ok {
				problems = append(problems, &HeaderError{Header: name, Value: quoteShort(raw), Reason: "is not a non-negative integer"})
				break
			}
			*hdr.field(&info) = v
			break
		}
	}
	return info, problems
}

// HeaderError is a response header whose value the client could not use.
type HeaderError struct {
	Header string
	Value  string // the value quoted, or for a long one its quoted prefix and length
	Reason string
}

func (e *HeaderError) Error() string {
	return fmt.Sprintf("header %s: %s %s", e.Header, e.Value, e.Reason)
}

// quoteShort quotes a short header value whole, and a long one, which may be anything,
// by its first 16 bytes and its length.
func quoteShort(v string) string {
	const whole, prefix = 32, 16
	if len(v) <= whole {
		return strconv.Quote(v)
	}
	return fmt.Sprintf("%s... (%d bytes)", strconv.Quote(strings.ToValidUTF8(v[:prefix], "")), len(v))
}

// parseCount reads a header's non-negative decimal integer. Digits beyond what an int
// holds saturate at math.MaxInt; anything but optional spaces and digits is refused.
func parseCount(raw string) (int, bool) {
	s := strings.TrimSpace(raw)
	if s == "" {
		return 0, false
	}
	v := 0
	for i := 0; i < len(s); i++ {
		d := s[i]
		if d < '0' || d > '9' {
			return 0, false
		}
		if v > (math.MaxInt-int(d-'0'))/10 {
			v = math.MaxInt
			continue
		}
		v = v*10 + int(d-'0')
	}
	return v, true
}

// secondsDuration converts a count of seconds into a duration no longer than max (and
// never negative), without overflowing. clamped says whether it had to cut.
func secondsDuration(sec int, max time.Duration) (d time.Duration, clamped bool) {
	switch {
	case sec < 0:
		return 0, true
	case int64(sec) > int64(max/time.Second):
		return max, true
	}
	return time.Duration(sec) * time.Second, false
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

// retryAfter reads Retry-After as seconds or an HTTP date. The wait is never negative;
// a huge one saturates at the largest duration (the caller bounds it).
func retryAfter(h http.Header, now time.Time) (time.Duration, bool) {
	raw, ok := headerValue(h, "Retry-After")
	if !ok {
		return 0, false
	}
	if s, ok := parseCount(raw); ok {
		d, _ := secondsDuration(s, time.Duration(math.MaxInt64))
		return d, true
	}
	if t, err := http.ParseTime(strings.TrimSpace(raw)); err == nil {
		d := t.Sub(now) // time.Time.Sub saturates instead of overflowing
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
	clock    clockwork.Clock
	logger   log.Logger
	endpoint string

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
	lag           time.Duration // how far the API's window lags this client's (see throttled)
	released      chan struct{} // closed when a running call ends
	remaining     int           // last X-RateLimit-Remaining seen, or Unknown
}

func newLimiter(clock clockwork.Clock, rl RateLimit) *limiter {
	return &limiter{
		clock:     clock,
		logger:    log.NewNopLogger(),
		limit:     max(rl.Calls, 0), // 0: no budget until a header gives one
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
		next = l.starts[0].Add(l.window + l.lag)
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
	for cut < len(l.starts) && !l.starts[cut].Add(l.window+l.lag).After(now) {
		cut++
	}
	if cut > 0 {
		l.starts = append(l.starts[:0], l.starts[cut:]...)
	}
}

// waitCap is the longest wait a header may ask of this API: the limiter's window (the
// configured one, or the server's if wider), at least DefaultRateLimitWindow (the
// Standard tier's hour, whatever share of it the configuration takes), at most
// MaxHeaderWait.
func (l *limiter) waitCap() time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.waitCapLocked()
}

func (l *limiter) waitCapLocked() time.Duration {
	return min(max(l.window, DefaultRateLimitWindow), MaxHeaderWait)
}

// clamp bounds the durations in info: X-RateLimit-Window-Sec to MaxHeaderWindow, then
// X-RateLimit-ToWait-Sec to the wait cap that window gives. Each value it cuts is
// logged, naming the header.
func (l *limiter) clamp(info RateLimitInfo, page int) RateLimitInfo {
	if info.WindowSec > 0 {
		if w, cut := secondsDuration(info.WindowSec, MaxHeaderWindow); cut {
			l.logClamp(page, "X-RateLimit-Window-Sec", strconv.Itoa(info.WindowSec), w)
			info.WindowSec = int(w / time.Second)
		}
	}
	if info.ToWaitSec > 0 {
		l.mu.Lock()
		wcap := l.waitCapLocked()
		if info.WindowSec > 0 {
			wcap = min(max(wcap, time.Duration(info.WindowSec)*time.Second), MaxHeaderWait)
		}
		l.mu.Unlock()
		if d, cut := secondsDuration(info.ToWaitSec, wcap); cut {
			l.logClamp(page, "X-RateLimit-ToWait-Sec", strconv.Itoa(info.ToWaitSec), d)
			info.ToWaitSec = int(d / time.Second)
		}
	}
	return info
}

// clampWait bounds a wait taken from header to the wait cap, logging a cut.
func (l *limiter) clampWait(page int, header string, d time.Duration) time.Duration {
	wcap := l.waitCap()
	switch {
	case d < 0:
		return 0
	case d > wcap:
		l.logClamp(page, header, d.String(), wcap)
		return wcap
	}
	return d
}

func (l *limiter) logClamp(page int, header, value string, to time.Duration) {
	level.Warn(l.logger).Log("msg", "clamping an out-of-range rate-limit header", "endpoint", l.endpoint, "page", page,
		"header", header, "value", quoteShort(value), "clamped_to", to)
}

// update tightens the budget to what the response headers say. It never loosens the
// configured budget, which may be a share of the subscription's. Durations are bounded
// here too (silently: clamp has logged them), so no header can overflow the arithmetic.
func (l *limiter) update(info RateLimitInfo) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if info.Limit > 0 && (l.limit <= 0 || info.Limit < l.limit) {
		l.limit = info.Limit
	}
	if info.WindowSec > 0 {
		if w, _ := secondsDuration(info.WindowSec, MaxHeaderWindow); w > l.window {
			l.window = w
		}
	}
	toWait := time.Duration(Unknown)
	if info.ToWaitSec >= 0 {
		toWait, _ = secondsDuration(info.ToWaitSec, l.waitCapLocked())
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
		// Remaining is below limit before anything is subtracted, so this cannot overflow.
		if l.limit > 0 && info.Remaining < l.limit {
			if extra := l.limit - info.Remaining - len(l.starts); extra > 0 {
				l.external = extra
				l.externalUntil = now.Add(l.window)
				if toWait >= 0 {
					l.externalUntil = now.Add(toWait)
				}
			}
		}
		if info.Remaining == 0 && toWait > 0 {
			l.pauseLocked(now, toWait)
		}
	}
}

// throttled pauses new calls for d after the API refused one for its spent budget, and
// learns that the API's window lags this client's: the API counts a call when it
// arrives, after the client started it, so a window the client saw free was not yet
// free there. From then on a call leaves the client's window that much later (at most a
// tenth of the window, and 30 seconds), so that the refusal does not come back every
// window.
func (l *limiter) throttled(d time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.pauseLocked(l.clock.Now(), d)
	if lag := min(d, l.window/10, 30*time.Second); lag > l.lag {
		l.lag = lag
	}
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
	// Freed are when the calls this client started within the window leave it, oldest
	// first: each frees a call then.
	Freed []time.Time
}

func (l *limiter) budget() Budget {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.clock.Now()
	l.prune(now)
	freed := make([]time.Time, len(l.starts))
	for i, t := range l.starts {
		freed[i] = t.Add(l.window + l.lag)
	}
	return Budget{Limit: l.limit, Window: l.window, Concurrency: l.conc, Used: l.used(now), Remaining: l.remaining, Freed: freed}
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

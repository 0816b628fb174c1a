package poll

import (
	"fmt"
	"time"

	"github.com/certview-exporter/certview_exporter/certview"
	"github.com/certview-exporter/certview_exporter/collector/snapshot"
	"github.com/go-kit/log/level"
)

// CallsPerPoll is what listing n records costs: floor(n/pageSize)+1 calls.
func CallsPerPoll(n, pageSize int) int { return n/pageSize + 1 }

// MinInterval is the shortest poll interval one API's budget sustains for calls per poll.
func MinInterval(calls int, rl certview.RateLimit) time.Duration {
	if rl.Calls <= 0 {
		return 0
	}
	return time.Duration(float64(rl.Window) * float64(calls) / float64(rl.Calls))
}

// checkBudget warns when the rate limit cannot sustain the polls at the size just
// seen. Each API has its own budget, so each is checked. A window holds window/interval
// polls, one in full_interval/interval of them full: calls of the last full and last
// incremental polls as measured (a full one estimated from the counts until measured;
// an incremental one at 1 call until measured).
func (s *Loop) checkBudget(certs, instances int) {
	rl := s.opts.RateLimit
	if rl.Calls <= 0 {
		return
	}
	s.mu.Lock()
	incremental := s.offReason == ""
	need := map[string][2]float64{}
	for endpoint, n := range map[string]int{certview.EndpointCertificates: certs, certview.EndpointInstances: instances} {
		full := s.fullCalls[endpoint]
		if full == 0 {
			full = CallsPerPoll(n, s.opts.PageSize)
		}
		inc := max(s.incrementalCalls[endpoint], 1)
		need[endpoint] = [2]float64{float64(full), float64(inc)}
	}
	s.mu.Unlock()
	for _, endpoint := range []string{certview.EndpointCertificates, certview.EndpointInstances} {
		full, inc := need[endpoint][0], need[endpoint][1]
		perWindow := CallsPerWindow(full, inc, s.opts.Interval, s.opts.FullInterval, rl.Window, incremental)
		if perWindow <= float64(rl.Calls) {
			continue
		}
		kv := []any{"msg", "the rate limit cannot sustain the polls: they will stretch into rate-limit waits",
			"endpoint", endpoint, "calls_per_window", int(perWindow + 0.5), "calls_per_full_poll", int(full),
			"rate_limit", fmt.Sprintf("%d per %s", rl.Calls, rl.Window), "interval", s.opts.Interval}
		if incremental {
			kv = append(kv, "calls_per_incremental_poll", int(inc), "full_interval", s.opts.FullInterval)
		} else {
			kv = append(kv, "min_interval", MinInterval(int(full), rl).Round(time.Second))
		}
		level.Warn(s.opts.Logger).Log(kv...)
	}
}

// CallsPerWindow is what polls every interval cost in one rate-limit window: all full,
// or incremental with a full listing every fullInterval, spread over it.
func CallsPerWindow(full, incremental float64, interval, fullInterval, window time.Duration, incrementalOn bool) float64 {
	polls := float64(window) / float64(interval)
	if !incrementalOn || fullInterval <= interval {
		return polls * full
	}
	fullShare := float64(interval) / float64(fullInterval)
	return polls * (fullShare*full + (1-fullShare)*incremental)
}

// budgeter is what the client tells of an API's budget once its headers have tightened
// it; the loop falls back on the configured rate limit.
type budgeter interface {
	Budget(endpoint string) (certview.Budget, bool)
}

// rateOf is an API's budget: calls per window (calls 0: no limit).
func (s *Loop) rateOf(endpoint string) (calls int, window time.Duration) {
	calls, window = s.opts.RateLimit.Calls, s.opts.RateLimit.Window
	if b, ok := s.client.(budgeter); ok {
		if got, ok := b.Budget(endpoint); ok && got.Limit > 0 && got.Window > 0 {
			calls, window = got.Limit, got.Window
		}
	}
	return calls, window
}

// sliceCaps is each API's share of one poll for a full listing that runs beside the
// incremental polls: the calls its budget allows in one interval, less a reserve for the
// incremental polls (twice the calls of the last one, at least 2), and at least one range.
// An API without a rate limit has no cap (0).
func (s *Loop) sliceCaps() map[string]int {
	caps := map[string]int{}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ep := range endpoints {
		calls, window := s.rateOf(ep)
		if calls <= 0 || window <= 0 {
			continue
		}
		perInterval := int(float64(calls) * float64(s.opts.Interval) / float64(window))
		reserve := max(2, 2*s.incrementalCalls[ep])
		caps[ep] = max(perInterval-reserve, 1)
	}
	return caps
}

// fitsOneShare says whether a full listing of prev's size fits in one poll's share of
// the budget, so that it can run alone, as the incremental polls' place.
func (s *Loop) fitsOneShare(prev *snapshot.Snapshot) bool {
	caps := s.sliceCaps()
	for ep, n := range map[string]int{certview.EndpointCertificates: len(prev.Certificates), certview.EndpointInstances: len(prev.Instances)} {
		if c := caps[ep]; c > 0 && rangedCalls(n, s.opts.PageSize) > c {
			return false
		}
	}
	return true
}

// rangedCalls is what listing n records by id ranges costs, about: the pages, one short
// page per range, and the probe above the last.
func rangedCalls(n, pageSize int) int { return n/pageSize + n/(rangePages*pageSize) + 2 }

// pagesPerRange is how many pages the ranges of a full listing take: rangePages, or
// fewer when poll.timeout or a poll's share of the budget fits fewer, so that a range
// can end within one poll (a range cut short is listed again).
func (s *Loop) pagesPerRange() int {
	pages := rangePages
	for _, ep := range endpoints {
		calls, window := s.rateOf(ep)
		if calls <= 0 || window <= 0 {
			continue
		}
		if s.opts.Timeout > 0 {
			pages = min(pages, int(float64(calls)*float64(s.opts.Timeout)/float64(window))/2)
		}
		if s.opts.FullInterval > 0 {
			pages = min(pages, int(float64(calls)*float64(s.opts.Interval)/float64(window))/2)
		}
	}
	return max(pages, 1)
}

// listingTime is how long calls take at an API's rate: calls per window, the first
// window's at once. 0 when the API has no limit.
func (s *Loop) listingTime(endpoint string, calls int) time.Duration {
	limit, window := s.rateOf(endpoint)
	if limit <= 0 || calls <= limit {
		return 0
	}
	return time.Duration(float64(window) * float64(calls-limit) / float64(limit))
}

// logListingStart says how long the full listing will take at the configured rate, when
// its size is known, and whether poll.timeout leaves it room.
func (s *Loop) logListingStart(f *fullListing) {
	kv := []any{"msg", "full listing started", "ranged", f.ranged}
	var longest time.Duration
	known := true
	for _, ep := range endpoints {
		expected := f.expectedCalls(ep, s.opts.PageSize)
		limit, window := s.rateOf(ep)
		kv = append(kv, ep+"_rate_limit", fmt.Sprintf("%d per %s", limit, window))
		if expected == 0 {
			known = false
			continue
		}
		t := s.listingTime(ep, expected)
		longest = max(longest, t)
		kv = append(kv, ep+"_expected_calls", expected, ep+"_expected_time", t.Round(time.Second))
	}
	if !known {
		kv = append(kv, "size", "unknown until the listing ends (the API has no count); each finished id range is kept")
	}
	level.Info(s.opts.Logger).Log(kv...)
	if known && s.opts.Timeout > 0 && longest > s.opts.Timeout {
		level.Warn(s.opts.Logger).Log("msg", "poll.timeout is shorter than the full listing at the rate limit; the listing goes on from its checkpoint at each poll",
			"timeout", s.opts.Timeout, "expected_time", longest.Round(time.Second))
	}
}

// logListingProgress logs how far the full listing is.
func (s *Loop) logListingProgress(f *fullListing, msg string) {
	kv := []any{"msg", msg, "started", f.started.UTC().Format(time.RFC3339)}
	stats := f.stats()
	for _, ep := range endpoints {
		st := stats[ep]
		kv = append(kv, ep+"_calls", st.Pages, ep+"_records", st.Records)
		if e := f.expectedCalls(ep, s.opts.PageSize); e > 0 {
			kv = append(kv, ep+"_expected_calls", e)
		}
	}
	level.Info(s.opts.Logger).Log(kv...)
}

// fitsBefore says whether calls more calls to endpoint's API fit before deadline at its
// rate: those its window has left now, those that its calls in the window free before the
// deadline, and a window's worth for each whole window after that.
func (s *Loop) fitsBefore(endpoint string, calls int, deadline time.Time) bool {
	limit, window := s.rateOf(endpoint)
	if limit <= 0 || window <= 0 {
		return true
	}
	now := s.opts.Clock.Now()
	if !deadline.After(now) {
		return false
	}
	possible := limit
	if b, ok := s.client.(budgeter); ok {
		if got, ok := b.Budget(endpoint); ok {
			possible = max(got.Limit-got.Used, 0)
			for _, t := range got.Freed {
				if !t.After(deadline) {
					possible++
				}
			}
		}
	}
	if beyond := deadline.Sub(now) - window; beyond > 0 {
		possible += int(float64(limit) * float64(beyond) / float64(window))
	}
	return possible >= calls
}

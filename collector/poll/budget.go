package poll

import (
	"fmt"
	"time"

	"github.com/certview-exporter/certview_exporter/certview"
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

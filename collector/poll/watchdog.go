package poll

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/certview-exporter/certview_exporter/certview"
	"github.com/jonboulle/clockwork"
)

// A poll has no fixed deadline: on a small budget a full listing takes hours, moving at
// the rate limit's pace. What fails a poll is a stall: no answer from the API and no
// announced wait for Options.StallTimeout. The client's hooks feed an Activity; a poll's
// watchdog reads it on the loop's clock. poll.timeout, when set, still caps a poll.

// DefaultStallTimeout is how long a poll may go without progress.
const DefaultStallTimeout = 10 * time.Minute

// Activity is what the API client did last, for the stall watchdog. Give its Hooks to
// the client (certview.JoinHooks adds them to others) and the Activity to the loop.
type Activity struct {
	clock clockwork.Clock

	mu         sync.Mutex
	last       time.Time // the last answer, page or announced wait
	quietUntil time.Time // the end of the longest wait the client announced
}

// NewActivity makes an Activity on clock.
func NewActivity(clock clockwork.Clock) *Activity {
	if clock == nil {
		clock = clockwork.NewRealClock()
	}
	return &Activity{clock: clock, last: clock.Now()}
}

// Hooks are the client hooks that feed the Activity: every answer is progress, and a
// wait the client announces (rate limit, throttling, retry backoff) is no stall while it
// lasts.
func (a *Activity) Hooks() certview.Hooks {
	return certview.Hooks{
		Request: func(certview.RequestEvent) { a.touch() },
		Wait: func(e certview.WaitEvent) {
			a.mu.Lock()
			now := a.clock.Now()
			a.last = now
			if end := now.Add(e.Duration); end.After(a.quietUntil) {
				a.quietUntil = end
			}
			a.mu.Unlock()
		},
	}
}

// touch notes progress now.
func (a *Activity) touch() {
	a.mu.Lock()
	a.last = a.clock.Now()
	a.mu.Unlock()
}

// deadline is when the poll counts as stalled, idle for stall after its last progress
// or after the end of the wait it is in.
func (a *Activity) deadline(stall time.Duration) time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	from := a.last
	if a.quietUntil.After(from) {
		from = a.quietUntil
	}
	return from.Add(stall)
}

// StallError fails a poll that made no progress for Idle.
type StallError struct{ Idle time.Duration }

func (e *StallError) Error() string {
	return fmt.Sprintf("the poll made no progress for %s (poll.stall_timeout): no answer from the API and no rate-limit wait", e.Idle)
}

// TimeoutError fails a poll that ran past poll.timeout.
type TimeoutError struct{ Limit time.Duration }

func (e *TimeoutError) Error() string {
	return fmt.Sprintf("the poll ran past poll.timeout (%s); a full listing goes on from its checkpoint at the next poll", e.Limit)
}

// watch cancels a poll's context, with a StallError or TimeoutError as the cause, when
// it stalls or runs past the timeout; both are timed on the loop's clock. The returned
// func stops it.
func (s *Loop) watch(ctx context.Context, cancel context.CancelCauseFunc) func() {
	stop := make(chan struct{})
	done := make(chan struct{})
	s.activity.touch()
	go func() {
		defer close(done)
		stall := s.opts.Clock.NewTimer(s.opts.StallTimeout)
		defer stall.Stop()
		var capped <-chan time.Time
		if s.opts.Timeout > 0 {
			t := s.opts.Clock.NewTimer(s.opts.Timeout)
			defer t.Stop()
			capped = t.Chan()
		}
		for {
			select {
			case <-stop:
				return
			case <-ctx.Done():
				return
			case <-capped:
				cancel(&TimeoutError{Limit: s.opts.Timeout})
				return
			case <-stall.Chan():
				now := s.opts.Clock.Now()
				if dl := s.activity.deadline(s.opts.StallTimeout); now.Before(dl) {
					stall.Reset(dl.Sub(now))
					continue
				}
				cancel(&StallError{Idle: s.opts.StallTimeout})
				return
			}
		}
	}()
	return func() { close(stop); <-done }
}

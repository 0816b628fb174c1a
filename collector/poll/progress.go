package poll

import (
	"context"
	"time"

	"github.com/certview-exporter/certview_exporter/collector/telemetry"
	"github.com/go-kit/log/level"
)

// logProgress logs the running poll's counters every ProgressInterval.
func (s *Loop) logProgress(ctx context.Context, start time.Time, before telemetry.Progress) func() {
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := s.opts.Clock.NewTicker(s.opts.ProgressInterval)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-ctx.Done():
				return
			case <-tick.Chan():
				p := s.opts.Telemetry.Progress().Since(before)
				level.Info(s.opts.Logger).Log("msg", "poll in progress", "pages", p.Pages, "records", p.Records,
					"rate_limit_waits", p.Waits, "waited", p.Waited, "elapsed", s.opts.Clock.Since(start).Round(time.Second))
			}
		}
	}()
	return func() { close(stop); <-done }
}

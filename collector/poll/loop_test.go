package poll

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/certview-exporter/certview_exporter/certview"
	"github.com/certview-exporter/certview_exporter/certview/certviewtest"
)

func TestFirstPollAtStartThenEveryInterval(t *testing.T) {
	r := newRig(t, certviewtest.Inventory{Seed: 3, Certificates: 250, Instances: 500}, nil)
	if r.loop.Ready() || r.loop.Snapshot() != nil {
		t.Fatal("ready before any poll")
	}
	r.start()
	p := r.nextPoll()
	if p.err != nil || len(p.snap.Certificates) != 250 || len(p.snap.Instances) != 500 {
		t.Fatalf("first poll: %v", p.err)
	}
	if !r.loop.Ready() || r.loop.Snapshot() != p.snap || !r.loop.Health().Up {
		t.Fatal("the first snapshot was not swapped in")
	}
	if got := r.srv.Sim.Requests("certificates"); got != 2 {
		t.Fatalf("%d certificate calls, want 2", got)
	}
	// Nothing happens before the interval is up.
	r.advance(time.Hour - time.Second)
	select {
	case <-r.polls:
		t.Fatal("polled before the interval")
	default:
	}
	r.advance(time.Second)
	if p2 := r.nextPoll(); p2.err != nil || p2.snap == p.snap {
		t.Fatalf("second poll: %v", p2.err)
	}
	if got := r.srv.Sim.Requests("certificates"); got != 4 {
		t.Fatalf("%d certificate calls after two polls, want 4", got)
	}
}

func TestFailedPollKeepsSnapshotAndBacksOff(t *testing.T) {
	r := newRig(t, certviewtest.Inventory{Seed: 3, Certificates: 10, Instances: 20}, func(o *Options, _ *certview.Config) {
		o.MaxBackoff = 4 * time.Hour
	})
	r.start()
	good := r.nextPoll().snap
	r.srv.Sim.Inject(certviewtest.Fault{Endpoint: "instances", Page: -1, Kind: certviewtest.FaultStatus, Status: 403, Times: 1000})
	// Failures: the pause after each is 1h, 2h, 4h, 4h (doubling from the second, capped).
	for i, pause := range []time.Duration{time.Hour, time.Hour, 2 * time.Hour, 4 * time.Hour, 4 * time.Hour} {
		r.advance(pause)
		p := r.nextPoll()
		var apiErr *certview.APIError
		if !errors.As(p.err, &apiErr) || apiErr.Status != 403 {
			t.Fatalf("poll %d: err %v, want the 403", i, p.err)
		}
		h := r.loop.Health()
		if h.Up || h.ConsecutiveFailures != i+1 || h.LastErrorReason != "http_4xx" || r.loop.Snapshot() != good {
			t.Fatalf("poll %d: health %+v; the last good snapshot must stay", i, h)
		}
		if got := r.loop.nextDelay(); i < 4 && got != []time.Duration{time.Hour, 2 * time.Hour, 4 * time.Hour, 4 * time.Hour}[i] {
			t.Fatalf("after %d failures the next delay is %s", i+1, got)
		}
	}
	if !strings.Contains(r.logs.String(), `msg="poll failed; keeping the previous snapshot" kind=full reason=http_4xx`) {
		t.Fatalf("no failure log line:\n%s", r.logs.String())
	}
	if got := telemetryValue(t, r.tel, "qualys_certview_poll_failures_total", "reason", "http_4xx"); got != 5 {
		t.Fatalf("poll_failures_total{reason=http_4xx} = %v, want 5", got)
	}
	// Recovery: the next poll succeeds and the pause is back to the interval.
	r.srv.Sim.ClearFaults()
	r.advance(4 * time.Hour)
	if p := r.nextPoll(); p.err != nil || !r.loop.Health().Up || r.loop.nextDelay() != time.Hour {
		t.Fatalf("recovery: %v, health %+v", p.err, r.loop.Health())
	}
}

func TestPollsNeverOverlap(t *testing.T) {
	r := newRig(t, certviewtest.Inventory{Seed: 3, Certificates: 10}, nil)
	release := make(chan struct{})
	r.srv.Sim.Inject(certviewtest.Fault{Endpoint: "certificates", Page: 0, Kind: certviewtest.FaultSlow, Release: release})
	var running, maxRunning atomic.Int32
	inner := r.loop.client
	r.loop.client = listerFunc{
		Lister: inner,
		certs: func(ctx context.Context, terms []certview.FilterTerm, fn func([]certview.Certificate) error) (certview.ListStats, error) {
			n := running.Add(1)
			for m := maxRunning.Load(); n > m && !maxRunning.CompareAndSwap(m, n); m = maxRunning.Load() {
			}
			defer running.Add(-1)
			return inner.ListCertificatesWhere(ctx, terms, fn)
		},
	}
	done := make(chan error, 2)
	go func() { done <- r.loop.Poll(context.Background()) }()
	go func() { done <- r.loop.Poll(context.Background()) }()
	close(release)
	for i := 0; i < 2; i++ {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if maxRunning.Load() != 1 {
		t.Fatalf("%d polls ran at once", maxRunning.Load())
	}
}

// listerFunc replaces a Lister's certificate listings (a full listing lists id ranges
// through ListCertificatesWhere); the rest are the embedded one's.
type listerFunc struct {
	Lister
	certs func(context.Context, []certview.FilterTerm, func([]certview.Certificate) error) (certview.ListStats, error)
}

func (l listerFunc) ListCertificatesWhere(ctx context.Context, terms []certview.FilterTerm, fn func([]certview.Certificate) error) (certview.ListStats, error) {
	return l.certs(ctx, terms, fn)
}

func (l listerFunc) ListCertificates(ctx context.Context, fn func([]certview.Certificate) error) (certview.ListStats, error) {
	return l.certs(ctx, nil, fn)
}

func TestLongPollLogsProgressAndWaits(t *testing.T) {
	r := newRig(t, certviewtest.Inventory{Seed: 3, Certificates: 450}, func(o *Options, c *certview.Config) {
		o.ProgressInterval = time.Minute
		o.Timeout = 2 * time.Hour
	})
	// Page 1 is throttled for 10 minutes: the poll waits, and logs its progress meanwhile.
	r.srv.Sim.Inject(certviewtest.Fault{Endpoint: "certificates", Page: 1, Kind: certviewtest.FaultStatus, Status: 429,
		Header: map[string]string{"X-RateLimit-ToWait-Sec": "600"}})
	done := make(chan error, 1)
	go func() { done <- r.loop.Poll(context.Background()) }()
	// Waiters: the progress ticker, the stall watchdog, the poll.timeout timer and the
	// throttle wait.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := r.clock.BlockUntilContext(ctx, 4); err != nil {
		t.Fatal(err)
	}
	r.clock.Advance(time.Minute)
	deadline := time.After(10 * time.Second)
	for !strings.Contains(r.logs.String(), `msg="poll in progress"`) {
		select {
		case <-deadline:
			t.Fatalf("no progress log:\n%s", r.logs.String())
		case <-time.After(time.Millisecond):
		}
	}
	r.clock.Advance(9 * time.Minute)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	logs := r.logs.String()
	for _, want := range []string{`msg="poll in progress" pages=1 records=200 rate_limit_waits=1 waited=10m0s`, `msg="poll complete" kind=full certificates=450`, "rate_limit_waits=1"} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %q:\n%s", want, logs)
		}
	}
	if got := telemetryValue(t, r.tel, "qualys_certview_api_wait_seconds_total", "endpoint", "certificates", "reason", "throttled"); got != 600 {
		t.Errorf("wait seconds %v, want 600", got)
	}
}

func TestWarnsWhenRateLimitCannotMeetInterval(t *testing.T) {
	// 900 certificates take 5 calls; at 3 calls an hour that needs a 1h40m interval.
	r := newRig(t, certviewtest.Inventory{Seed: 3, Certificates: 900}, func(o *Options, _ *certview.Config) {
		o.RateLimit = certview.RateLimit{Calls: 3, Window: time.Hour}
	})
	if err := r.loop.Poll(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(r.logs.String(), "endpoint=certificates calls_per_window=5 calls_per_full_poll=5 rate_limit=\"3 per 1h0m0s\" interval=1h0m0s min_interval=1h40m0s") {
		t.Fatalf("no budget warning:\n%s", r.logs.String())
	}
	if MinInterval(501, certview.RateLimit{Calls: 300, Window: time.Hour}) != 6012*time.Second || CallsPerPoll(100000, 200) != 501 {
		t.Fatal("estimates")
	}
}

func TestFailureReasons(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{&certview.AuthError{}, "auth"},
		{&certview.ThrottledError{}, "throttled"},
		{&certview.APIError{Status: 502}, "http_5xx"},
		{&certview.APIError{Status: 404}, "http_4xx"},
		{context.DeadlineExceeded, "timeout"},
		{&StallError{Idle: time.Minute}, "timeout"},
		{&TimeoutError{Limit: time.Hour}, "timeout"},
		{&certview.PageError{Err: errors.New("reset")}, "transport"},
		{certview.ErrTooManyPages, "paging"},
		{&certview.PageError{Err: &certview.PageLimitError{Endpoint: "instances", Unit: "records", Limit: 200}}, "paging"},
		{errors.New("?"), "other"},
	} {
		if got := failureReason(tc.err); got != tc.want {
			t.Errorf("%v: %s, want %s", tc.err, got, tc.want)
		}
	}
}

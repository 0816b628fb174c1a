package poll

import (
	"context"
	"errors"
	"math"
	"path/filepath"
	"testing"
	"time"

	"github.com/certview-exporter/certview_exporter/certview"
	"github.com/certview-exporter/certview_exporter/certview/certviewtest"
	"github.com/certview-exporter/certview_exporter/collector/snapshot"
	"github.com/go-kit/log"
)

// The tests here run hours of a subscription's real budget on the fake clock: the
// simulator counts calls per rolling window per API as the vendor does (and answers 429
// once a window is spent), and the client keeps to the same budget.

// budgetRig is a simulator of certs and instances with a budget of calls per window per
// API, a client that keeps to it, and a loop that saves its snapshot in a directory.
func budgetRig(t *testing.T, certs, instances, calls int, window time.Duration, tweak func(*Options)) *rig {
	t.Helper()
	path := filepath.Join(t.TempDir(), "snapshot")
	r := newRig(t, certviewtest.Inventory{Seed: 7, Certificates: certs, Instances: instances}, func(o *Options, c *certview.Config) {
		o.RateLimit = certview.RateLimit{Calls: calls, Window: window, Concurrency: 2}
		c.RateLimit = o.RateLimit
		o.SnapshotPath = path
		if tweak != nil {
			tweak(o)
		}
	})
	r.srv.Sim.SetRateLimit(calls, window)
	return r
}

// newLoop is another loop (a restart, say) over the rig's simulator, client and clock.
func (r *rig) newLoop(tweak func(*Options)) *Loop {
	opts := r.loop.opts
	opts.Telemetry, opts.AfterPoll, opts.Publish = nil, nil, nil
	opts.Logger = log.NewLogfmtLogger(r.logs)
	if tweak != nil {
		tweak(&opts)
	}
	return New(r.client, opts)
}

// drive runs poll on the fake clock: whenever at least waiters goroutines wait on the
// clock (the poll's stall watchdog and progress log, and an API's rate-limit wait), the
// clock moves by step, until poll returns.
func (r *rig) drive(ctx context.Context, step time.Duration, waiters int, poll func(context.Context) error) error {
	done := make(chan error, 1)
	idle, stopIdle := context.WithCancel(context.Background())
	defer stopIdle()
	go func() { done <- poll(ctx); stopIdle() }()
	for {
		if err := r.clock.BlockUntilContext(idle, waiters); err != nil {
			return <-done
		}
		r.clock.Advance(step)
	}
}

// calls is the listing calls the simulator answered, both APIs.
func (r *rig) calls() int {
	return r.srv.Sim.Requests(certview.EndpointCertificates) + r.srv.Sim.Requests(certview.EndpointInstances)
}

// minimumCalls is what a plain listing of both APIs costs at least.
func minimumCalls(certs, instances int) int {
	return CallsPerPoll(certs, 200) + CallsPerPoll(instances, 200)
}

// budgetHours is when the last of calls can start at perHour calls per rolling hour:
// each hour's calls start as the calls of the hour before leave the window.
func budgetHours(calls, perHour int) float64 { return float64((calls - 1) / perHour) }

// The ranges of a listing cut short and resumed after the inventory changed hold every
// record that did not change, once: records moving between pages, or new ids below the
// ones listed, cannot make the resumed listing skip or repeat one.
func TestResumedListingMissesNothing(t *testing.T) {
	const certs, instances = 12_000, 30_000
	r := budgetRig(t, certs, instances, 100, time.Hour, nil)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		t := r.clock.NewTimer(45 * time.Minute)
		defer t.Stop()
		<-t.Chan()
		cancel()
	}()
	if err := r.drive(ctx, time.Second, 4, r.loop.Poll); !errors.Is(err, context.Canceled) {
		t.Fatalf("the cut poll ended with %v", err)
	}
	// Between the attempts the inventory changes: rescans, removals, and new certificates,
	// every other one with an id below all others.
	r.srv.Sim.SetRateLimit(1<<30, time.Hour)
	before := freshFull(t, r) // to tell which certificates lose an instance
	r.srv.Sim.SetRateLimit(100, time.Hour)
	churn := r.srv.Sim.Churn(certviewtest.Churn{Rescan: 0.02, Add: 40, Remove: 60})
	next := r.newLoop(nil)
	next.LoadSaved()
	if next.full == nil {
		t.Fatal("the listing was not taken up")
	}
	if err := r.drive(context.Background(), time.Second, 3, next.Poll); err != nil {
		t.Fatal(err)
	}
	r.srv.Sim.SetRateLimit(1<<30, time.Hour) // the reference listing, not the budget, is measured from here
	fresh := freshFull(t, r)
	changed := map[int64]bool{}
	for _, ids := range [][]int64{churn.Rescanned, churn.Removed, churn.AddedOn} {
		for _, id := range ids {
			changed[id] = true
		}
	}
	at := r.clock.Now()
	got, want := objectLines(t, next.Snapshot(), at, changed), objectLines(t, fresh, at, changed)
	// The certificates that gained or lost an instance keep CertView's count of when they
	// were listed; the added ones are new.
	touched := certsOf(fresh, churn.AddedOn)
	for h := range certsOf(before, churn.Removed) {
		touched[h] = true
	}
	sameLines(t, "resumed listing", withoutCertificates(got, touched, fresh, churn.Added),
		withoutCertificates(want, touched, fresh, churn.Added))
}

// withoutCertificates drops the per-certificate lines of the certhashes in drop and of
// the certificates of these ids (in s).
func withoutCertificates(lines []string, drop map[string]bool, s *snapshot.Snapshot, ids []int64) []string {
	all := map[string]bool{}
	for h := range drop {
		all[h] = true
	}
	for _, c := range s.Certificates {
		for _, id := range ids {
			if c.ID == id {
				all[c.CertHash] = true
			}
		}
	}
	out := lines[:0:0]
	for _, l := range lines {
		keep := true
		for h := range all {
			if containsCerthash(l, h) && !isInstanceLine(l) {
				keep = false
				break
			}
		}
		if keep {
			out = append(out, l)
		}
	}
	return out
}

func containsCerthash(line, h string) bool { return len(h) > 0 && contains(line, `certhash="`+h+`"`) }

func isInstanceLine(line string) bool { return contains(line, `instance_id="`) }

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

// The daily full listing shares the budget with the hourly incremental polls: every poll
// still merges what changed within minutes of its start, no call is refused, and the
// listing, spread over several polls, ends in a snapshot that holds every record, with
// the changes the incremental polls saw meanwhile.
func TestDailyFullListingBesideHourlyIncrementalPolls(t *testing.T) {
	const certs, instances, perHour = 5_000, 15_000, 60
	r := budgetRig(t, certs, instances, perHour, time.Hour, func(o *Options) { o.FullInterval = 24 * time.Hour })
	if err := r.drive(context.Background(), time.Second, 3, r.loop.Poll); err != nil {
		t.Fatal(err)
	}
	first := r.loop.Snapshot()
	// Hourly polls until the next full listing has ended.
	r.clock.Advance(24*time.Hour - r.clock.Since(first.FullStarted))
	polls := 0
	for {
		polls++
		churn := r.srv.Sim.Churn(certviewtest.Churn{Rescan: 0.01, Add: 2})
		start := r.clock.Now()
		var merged time.Time
		r.loop.opts.Publish = func(s *snapshot.Snapshot) {
			if merged.IsZero() {
				merged = r.clock.Now()
			}
		}
		if err := r.drive(context.Background(), time.Second, 3, r.loop.Poll); err != nil {
			t.Fatal(err)
		}
		if merged.IsZero() || merged.Sub(start) > 10*time.Minute {
			t.Fatalf("poll %d: the incremental merge came %s after the poll started", polls, merged.Sub(start))
		}
		snap := r.loop.Snapshot()
		for _, id := range churn.AddedOn {
			if !hasInstance(snap, id) {
				t.Fatalf("poll %d: the instance added before it, %d, is not served", polls, id)
			}
		}
		if r.loop.full == nil {
			if snap.Kind != snapshot.PollFull {
				t.Fatalf("poll %d made a %s snapshot with no listing in progress", polls, snap.Kind)
			}
			break
		}
		if polls > 10 {
			t.Fatal("the full listing did not end in 10 polls")
		}
		r.clock.Advance(time.Hour - r.clock.Since(start)%time.Hour)
	}
	if polls < 2 {
		t.Fatalf("the full listing ended in %d poll: the test needs one that shares the budget", polls)
	}
	throttled := r.srv.Sim.Throttled(certview.EndpointCertificates) + r.srv.Sim.Throttled(certview.EndpointInstances)
	r.srv.Sim.SetRateLimit(1<<30, time.Hour) // the reference listing, not the budget, is measured from here
	at := r.clock.Now()
	sameLines(t, "the shared full listing", objectLines(t, r.loop.Snapshot(), at, nil), objectLines(t, freshFull(t, r), at, nil))
	if throttled != 0 {
		t.Errorf("%d calls refused with 429", throttled)
	}
	t.Logf("the full listing took %d hourly polls", polls)
}

func hasInstance(s *snapshot.Snapshot, id int64) bool {
	for i := range s.Instances {
		if s.Instances[i].ID == id {
			return true
		}
	}
	return false
}

// A poll that stalls (an answer that never comes) fails as a timeout after
// stall_timeout on the loop's clock, and keeps the ranges it finished; a listing moving
// at the rate limit's pace never stalls, however long it takes.
func TestStalledPollFailsAndKeepsItsRanges(t *testing.T) {
	r := budgetRig(t, 6_000, 100, 1000, time.Hour, func(o *Options) { o.StallTimeout = 5 * time.Minute })
	hold := make(chan struct{})
	arrived := make(chan struct{})
	r.srv.Sim.Inject(certviewtest.Fault{Endpoint: "certificates", Page: 2, Kind: certviewtest.FaultSlow, Release: hold, Arrived: arrived, Skip: 2})
	// The listing is held at a page of its second range: the watchdog, the progress log
	// and nothing else wait on the clock.
	done := make(chan error, 1)
	go func() { done <- r.loop.Poll(context.Background()) }()
	<-arrived
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := r.clock.BlockUntilContext(ctx, 2); err != nil {
		t.Fatal(err)
	}
	r.clock.Advance(5*time.Minute + time.Second)
	err := <-done
	close(hold)
	var stall *StallError
	if !errors.As(err, &stall) || failureReason(err) != "timeout" {
		t.Fatalf("the stalled poll failed with %v (reason %s)", err, failureReason(err))
	}
	if r.loop.full == nil || r.loop.full.plans[certview.EndpointCertificates].Ranges == 0 {
		t.Fatal("the stalled poll lost the ranges it had finished")
	}
	if err := r.loop.Poll(context.Background()); err != nil {
		t.Fatal(err)
	}
	if s := r.loop.Snapshot(); len(s.Certificates) != 6_000 {
		t.Fatalf("%d certificates after the stall", len(s.Certificates))
	}
}

// poll.timeout still caps a poll: one that cannot fit the listing at the rate fails as
// a timeout, the next goes on from its checkpoint, and the log said so with the numbers.
func TestPollTimeoutCapsAndTheListingGoesOn(t *testing.T) {
	const certs, instances, perHour = 2_000, 6_000, 10
	r := budgetRig(t, certs, instances, perHour, time.Hour, func(o *Options) { o.Timeout = 90 * time.Minute })
	var timeouts int
	for i := 0; i < 10 && r.loop.Snapshot() == nil; i++ {
		err := r.drive(context.Background(), time.Second, 4, r.loop.Poll)
		var te *TimeoutError
		switch {
		case errors.As(err, &te):
			timeouts++
		case err != nil:
			t.Fatal(err)
		}
	}
	if r.loop.Snapshot() == nil || timeouts == 0 {
		t.Fatalf("snapshot %v after %d timeouts", r.loop.Snapshot() != nil, timeouts)
	}
	calls, minimum := r.calls(), minimumCalls(certs, instances)
	if float64(calls) > 1.3*float64(minimum) {
		t.Errorf("%d calls over %d capped polls; a listing of these sizes needs %d:\n%s", calls, timeouts+1, minimum, r.logs.String())
	}
	if !contains(r.logs.String(), "poll.timeout") {
		t.Errorf("the log never named poll.timeout:\n%s", r.logs.String())
	}
	if math.IsNaN(float64(calls)) {
		t.Fatal("unreachable")
	}
}

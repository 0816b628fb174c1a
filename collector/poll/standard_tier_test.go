//go:build !race

// These two run 100,000 certificates and 300,000 instances through the simulator, which
// the race detector makes take minutes each; make test runs them without it, after the
// race-detecting run of everything else (the same listing code runs under the race
// detector in budget_test.go at smaller sizes).

package poll

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/certview-exporter/certview_exporter/certview"
	"github.com/certview-exporter/certview_exporter/collector/store"
)

// At 100,000 certificates and 300,000 instances on the Standard tier (300 calls an hour
// per API), the first snapshot arrives after the hours the instances budget allows, with
// at most 2% more calls than a plain listing's minimum, and no call is refused.
func TestFirstListingAtTheStandardBudget(t *testing.T) {
	const certs, instances, perHour = 100_000, 300_000, 300
	r := budgetRig(t, certs, instances, perHour, time.Hour, nil)
	start := r.clock.Now()
	if err := r.drive(context.Background(), time.Second, 3, r.loop.Poll); err != nil {
		t.Fatal(err)
	}
	took := r.clock.Since(start)
	snap := r.loop.Snapshot()
	if snap == nil || len(snap.Certificates) != certs || len(snap.Instances) != instances {
		t.Fatalf("snapshot of %v", snap)
	}
	calls, minimum := r.calls(), minimumCalls(certs, instances)
	instanceCalls := r.srv.Sim.Requests(certview.EndpointInstances)
	want := time.Duration(budgetHours(instanceCalls, perHour) * float64(time.Hour))
	t.Logf("first snapshot after %s (the instances budget allows %s for their %d calls); %d calls, minimum %d (%.2f%% more)",
		took.Round(time.Minute), want.Round(time.Minute), instanceCalls, calls, minimum, 100*float64(calls-minimum)/float64(minimum))
	if float64(calls) > 1.02*float64(minimum) {
		t.Errorf("%d calls, more than 2%% over the minimum %d", calls, minimum)
	}
	if d := took - want; d < 0 || d > 5*time.Minute {
		t.Errorf("the first snapshot came after %s; the budget allows it after %s", took, want)
	}
	if n := r.srv.Sim.Throttled(certview.EndpointCertificates) + r.srv.Sim.Throttled(certview.EndpointInstances); n != 0 {
		t.Errorf("%d calls refused with 429: the client did not keep to the budget", n)
	}
}

// A restart at hour 3 of that listing goes on from its checkpoint: the listing costs at
// most 10% more calls in all than one that was never cut.
func TestRestartDuringTheFirstListing(t *testing.T) {
	const certs, instances, perHour = 100_000, 300_000, 300
	r := budgetRig(t, certs, instances, perHour, time.Hour, nil)
	ctx, cancel := context.WithCancel(context.Background())
	start := r.clock.Now()
	go func() {
		// The process dies at hour 3: the poll is cancelled where it stands.
		t := r.clock.NewTimer(3 * time.Hour)
		defer t.Stop()
		<-t.Chan()
		cancel()
	}()
	// Waiters: the watchdog, the progress log and the kill timer, and a rate-limit wait.
	if err := r.drive(ctx, time.Second, 4, r.loop.Poll); !errors.Is(err, context.Canceled) {
		t.Fatalf("the cut poll ended with %v", err)
	}
	if _, err := store.LoadListing(store.ListingPath(r.loop.opts.SnapshotPath)); err != nil {
		t.Fatalf("no checkpoint after the cut: %v", err)
	}
	cut := r.calls()
	next := r.newLoop(nil)
	next.LoadSaved()
	if next.full == nil {
		t.Fatalf("the new process did not take up the listing:\n%s", r.logs.String())
	}
	if err := r.drive(context.Background(), time.Second, 3, next.Poll); err != nil {
		t.Fatal(err)
	}
	snap := next.Snapshot()
	if len(snap.Certificates) != certs || len(snap.Instances) != instances {
		t.Fatalf("after the restart: %d certificates, %d instances", len(snap.Certificates), len(snap.Instances))
	}
	calls, minimum := r.calls(), minimumCalls(certs, instances)
	t.Logf("cut at %d calls; %d calls in all after %s, minimum %d (%.2f%% more)", cut, calls,
		r.clock.Since(start).Round(time.Minute), minimum, 100*float64(calls-minimum)/float64(minimum))
	if float64(calls) > 1.10*float64(minimum) {
		t.Errorf("%d calls in all, more than 10%% over the minimum %d", calls, minimum)
	}
	if _, err := store.LoadListing(store.ListingPath(r.loop.opts.SnapshotPath)); !errors.Is(err, store.ErrNoListing) {
		t.Errorf("the checkpoint is left after the listing ended: %v", err)
	}
}

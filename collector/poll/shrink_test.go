package poll

import (
	"context"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/certview-exporter/certview_exporter/certview"
	"github.com/certview-exporter/certview_exporter/certview/certviewtest"
	"github.com/certview-exporter/certview_exporter/collector/exposition"
	"github.com/certview-exporter/certview_exporter/collector/snapshot"
	"github.com/certview-exporter/certview_exporter/collector/store"
	"github.com/prometheus/client_golang/prometheus"
)

// shrinkRig is a rig whose loop publishes to an exposition on the rig's clock and saves
// its snapshot, so that a test can see what /metrics serves and what the file holds.
// The polls are called directly, with the clock standing still: two scrapes of the same
// snapshot are byte for byte the same.
type shrinkRig struct {
	*rig
	expo      *exposition.Exposition
	path      string
	published int
}

func newShrinkRig(t *testing.T, tweak func(*Options, *certview.Config)) *shrinkRig {
	t.Helper()
	path := filepath.Join(t.TempDir(), "snapshot.json.gz")
	r := newRig(t, certviewtest.Inventory{Seed: 3, Certificates: 250, Instances: 500}, func(o *Options, c *certview.Config) {
		o.SnapshotPath = path
		if tweak != nil {
			tweak(o, c)
		}
	})
	expo, err := exposition.New(r.loop, nil, exposition.Options{PerCertificate: true, PerInstance: true, Clock: r.clock, Interval: r.loop.Interval()})
	if err != nil {
		t.Fatal(err)
	}
	sr := &shrinkRig{rig: r, expo: expo, path: path}
	r.loop.opts.Publish = func(s *snapshot.Snapshot) { sr.published++; expo.Publish(s) }
	return sr
}

// poll runs one poll, which must succeed, and drains its AfterPoll report.
func (r *shrinkRig) poll() *snapshot.Snapshot {
	r.t.Helper()
	if err := r.loop.Poll(context.Background()); err != nil {
		r.t.Fatalf("poll: %v", err)
	}
	p := r.nextPoll()
	if p.err != nil || p.snap != r.loop.Snapshot() {
		r.t.Fatalf("AfterPoll reported %v, %p; the served snapshot is %p", p.err, p.snap, r.loop.Snapshot())
	}
	return p.snap
}

func (r *shrinkRig) scrape() string {
	rec := httptest.NewRecorder()
	r.expo.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	return rec.Body.String()
}

// saved is what the snapshot file holds: certificates and instances.
func (r *shrinkRig) saved() (int, int) {
	r.t.Helper()
	s, err := store.Load(r.path, nil)
	if err != nil {
		r.t.Fatal(err)
	}
	return len(s.Certificates), len(s.Instances)
}

// emptyAnswer makes the API answer the next n listing calls of endpoint ("" both) with
// `200 []`, as a broken gateway or a backend mid-failover might.
func (r *shrinkRig) emptyAnswer(endpoint string, n int) {
	r.srv.Sim.Inject(certviewtest.Fault{Endpoint: endpoint, Page: 0, Kind: certviewtest.FaultStatus, Status: 200, Body: "[]", Times: n})
}

func (r *shrinkRig) value(name string, labels ...string) float64 {
	r.t.Helper()
	return telemetryValue(r.t, r.tel, name, labels...)
}

// heldGauges checks the shrink gauges: held, and the records of the held listing.
func (r *shrinkRig) heldGauges(held bool, certificates, instances int) {
	r.t.Helper()
	if got := r.value("qualys_certview_inventory_shrink_held"); got != boolValue(held) {
		r.t.Fatalf("inventory_shrink_held = %v, want %v", got, held)
	}
	families := r.families()
	if !held {
		if families["qualys_certview_inventory_shrink_held_records"] {
			r.t.Fatal("inventory_shrink_held_records is served while nothing is held")
		}
		return
	}
	if got := r.value("qualys_certview_inventory_shrink_held_records", "endpoint", "certificates"); got != float64(certificates) {
		r.t.Fatalf("held certificates %v, want %d", got, certificates)
	}
	if got := r.value("qualys_certview_inventory_shrink_held_records", "endpoint", "instances"); got != float64(instances) {
		r.t.Fatalf("held instances %v, want %d", got, instances)
	}
}

func (r *shrinkRig) families() map[string]bool {
	r.t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(r.tel.Collectors()...)
	mfs, err := reg.Gather()
	if err != nil {
		r.t.Fatal(err)
	}
	out := map[string]bool{}
	for _, mf := range mfs {
		out[mf.GetName()] = len(mf.GetMetric()) > 0
	}
	return out
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// TestShrunkListingIsHeldThenDropped: a full listing answered `200 []` once is held.
// Nothing is published or saved, /metrics serves the same bytes, the poll counts as a
// success (up stays 1, no failure, the last success stays the served snapshot's), the
// log says so at warn with both counts, and the gauges show it. The next poll lists
// everything again; its listing does not shrink, so it is published and the held one is
// dropped.
func TestShrunkListingIsHeldThenDropped(t *testing.T) {
	r := newShrinkRig(t, nil)
	good := r.poll()
	if len(good.Certificates) != 250 || len(good.Instances) != 500 || r.published != 1 {
		t.Fatalf("first poll: %d certificates, %d instances, %d published", len(good.Certificates), len(good.Instances), r.published)
	}
	before, lastSuccess := r.scrape(), r.loop.Health().LastSuccess
	r.heldGauges(false, 0, 0)

	r.emptyAnswer("certificates", 1)
	calls := r.srv.Sim.Requests("certificates")
	if got := r.poll(); got != good {
		t.Fatal("the shrunk listing replaced the served snapshot")
	}
	if r.srv.Sim.Requests("certificates") != calls+1 {
		t.Fatalf("%d certificate calls for the held listing, want 1 (no retry)", r.srv.Sim.Requests("certificates")-calls)
	}
	if r.published != 1 {
		t.Fatal("the shrunk listing was published")
	}
	if after := r.scrape(); after != before {
		t.Fatalf("/metrics changed while the listing is held:\n--- before\n%.2000s\n--- after\n%.2000s", before, after)
	}
	if c, i := r.saved(); c != 250 || i != 500 {
		t.Fatalf("the snapshot file holds %d certificates and %d instances, want the served 250 and 500", c, i)
	}
	h := r.loop.Health()
	if !h.Up || h.ConsecutiveFailures != 0 || h.LastError != "" || !h.LastSuccess.Equal(lastSuccess) {
		t.Fatalf("health %+v: the poll did not fail, and the last success is still the served snapshot's", h)
	}
	if got := r.value("qualys_certview_polls_total", "result", "failure"); got != 0 {
		t.Fatalf("%v failed polls", got)
	}
	r.heldGauges(true, 0, 500)
	if got := r.value("qualys_certview_inventory_shrinks_held_total"); got != 1 {
		t.Fatalf("shrinks_held_total = %v, want 1", got)
	}
	logs := r.logs.String()
	for _, want := range []string{
		`level=warn msg="a full listing lost more than poll.max_shrink of the inventory; holding it unpublished until the next full listing confirms it" certificates=0 instances=500 served_certificates=250 served_instances=500 lost_certificates=true lost_instances=false max_shrink=0.5`,
		`msg="poll complete" kind=full certificates=250 instances=500`,
		"shrink_held=true",
	} {
		if !strings.Contains(logs, want) {
			t.Fatalf("the log lacks %q:\n%s", want, logs)
		}
	}
	if plan := r.loop.planPoll(good, r.clock.Now()); !plan.full {
		t.Fatalf("the next poll is %+v, not a full listing", plan)
	}

	// The next listing is whole: published, the held one dropped.
	next := r.poll()
	if next == good || len(next.Certificates) != 250 || len(next.Instances) != 500 || r.published != 2 {
		t.Fatalf("the next listing: %d certificates, %d instances, %d published", len(next.Certificates), len(next.Instances), r.published)
	}
	r.heldGauges(false, 0, 0)
	if r.loop.held != nil {
		t.Fatal("the held listing was kept")
	}
	if !strings.Contains(r.logs.String(), `level=warn msg="the next full listing did not confirm the shrunk listing held; dropping it and publishing the new one" held_certificates=0 held_instances=500 certificates=250 instances=500`) {
		t.Fatalf("no log line says the held listing was dropped:\n%s", r.logs.String())
	}
	// And a later shrink is held again, not taken as a confirmation of the dropped one.
	r.emptyAnswer("instances", 1)
	if r.poll() != next || r.published != 2 {
		t.Fatal("a later shrink was published at once")
	}
	r.heldGauges(true, 250, 0)
	if got := r.value("qualys_certview_inventory_shrinks_held_total"); got != 2 {
		t.Fatalf("shrinks_held_total = %v, want 2", got)
	}
}

// TestShrinkConfirmedBySecondListing: when the next full listing shrinks as far, the
// inventory really shrank, and it is published and saved.
func TestShrinkConfirmedBySecondListing(t *testing.T) {
	r := newShrinkRig(t, nil)
	good := r.poll()
	r.emptyAnswer("", 2) // both APIs, one listing
	if r.poll() != good || r.published != 1 {
		t.Fatal("the first shrunk listing was published")
	}
	r.heldGauges(true, 0, 0)
	r.emptyAnswer("", 2)
	got := r.poll()
	if got == good || len(got.Certificates) != 0 || len(got.Instances) != 0 || r.published != 2 {
		t.Fatalf("the confirmed shrink: %d certificates, %d instances, %d published", len(got.Certificates), len(got.Instances), r.published)
	}
	if c, i := r.saved(); c != 0 || i != 0 {
		t.Fatalf("the snapshot file holds %d certificates and %d instances after the confirmed shrink", c, i)
	}
	if !strings.Contains(r.scrape(), "qualys_certview_certificates 0\n") {
		t.Fatal("/metrics does not serve the confirmed, empty inventory")
	}
	r.heldGauges(false, 0, 0)
	if got := r.value("qualys_certview_inventory_shrinks_held_total"); got != 1 {
		t.Fatalf("shrinks_held_total = %v, want 1 (the confirmation is not held)", got)
	}
	if !strings.Contains(r.logs.String(), `msg="a second full listing confirms the shrink: the inventory shrank; publishing it" certificates=0 instances=0 served_certificates=250 served_instances=500`) {
		t.Fatalf("no log line says the shrink was confirmed:\n%s", r.logs.String())
	}
	// From an empty inventory nothing is guarded: what comes back is published at once.
	if back := r.poll(); len(back.Certificates) != 250 || r.published != 3 {
		t.Fatal("the inventory coming back was not published")
	}
}

// TestMaxShrinkOneTurnsTheGuardOff: poll.max_shrink 1 lets a full listing lose
// everything, published at once.
func TestMaxShrinkOneTurnsTheGuardOff(t *testing.T) {
	r := newShrinkRig(t, func(o *Options, _ *certview.Config) { o.MaxShrink = 1 })
	r.poll()
	r.emptyAnswer("certificates", 1)
	if got := r.poll(); len(got.Certificates) != 0 || len(got.Instances) != 500 || r.published != 2 {
		t.Fatalf("with the guard off the listing was not published: %d certificates, %d published", len(got.Certificates), r.published)
	}
	r.heldGauges(false, 0, 0)
	if got := r.value("qualys_certview_inventory_shrinks_held_total"); got != 0 {
		t.Fatalf("shrinks_held_total = %v", got)
	}
	// The same listing under the default share is held.
	guarded := newShrinkRig(t, nil)
	good := guarded.poll()
	guarded.emptyAnswer("certificates", 1)
	if guarded.poll() != good {
		t.Fatal("under the default share the shrunk listing was published")
	}
}

// TestShrinkWithinTheShare: a listing that loses no more than the share is published
// at once; one that loses more than a smaller share is held.
func TestShrinkWithinTheShare(t *testing.T) {
	for _, tc := range []struct {
		share float64
		held  bool
	}{{0, true}, {0.9, false}, {0.25, true}} {
		r := newShrinkRig(t, func(o *Options, _ *certview.Config) { o.MaxShrink = tc.share })
		good := r.poll()
		// Page 1 of the instances answered empty: 200 of 500 instances are listed, a
		// loss of 60%.
		r.srv.Sim.Inject(certviewtest.Fault{Endpoint: "instances", Page: 1, Kind: certviewtest.FaultStatus, Status: 200, Body: "[]"})
		got := r.poll()
		if held := got == good; held != tc.held {
			t.Fatalf("max_shrink %v: a loss of 60%% of the instances held %v, want %v (%d instances served)", tc.share, held, tc.held, len(got.Instances))
		}
	}
}

// TestFirstPollIsNeverHeld: with no snapshot yet, an empty listing is what there is.
func TestFirstPollIsNeverHeld(t *testing.T) {
	r := newShrinkRig(t, nil)
	r.emptyAnswer("", 2)
	if got := r.poll(); got == nil || len(got.Certificates) != 0 || r.published != 1 || !r.loop.Ready() {
		t.Fatal("the first listing, empty, was not published")
	}
	r.heldGauges(false, 0, 0)
	// The guard stands for what follows: the inventory arrives, then vanishes once.
	full := r.poll()
	if len(full.Certificates) != 250 || r.published != 2 {
		t.Fatal("the inventory arriving was not published")
	}
	r.emptyAnswer("", 2)
	if r.poll() != full || r.published != 2 {
		t.Fatal("a shrunk listing after the first was published")
	}
}

// TestSavedSnapshotIsGuarded: after a restart the saved snapshot is the one served, and
// a shrunk first listing is held against it.
func TestSavedSnapshotIsGuarded(t *testing.T) {
	r := newShrinkRig(t, nil)
	r.poll()
	restarted := New(r.client, r.loop.opts)
	restarted.LoadSaved()
	saved := restarted.Snapshot()
	if saved == nil || len(saved.Certificates) != 250 {
		t.Fatal("no saved snapshot served")
	}
	r.emptyAnswer("", 2)
	if err := restarted.Poll(context.Background()); err != nil {
		t.Fatal(err)
	}
	r.nextPoll()
	if restarted.Snapshot() != saved || restarted.held == nil {
		t.Fatal("the shrunk listing replaced the saved snapshot")
	}
}

// TestShrunkIncrementalAnswerIsHeld: an incremental answer that ignored its filter is a
// full listing of that API; when it shrank, the merged snapshot is held like any full
// listing, and the next poll is a full listing.
func TestShrunkIncrementalAnswerIsHeld(t *testing.T) {
	r := newShrinkRig(t, func(o *Options, _ *certview.Config) { o.FullInterval = 24 * time.Hour })
	good := r.poll()
	if got := r.poll(); got == good || got.Kind != snapshot.PollIncremental {
		t.Fatalf("the second poll is %s, want an incremental one", got.Kind)
	}
	served := r.loop.Snapshot()
	// The API ignores the certificates filter and answers only a few records.
	r.srv.Sim.SetFilterFault("certificate.id", certviewtest.FilterIgnored)
	inner := r.loop.client
	r.loop.client = listerFunc{Lister: inner,
		certs: func(ctx context.Context, terms []certview.FilterTerm, fn func([]certview.Certificate) error) (certview.ListStats, error) {
			return inner.ListCertificatesWhere(ctx, terms, func(p []certview.Certificate) error { return fn(p[:min(len(p), 5)]) })
		}}
	if got := r.poll(); got != served || r.published != 2 {
		t.Fatalf("the shrunk incremental answer was published: %d certificates", len(got.Certificates))
	}
	r.heldGauges(true, 10, 500)
	r.srv.Sim.SetFilterFault("certificate.id", certviewtest.FilterWorks)
	r.loop.client = inner
	got := r.poll()
	if got == served || got.Kind != snapshot.PollFull || len(got.Certificates) != 250 {
		t.Fatalf("the next poll is %s with %d certificates, want a full listing of 250", got.Kind, len(got.Certificates))
	}
	r.heldGauges(false, 0, 0)
}

// TestOtherSubscriptionIsNotGuarded: a snapshot of another subscription may shrink by
// any share at the full listing that replaces it; other settings of the same
// subscription (thresholds, owners, a filter) are guarded as before, and so is a
// snapshot saved before fingerprints were kept.
func TestOtherSubscriptionIsNotGuarded(t *testing.T) {
	r := newShrinkRig(t, func(o *Options, _ *certview.Config) {
		o.Origin = snapshot.Fingerprint{Subscription: "s", Content: "wide"}
	})
	r.poll()
	r.loop.opts.Origin = snapshot.Fingerprint{Subscription: "s", Content: "other thresholds"}
	r.emptyAnswer("certificates", 1)
	if r.poll() != r.loop.Snapshot() || r.loop.held == nil || r.published != 1 {
		t.Fatal("a shrink under other settings of the same subscription was not held")
	}
	r.poll() // the next listing, whole, replaces the held one
	r.loop.opts.Origin = snapshot.Fingerprint{Subscription: "another", Content: "wide"}
	r.emptyAnswer("certificates", 1)
	if got := r.poll(); len(got.Certificates) != 0 || r.loop.held != nil {
		t.Fatal("the first listing of another subscription was held")
	}
}

// TestAlternatingShrinksAreNotConfirmations: an API that answers `200 []` to the
// certificates once and to the instances the next time has lost nothing twice: the
// second shrink is held in the first's place, and neither API is wiped. The same
// loss twice confirms.
func TestAlternatingShrinksAreNotConfirmations(t *testing.T) {
	r := newShrinkRig(t, nil)
	good := r.poll()
	r.emptyAnswer("certificates", 1)
	if r.poll() != good || r.loop.held == nil || !r.loop.held.lost.certificates || r.loop.held.lost.instances {
		t.Fatal("the certificates' shrink was not held")
	}
	r.emptyAnswer("instances", 1)
	if got := r.poll(); got != good || r.loop.held == nil || !r.loop.held.lost.instances || r.loop.held.lost.certificates {
		t.Fatalf("the instances' shrink after the certificates' was published (%d certificates, %d instances) or not held in its place",
			len(got.Certificates), len(got.Instances))
	}
	r.heldGauges(true, len(good.Certificates), 0)
	r.emptyAnswer("instances", 1)
	if got := r.poll(); len(got.Instances) != 0 || len(got.Certificates) != len(good.Certificates) || r.loop.held != nil {
		t.Fatal("the same loss twice did not confirm")
	}
}

// TestHeldListingCarriesOverAReload: after a reload the held listing still waits for
// its confirmation, and the gauges stay.
func TestHeldListingCarriesOverAReload(t *testing.T) {
	r := newShrinkRig(t, nil)
	good := r.poll()
	r.emptyAnswer("", 2)
	r.poll()
	next := New(r.client, r.loop.opts)
	next.CarryOver(r.loop)
	if len(next.Snapshot().Certificates) != len(good.Certificates) || next.held == nil {
		t.Fatal("the reload lost the held listing")
	}
	r.heldGauges(true, 0, 0)
	r.emptyAnswer("", 2)
	if err := next.Poll(context.Background()); err != nil {
		t.Fatal(err)
	}
	r.nextPoll()
	if got := next.Snapshot(); len(got.Certificates) != 0 || next.held != nil {
		t.Fatal("the second shrunk listing after the reload did not confirm the first")
	}
	r.heldGauges(false, 0, 0)
}

// instanceRangeDropper passes the loop's calls through, but, while drop is set, hands on
// none of the records of the instances' id ranges (a full listing's), as an API that
// answers them `200 []` would. As a plain Lister it has no learned budget: the loop
// plans with Options.RateLimit.
type instanceRangeDropper struct {
	Lister
	drop bool
}

func (d *instanceRangeDropper) ListInstancesWhere(ctx context.Context, terms []certview.FilterTerm, fn func([]certview.Instance) error) (certview.ListStats, error) {
	ranged := false
	for _, t := range terms {
		ranged = ranged || t.Field == "instance.id"
	}
	if !d.drop || !ranged {
		return d.Lister.ListInstancesWhere(ctx, terms, fn)
	}
	return d.Lister.ListInstancesWhere(ctx, terms, func([]certview.Instance) error { return nil })
}

// TestSharedFullListingIsGuarded: the daily full listing that shares the budget with the
// incremental polls, spread over several polls, is held when it ends shrunk, while the
// incremental polls go on being published; the full listing after it, shared as well,
// replaces it.
func TestSharedFullListingIsGuarded(t *testing.T) {
	r := newShrinkRig(t, func(o *Options, _ *certview.Config) {
		o.FullInterval = 24 * time.Hour
		o.RateLimit = certview.RateLimit{Calls: 4, Window: time.Hour} // a share fits no whole listing
	})
	d := &instanceRangeDropper{Lister: r.loop.client}
	r.loop.client = d
	good := r.poll()
	// listing runs the polls of one shared full listing, an hour apart, and says how many
	// it took and how many snapshots they published.
	listing := func() (polls, published int) {
		t.Helper()
		before := r.published
		for polls = 1; ; polls++ {
			r.poll()
			if r.loop.full == nil {
				return polls, r.published - before
			}
			if polls > 10 {
				t.Fatal("the full listing did not end in 10 polls")
			}
			r.clock.Advance(time.Hour)
		}
	}
	r.clock.Advance(24 * time.Hour)
	d.drop = true
	polls, published := listing()
	if polls < 2 {
		t.Fatalf("the full listing took %d poll: the test needs one that shares the budget", polls)
	}
	if r.loop.held == nil || published != polls || r.loop.Snapshot().Kind != snapshot.PollIncremental || len(r.loop.Snapshot().Instances) != len(good.Instances) {
		t.Fatalf("the shrunk shared listing: held %v, %d of %d polls published, %d instances served",
			r.loop.held != nil, published, polls, len(r.loop.Snapshot().Instances))
	}
	if r.value("qualys_certview_inventory_shrink_held") != 1 || r.value("qualys_certview_inventory_shrink_held_records", "endpoint", "certificates") != 250 {
		t.Fatal("the gauges do not show the held listing")
	}
	if got := r.value("qualys_certview_inventory_shrink_held_records", "endpoint", "instances"); got >= 250 {
		t.Fatalf("the held listing has %v instances, want under half of 500", got)
	}
	if plan := r.loop.planPoll(r.loop.Snapshot(), r.clock.Now().Add(time.Hour)); !plan.full || !plan.shared {
		t.Fatalf("the next poll is %+v, want a full listing sharing the budget", plan)
	}
	d.drop = false
	r.clock.Advance(time.Hour)
	listing()
	if r.loop.held != nil || r.loop.Snapshot().Kind != snapshot.PollFull || len(r.loop.Snapshot().Instances) != 500 {
		t.Fatalf("the next full listing: held %v, a %s snapshot of %d instances", r.loop.held != nil, r.loop.Snapshot().Kind, len(r.loop.Snapshot().Instances))
	}
	r.heldGauges(false, 0, 0)
}

// TestErosionIsHeldAgainstTheDaysLargest: listings that each lose a little less than the
// share (250 certificates, then 200, 150, 120) were each published, and walked the
// inventory down. They are held against the largest inventory of the last day as well:
// 120 is less than half of 250, so it is held, and the same loss again confirms it.
func TestErosionIsHeldAgainstTheDaysLargest(t *testing.T) {
	r := newShrinkRig(t, nil)
	good := r.poll()
	inner := r.loop.client
	keep := 0
	var listed int
	r.loop.client = listerFunc{Lister: inner,
		certs: func(ctx context.Context, terms []certview.FilterTerm, fn func([]certview.Certificate) error) (certview.ListStats, error) {
			return inner.ListCertificatesWhere(ctx, terms, func(p []certview.Certificate) error {
				n := min(len(p), max(keep-listed, 0))
				listed += n
				if n == 0 {
					return nil
				}
				return fn(p[:n])
			})
		}}
	pollKeeping := func(n int) *snapshot.Snapshot {
		keep, listed = n, 0
		return r.poll()
	}
	for _, n := range []int{200, 150} { // each within half of the one before, and of 250
		if got := pollKeeping(n); len(got.Certificates) != n || r.loop.held != nil {
			t.Fatalf("a listing of %d certificates after %d was held, or not published", n, len(good.Certificates))
		}
	}
	served := r.loop.Snapshot()
	if got := pollKeeping(120); got != served || r.loop.held == nil || !r.loop.held.lost.certificates {
		t.Fatalf("120 certificates, less than half the day's 250, were published (%d served)", len(got.Certificates))
	}
	if got := pollKeeping(120); len(got.Certificates) != 120 || r.loop.held != nil {
		t.Fatal("the same loss again did not confirm")
	}
	// Confirmed, 120 is the new reference: 100 is within half of it.
	if got := pollKeeping(100); len(got.Certificates) != 100 {
		t.Fatalf("100 certificates after a confirmed 120 were held")
	}
	// A day later the largest inventory is forgotten: a listing is held against the
	// served snapshot alone. (250, then 140 within its half; 80 is within half of 140,
	// not of 250.)
	pollKeeping(250)
	pollKeeping(140)
	r.clock.Advance(25 * time.Hour)
	if got := pollKeeping(80); len(got.Certificates) != 80 {
		t.Fatal("a listing more than half of the served was held a day after the peak")
	}
}

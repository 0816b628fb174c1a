package poll

import (
	"context"
	"maps"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/certview-exporter/certview_exporter/certview"
	"github.com/certview-exporter/certview_exporter/certview/certviewtest"
	"github.com/certview-exporter/certview_exporter/collector/exposition"
	"github.com/certview-exporter/certview_exporter/collector/snapshot"
	"github.com/certview-exporter/certview_exporter/collector/store"
	"github.com/certview-exporter/certview_exporter/collector/telemetry"
	"github.com/jonboulle/clockwork"
)

// incrementalRig is a rig whose loop polls incrementally between daily full
// listings.
func incrementalRig(t *testing.T, certs, instances int, tweak func(*Options, *certview.Config)) *rig {
	t.Helper()
	return newRig(t, certviewtest.Inventory{Seed: 9, Certificates: certs, Instances: instances}, func(o *Options, c *certview.Config) {
		o.FullInterval = 24 * time.Hour
		if tweak != nil {
			tweak(o, c)
		}
	})
}

// pollAt moves the fake clock by d and runs one poll.
func (r *rig) pollAt(d time.Duration) *snapshot.Snapshot {
	r.t.Helper()
	r.clock.Advance(d)
	if err := r.loop.Poll(context.Background()); err != nil {
		r.t.Fatalf("poll: %v", err)
	}
	return r.loop.Snapshot()
}

// objectLines renders a snapshot and keeps the per-certificate and per-instance series
// (those of instances in drop left out), sorted. The clock is fixed, so expiry days
// compare exactly.
func objectLines(t *testing.T, snap *snapshot.Snapshot, at time.Time, drop map[int64]bool) []string {
	t.Helper()
	expo, err := exposition.New(fixed{}, nil, exposition.Options{PerCertificate: true, PerInstance: true, Clock: clockwork.NewFakeClockAt(at)})
	if err != nil {
		t.Fatal(err)
	}
	expo.Publish(snap)
	rec := httptest.NewRecorder()
	expo.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	var out []string
	for _, line := range strings.Split(rec.Body.String(), "\n") {
		if !strings.HasPrefix(line, "qualys_certview_certificate_") && !strings.HasPrefix(line, "qualys_certview_instance_") {
			continue
		}
		if i := strings.Index(line, `instance_id="`); i >= 0 {
			id, _ := strconv.ParseInt(line[i+13:i+13+strings.IndexByte(line[i+13:], '"')], 10, 64)
			if drop[id] {
				continue
			}
		}
		out = append(out, line)
	}
	slices.Sort(out)
	return out
}

// certsOf lists the certhashes the snapshot's instances of these ids present.
func certsOf(s *snapshot.Snapshot, ids []int64) map[string]bool {
	out := map[string]bool{}
	for _, in := range s.Instances {
		if slices.Contains(ids, in.ID) {
			out[in.CertHash] = true
		}
	}
	return out
}

// withoutServed drops the qualys_certview_certificate_instances lines of these certificates.
func withoutServed(lines []string, certhashes map[string]bool) []string {
	return slices.DeleteFunc(lines, func(l string) bool {
		rest, ok := strings.CutPrefix(l, `qualys_certview_certificate_instances{certhash="`)
		return ok && certhashes[rest[:strings.IndexByte(rest, '"')]]
	})
}

// freshFull is what a full poll of the simulator's inventory gives now.
func freshFull(t *testing.T, r *rig) *snapshot.Snapshot { return freshFullWith(t, r, nil) }

// freshFullWith is freshFull with an instance filter.
func freshFullWith(t *testing.T, r *rig, instanceFilter *certview.Filter) *snapshot.Snapshot {
	t.Helper()
	so := r.srv.Sim.Options()
	c, err := certview.New(certview.Config{BaseURL: r.srv.URL, Credentials: certview.Credentials{Username: so.Username, Password: so.Password},
		Clock: r.clock, RateLimit: certview.RateLimit{Calls: 100000, Window: time.Hour}, InstanceFilter: instanceFilter})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s := New(c, Options{Interval: time.Hour, Clock: r.clock, Thresholds: defaults})
	if err := s.Poll(context.Background()); err != nil {
		t.Fatal(err)
	}
	return s.Snapshot()
}

func sameLines(t *testing.T, what string, got, want []string) {
	t.Helper()
	if slices.Equal(got, want) {
		return
	}
	extra, missing := 0, 0
	for _, l := range got {
		if _, ok := slices.BinarySearch(want, l); !ok {
			if extra++; extra <= 5 {
				t.Errorf("%s: extra %s", what, l)
			}
		}
	}
	for _, l := range want {
		if _, ok := slices.BinarySearch(got, l); !ok {
			if missing++; missing <= 5 {
				t.Errorf("%s: missing %s", what, l)
			}
		}
	}
	t.Fatalf("%s: %d series extra, %d missing (of %d)", what, extra, missing, len(want))
}

// TestIncrementalPollsMatchAFullPoll churns the simulator between hourly polls: the
// exposition after incremental polls equals a fresh full poll's, but for removed
// instances; the next full listing removes those too.
func TestIncrementalPollsMatchAFullPoll(t *testing.T) {
	r := incrementalRig(t, 1000, 3000, nil)
	first := r.pollAt(0)
	if first.Kind != snapshot.PollFull {
		t.Fatalf("first poll %s, want full", first.Kind)
	}
	removed := map[int64]bool{}
	var lastChurn certviewtest.ChurnResult
	for hour := 1; hour <= 5; hour++ {
		r.clock.Advance(time.Hour)
		lastChurn = r.srv.Sim.Churn(certviewtest.Churn{Rescan: 0.02, Lag: 20 * time.Minute, Add: 7, Remove: 3})
		for _, id := range lastChurn.Removed {
			removed[id] = true
		}
		certCalls, instCalls := r.srv.Sim.Requests("certificates"), r.srv.Sim.Requests("instances")
		snap := r.pollAt(0)
		if snap.Kind != snapshot.PollIncremental {
			t.Fatalf("hour %d: poll %s, want incremental", hour, snap.Kind)
		}
		// 60 rescans and 7 new instances a round, within the 1h overlap of two rounds:
		// one instances page; new certificates by id above the largest (one call) and the
		// others by id (one call).
		if got := r.srv.Sim.Requests("instances") - instCalls; got != 1 {
			t.Errorf("hour %d: %d instance calls, want 1", hour, got)
		}
		if got := r.srv.Sim.Requests("certificates") - certCalls; got != 2 {
			t.Errorf("hour %d: %d certificate calls, want 2", hour, got)
		}
		if snap.FullStarted != first.FullStarted || !snap.Watermark.After(first.Watermark) {
			t.Errorf("hour %d: full listing %s (want %s), watermark %s", hour, snap.FullStarted, first.FullStarted, snap.Watermark)
		}
		fresh := freshFull(t, r)
		now := r.clock.Now()
		// A removed instance's certificate keeps its old instance count until the next
		// full listing, as the removed instance itself stays.
		servedBefore := certsOf(snap, slices.Collect(maps.Keys(removed)))
		sameLines(t, "after an incremental poll", withoutServed(objectLines(t, snap, now, removed), servedBefore),
			withoutServed(objectLines(t, fresh, now, nil), servedBefore))
		if len(snap.Certificates) != len(fresh.Certificates) || len(snap.Instances) != len(fresh.Instances)+len(removed) {
			t.Fatalf("hour %d: %d certificates and %d instances, fresh %d and %d (+%d removed)", hour,
				len(snap.Certificates), len(snap.Instances), len(fresh.Certificates), len(fresh.Instances), len(removed))
		}
	}
	if got := telemetryValue(t, r.tel, "qualys_certview_last_poll_kind", "kind", snapshot.PollIncremental); got != 1 {
		t.Errorf("last_poll_kind{kind=incremental} %v", got)
	}
	if got := telemetryValue(r.t, r.tel, "qualys_certview_last_poll_records_fetched", "endpoint", "instances"); got < float64(len(lastChurn.Rescanned)) {
		t.Errorf("last_poll_records_fetched{endpoint=instances} %v, want at least the %d rescans", got, len(lastChurn.Rescanned))
	}
	// A day after the first full listing, the next poll lists everything: removed
	// instances are gone and everything equals a fresh full poll, counts included.
	snap := r.pollAt(19 * time.Hour)
	if snap.Kind != snapshot.PollFull {
		t.Fatalf("poll a day later: %s, want full", snap.Kind)
	}
	fresh := freshFull(t, r)
	sameLines(t, "after the full listing", objectLines(t, snap, r.clock.Now(), nil), objectLines(t, fresh, r.clock.Now(), nil))
	if len(snap.Instances) != len(fresh.Instances) || snap.GradeCounts["A+"] != fresh.GradeCounts["A+"] {
		t.Fatal("counts differ after the full listing")
	}
	if got := telemetryValue(t, r.tel, "qualys_certview_last_full_poll_success_timestamp_seconds"); got != unixSeconds(snap.FullFinished) {
		t.Errorf("last_full_poll_success_timestamp_seconds %v, want %v", got, unixSeconds(snap.FullFinished))
	}
	if got := telemetryValue(t, r.tel, "qualys_certview_incremental_watermark_timestamp_seconds"); got != unixSeconds(snap.Watermark) {
		t.Errorf("incremental_watermark_timestamp_seconds %v, want %v", got, unixSeconds(snap.Watermark))
	}
}

func TestFullIntervalZeroMakesEveryPollFull(t *testing.T) {
	r := newRig(t, certviewtest.Inventory{Seed: 9, Certificates: 450, Instances: 10}, nil)
	r.pollAt(0)
	if snap := r.pollAt(time.Hour); snap.Kind != snapshot.PollFull {
		t.Fatalf("second poll %s", snap.Kind)
	}
	if got := r.srv.Sim.Requests("certificates"); got != 6 {
		t.Fatalf("%d certificate calls for two full polls of 450, want 6", got)
	}
	if got := telemetryValue(t, r.tel, "qualys_certview_incremental_disabled", "reason", telemetry.IncrementalOffConfigured); got != 1 {
		t.Fatalf("incremental_disabled{reason=configured} %v", got)
	}
}

func TestAnORFilterKeepsPollsFull(t *testing.T) {
	r := incrementalRig(t, 50, 50, func(_ *Options, c *certview.Config) {
		c.InstanceFilter = &certview.Filter{Operation: "OR", Filters: []certview.FilterTerm{
			{Field: "instance.port", Operator: "EQUALS", Value: "443"}, {Field: "instance.port", Operator: "EQUALS", Value: "8443"}}}
	})
	r.pollAt(0)
	if snap := r.pollAt(time.Hour); snap.Kind != snapshot.PollFull {
		t.Fatalf("second poll %s, want full", snap.Kind)
	}
	if got := telemetryValue(t, r.tel, "qualys_certview_incremental_disabled", "reason", telemetry.IncrementalOffFilterOR); got != 1 {
		t.Fatalf("incremental_disabled{reason=filter_or} %v", got)
	}
	if !strings.Contains(r.logs.String(), `msg="incremental polls are off: every poll lists everything" reason=filter_or err="instance filter: its terms are joined by OR`) {
		t.Fatalf("no log line says why:\n%s", r.logs.String())
	}
}

func TestAnANDFilterIsNarrowed(t *testing.T) {
	// The user's own filter still applies to incremental polls: only port 443 here.
	r := incrementalRig(t, 200, 1000, func(_ *Options, c *certview.Config) {
		c.InstanceFilter = &certview.Filter{Operation: "AND", Filters: []certview.FilterTerm{{Field: "instance.port", Operator: "EQUALS", Value: "443"}}}
	})
	r.pollAt(0)
	r.clock.Advance(time.Hour)
	r.srv.Sim.Churn(certviewtest.Churn{Rescan: 0.2})
	snap := r.pollAt(0)
	if snap.Kind != snapshot.PollIncremental {
		t.Fatalf("poll %s, want incremental", snap.Kind)
	}
	for _, in := range snap.Instances {
		if in.Port != 443 {
			t.Fatalf("instance %d on port %d passed the filter", in.ID, in.Port)
		}
	}
	fresh := freshFullWith(t, r, &certview.Filter{Filters: []certview.FilterTerm{{Field: "instance.port", Operator: "EQUALS", Value: "443"}}})
	sameLines(t, "filtered", objectLines(t, snap, r.clock.Now(), nil), objectLines(t, fresh, r.clock.Now(), nil))
}

// TestIncrementalFaults: a fault mid-poll keeps the snapshot and its watermark; an
// ignored filter is taken as a full listing; a refused one makes polls full.
func TestIncrementalFaults(t *testing.T) {
	t.Run("fault mid-poll", func(t *testing.T) {
		r := incrementalRig(t, 300, 900, nil)
		first := r.pollAt(0)
		r.clock.Advance(time.Hour)
		r.srv.Sim.Churn(certviewtest.Churn{Rescan: 0.5})
		r.srv.Sim.Inject(certviewtest.Fault{Endpoint: "instances", Page: 1, Kind: certviewtest.FaultStatus, Status: 403, Times: 10})
		if err := r.loop.Poll(context.Background()); err == nil {
			t.Fatal("the poll did not fail")
		}
		if r.loop.Snapshot() != first || r.loop.Snapshot().Watermark != first.Watermark {
			t.Fatal("the failed poll replaced the snapshot or moved the watermark")
		}
		if got := telemetryValue(t, r.tel, "qualys_certview_incremental_watermark_timestamp_seconds"); got != unixSeconds(first.Watermark) {
			t.Fatalf("watermark metric %v moved", got)
		}
		r.srv.Sim.ClearFaults()
		snap := r.pollAt(0)
		if snap.Kind != snapshot.PollIncremental {
			t.Fatalf("recovery poll %s", snap.Kind)
		}
		sameLines(t, "after recovery", objectLines(t, snap, r.clock.Now(), nil), objectLines(t, freshFull(t, r), r.clock.Now(), nil))
	})
	for _, field := range []string{"instance.scannedDate", "certificate.id"} {
		t.Run("ignored "+field, func(t *testing.T) {
			r := incrementalRig(t, 300, 900, nil)
			before := r.pollAt(0)
			r.clock.Advance(time.Hour)
			churn := r.srv.Sim.Churn(certviewtest.Churn{Rescan: 0.05, Add: 3, Remove: 4})
			r.srv.Sim.SetFilterFault(field, certviewtest.FilterIgnored)
			snap := r.pollAt(0)
			endpoint := "instances"
			drop := map[int64]bool{}
			if field == "certificate.id" {
				endpoint = "certificates"
				for _, id := range churn.Removed {
					drop[id] = true
				}
			}
			if got := telemetryValue(t, r.tel, "qualys_certview_incremental_filter_ignored_total", "endpoint", endpoint); got != 1 {
				t.Fatalf("incremental_filter_ignored_total{endpoint=%s} %v", endpoint, got)
			}
			if !strings.Contains(r.logs.String(), "the API ignored the incremental filter and answered everything") {
				t.Fatal("no log line")
			}
			// An ignored instances filter was a full instance listing: removals are gone.
			// The certificates that lost an instance keep CertView's earlier count.
			lost := certsOf(before, churn.Removed)
			sameLines(t, "ignored filter", withoutServed(objectLines(t, snap, r.clock.Now(), drop), lost),
				withoutServed(objectLines(t, freshFull(t, r), r.clock.Now(), nil), lost))
		})
	}
	t.Run("refused", func(t *testing.T) {
		r := incrementalRig(t, 300, 900, nil)
		r.pollAt(0)
		r.clock.Advance(time.Hour)
		r.srv.Sim.Churn(certviewtest.Churn{Rescan: 0.05, Remove: 2})
		r.srv.Sim.SetFilterFault("instance.scannedDate", certviewtest.FilterRefused)
		snap := r.pollAt(0)
		if snap.Kind != snapshot.PollFull {
			t.Fatalf("poll %s, want the fallback to a full listing", snap.Kind)
		}
		if got := telemetryValue(t, r.tel, "qualys_certview_incremental_disabled", "reason", telemetry.IncrementalOffFilterRefused); got != 1 {
			t.Fatalf("incremental_disabled{reason=filter_refused} %v", got)
		}
		if !strings.Contains(r.logs.String(), `reason=filter_refused err="certview: instances page 0: HTTP 400`) {
			t.Fatalf("no clear log line:\n%s", r.logs.String())
		}
		sameLines(t, "after the fallback", objectLines(t, snap, r.clock.Now(), nil), objectLines(t, freshFull(t, r), r.clock.Now(), nil))
		// Polls stay full; nothing stops.
		if snap := r.pollAt(time.Hour); snap.Kind != snapshot.PollFull {
			t.Fatalf("next poll %s", snap.Kind)
		}
	})
}

// TestRestartGoesOnIncrementally: the watermark is saved with the snapshot, so the
// first poll after a restart is incremental; a version 1 file loads, and its first poll
// is full.
func TestRestartGoesOnIncrementally(t *testing.T) {
	path := filepath.Join(t.TempDir(), "snap")
	r := incrementalRig(t, 300, 900, func(o *Options, _ *certview.Config) { o.SnapshotPath = path })
	first := r.pollAt(0)
	// A new process on the same file and simulator.
	r2 := &rig{t: t, clock: r.clock, srv: r.srv, logs: &syncBuffer{}, polls: make(chan reported, 10), tel: telemetry.New()}
	r2.loop = New(r.client, Options{Interval: time.Hour, FullInterval: 24 * time.Hour, Clock: r.clock,
		Telemetry: r2.tel, SnapshotPath: path, Thresholds: defaults})
	r2.loop.LoadSaved()
	loaded := r2.loop.Snapshot()
	if loaded == nil || !loaded.Watermark.Equal(first.Watermark) || !loaded.FullStarted.Equal(first.FullStarted) || loaded.MaxCertID != first.MaxCertID {
		t.Fatalf("the saved snapshot lost its watermark: %+v", loaded)
	}
	if got := telemetryValue(t, r2.tel, "qualys_certview_incremental_watermark_timestamp_seconds"); got != unixSeconds(first.Watermark) {
		t.Fatalf("watermark metric after the restart %v", got)
	}
	r.clock.Advance(time.Hour)
	r.srv.Sim.Churn(certviewtest.Churn{Rescan: 0.05, Add: 2})
	if err := r2.loop.Poll(context.Background()); err != nil {
		t.Fatal(err)
	}
	if snap := r2.loop.Snapshot(); snap.Kind != snapshot.PollIncremental {
		t.Fatalf("first poll after the restart %s, want incremental", snap.Kind)
	} else {
		sameLines(t, "after the restart", objectLines(t, snap, r.clock.Now(), nil), objectLines(t, freshFull(t, r), r.clock.Now(), nil))
	}

	// A file without a watermark (version 1 wrote none; the store loads it so): it
	// loads, and the next poll is full.
	records := first.Records
	records.Watermark, records.FullStarted, records.FullFinished = time.Time{}, time.Time{}, time.Time{}
	records.Certificates, records.Instances = slices.Clone(first.Certificates), slices.Clone(first.Instances)
	if err := store.Save(path, snapshot.Restore(records, nil)); err != nil {
		t.Fatal(err)
	}
	r3 := New(r.client, Options{Interval: time.Hour, FullInterval: 24 * time.Hour, Clock: r.clock, SnapshotPath: path})
	r3.LoadSaved()
	if r3.Snapshot() == nil || len(r3.Snapshot().Certificates) != len(first.Certificates) {
		t.Fatal("the file without a watermark did not load")
	}
	if err := r3.Poll(context.Background()); err != nil {
		t.Fatal(err)
	}
	if kind := r3.Snapshot().Kind; kind != snapshot.PollFull {
		t.Fatalf("first poll after loading a file without a watermark: %s, want full", kind)
	}
}

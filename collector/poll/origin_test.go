package poll

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/certview-exporter/certview_exporter/certview"
	"github.com/certview-exporter/certview_exporter/certview/certviewtest"
	"github.com/certview-exporter/certview_exporter/collector/snapshot"
	"github.com/certview-exporter/certview_exporter/collector/store"
)

var (
	originA      = snapshot.Fingerprint{Subscription: "subscription-a", Content: "content-1"}
	originAOther = snapshot.Fingerprint{Subscription: "subscription-a", Content: "content-2"}
	originB      = snapshot.Fingerprint{Subscription: "subscription-b", Content: "content-1"}
)

// originRig polls once under originA, saving the snapshot.
func originRig(t *testing.T) (*rig, *snapshot.Snapshot) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "snapshot")
	r := newRig(t, certviewtest.Inventory{Seed: 5, Certificates: 40, Instances: 90}, func(o *Options, _ *certview.Config) {
		o.SnapshotPath, o.Origin, o.FullInterval = path, originA, 24*time.Hour
	})
	if err := r.loop.Poll(context.Background()); err != nil {
		t.Fatal(err)
	}
	return r, r.loop.Snapshot()
}

// A saved snapshot of another subscription is never served; one of the same
// subscription listed under other settings is served, and the next poll is full.
func TestSavedSnapshotOfAnotherOrigin(t *testing.T) {
	r, first := originRig(t)
	other := r.newLoop(func(o *Options) { o.Origin = originB })
	other.LoadSaved()
	if other.Snapshot() != nil {
		t.Fatal("another subscription's snapshot is served")
	}
	if !strings.Contains(r.logs.String(), "is of another subscription") {
		t.Fatalf("the log does not say why:\n%s", r.logs.String())
	}
	same := r.newLoop(func(o *Options) { o.Origin = originAOther })
	same.LoadSaved()
	if s := same.Snapshot(); s == nil || len(s.Certificates) != len(first.Certificates) {
		t.Fatal("the same subscription's snapshot is not served")
	}
	r.clock.Advance(time.Hour)
	if plan := same.planPoll(same.Snapshot(), r.clock.Now()); plan.incremental || !plan.full {
		t.Fatalf("next poll %+v after other settings, want a full listing", plan)
	}
	if err := same.Poll(context.Background()); err != nil {
		t.Fatal(err)
	}
	if s := same.Snapshot(); s.Kind != snapshot.PollFull || s.Origin != originAOther {
		t.Fatalf("after the poll: %s snapshot of %+v", s.Kind, s.Origin)
	}
}

// A reload to other settings keeps serving the snapshot of the same subscription and
// lists everything next (an incremental poll would merge into records the new filters
// would not have listed); a reload to another subscription drops it at once.
func TestReloadToAnotherOrigin(t *testing.T) {
	r, _ := originRig(t)
	filtered := r.newLoop(func(o *Options) { o.Origin = originAOther })
	filtered.CarryOver(r.loop)
	if filtered.Snapshot() == nil {
		t.Fatal("the snapshot was dropped on a reload within the subscription")
	}
	r.clock.Advance(time.Hour)
	if kind, why := filtered.pollKind(filtered.Snapshot(), r.clock.Now()); kind != snapshot.PollFull || !strings.Contains(why, "other settings") {
		t.Fatalf("after a reload to other settings: %s (%s), want full", kind, why)
	}
	moved := r.newLoop(func(o *Options) { o.Origin = originB })
	moved.CarryOver(r.loop)
	if moved.Snapshot() != nil {
		t.Fatal("another subscription's snapshot is served after the reload")
	}
}

// A saved snapshot dated in the future is due now: the first poll does not wait for its
// date (which stopped polling for days, serving stale data).
func TestFutureDatedSnapshotIsDueNow(t *testing.T) {
	r, first := originRig(t)
	<-r.polls // the first loop's poll
	records := first.Records
	records.Taken = r.clock.Now().Add(48 * time.Hour)
	if err := store.Save(r.loop.opts.SnapshotPath, snapshot.Restore(records, nil)); err != nil {
		t.Fatal(err)
	}
	next := r.newLoop(func(o *Options) {
		o.AfterPoll = func(s *snapshot.Snapshot, err error) { r.polls <- reported{s, err} }
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); next.Run(ctx) }()
	defer func() { cancel(); <-done }()
	if p := r.nextPoll(); p.err != nil { // no clock moved: the poll came at once
		t.Fatal(p.err)
	}
	if !strings.Contains(r.logs.String(), "dated in the future") {
		t.Fatalf("no log line:\n%s", r.logs.String())
	}
}

// What an interrupted save left is removed at start.
func TestStartRemovesLeftoversOfAnInterruptedSave(t *testing.T) {
	r, _ := originRig(t)
	leftover := filepath.Join(filepath.Dir(r.loop.opts.SnapshotPath), ".snapshot.tmp-12345")
	if err := writeFile(leftover); err != nil {
		t.Fatal(err)
	}
	r.newLoop(nil).LoadSaved()
	if fileExists(leftover) {
		t.Fatal("the leftover of an interrupted save is still there")
	}
}

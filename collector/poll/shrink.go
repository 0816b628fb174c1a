package poll

import (
	"time"

	"github.com/certview-exporter/certview_exporter/collector/snapshot"
	"github.com/go-kit/log/level"
)

// DefaultMaxShrink is the share of the served snapshot's certificates (or instances) a
// full listing may lose before it is held for confirmation.
const DefaultMaxShrink = 0.5

// heldListing is a full listing held unpublished because it lost more than
// Options.MaxShrink of the served snapshot's records: an API that answers one listing
// `200 []` (or a handful of records) must not wipe the inventory and resolve every
// alert. Only its counts are kept: the listing that confirms it is published instead,
// being newer.
type heldListing struct {
	certificates, instances int
	since                   time.Time
	// lost says which records it lost past the share: its certificates, its instances.
	lost shrinkage
}

// shrinkReference is the largest inventory a full listing made current within
// referenceWindow. A listing is held when it falls short of it as of the served
// snapshot: otherwise listings that each lose a little less than the share could walk
// the inventory down, every one published (800 instances to 26 in five polls).
type shrinkReference struct {
	certificates, instances int
	at                      time.Time // when it was last raised
}

// referenceWindow is how long the largest inventory is remembered.
const referenceWindow = 24 * time.Hour

// noteReference raises the reference to made's counts, or starts it afresh from them
// when it is older than referenceWindow or fresh is set (a confirmed shrink, another
// subscription).
func (s *Loop) noteReference(made *snapshot.Snapshot, now time.Time, fresh bool) {
	c, i := len(made.Certificates), len(made.Instances)
	if fresh || now.Sub(s.ref.at) >= referenceWindow {
		s.ref = shrinkReference{certificates: c, instances: i, at: now}
		return
	}
	if c > s.ref.certificates || i > s.ref.instances {
		s.ref.certificates, s.ref.instances, s.ref.at = max(c, s.ref.certificates), max(i, s.ref.instances), now
	}
}

// shrinkage says which of a listing's records fell short of the served snapshot's past
// the share.
type shrinkage struct{ certificates, instances bool }

func (k shrinkage) any() bool { return k.certificates || k.instances }

// guardShrink decides whether made, a snapshot whose records of at least one API
// replace served's by a full listing, may be made current. It may not when it lost
// more than the configured share of served's certificates or instances and no listing
// is held yet: it is then held, and the next poll lists everything again. A second
// listing that loses the same records (certificates, instances, or both) confirms the
// first: the inventory really shrank. One that loses nothing replaces it; one that loses
// other records is held in its place, so that an API answering `200 []` to each API in
// turn never wipes either. The guard stands aside for no served snapshot, an empty one,
// one of another subscription, and for MaxShrink 1. A narrower filter shrinks the
// listing by design: its first listing is held, and the next confirms it.
func (s *Loop) guardShrink(served, made *snapshot.Snapshot, now time.Time) bool {
	lost := s.shrunk(served, made, now)
	h := s.held
	switch {
	case !lost.any():
		s.noteReference(made, now, served == nil || !sameSubscription(served.Origin, s.opts.Origin))
		if h != nil {
			s.held = nil
			s.opts.Telemetry.SetShrinkHeld(false, 0, 0)
			level.Warn(s.opts.Logger).Log("msg", "the next full listing did not confirm the shrunk listing held; dropping it and publishing the new one",
				"held_certificates", h.certificates, "held_instances", h.instances,
				"certificates", len(made.Certificates), "instances", len(made.Instances),
				"served_certificates", len(served.Certificates), "served_instances", len(served.Instances))
		}
		return true
	case h != nil && h.lost == lost:
		s.noteReference(made, now, true)
		s.held = nil
		s.opts.Telemetry.SetShrinkHeld(false, 0, 0)
		level.Warn(s.opts.Logger).Log("msg", "a second full listing confirms the shrink: the inventory shrank; publishing it",
			"certificates", len(made.Certificates), "instances", len(made.Instances),
			"served_certificates", len(served.Certificates), "served_instances", len(served.Instances),
			"held_certificates", h.certificates, "held_instances", h.instances, "held_since", h.since.UTC().Format(time.RFC3339))
		return true
	}
	msg := "a full listing lost more than poll.max_shrink of the inventory; holding it unpublished until the next full listing confirms it"
	if h != nil {
		msg = "a full listing lost other records than the one held; holding it in its place until the next full listing confirms it"
	}
	s.held = &heldListing{certificates: len(made.Certificates), instances: len(made.Instances), since: now, lost: lost}
	s.opts.Telemetry.ShrinkHeld(len(made.Certificates), len(made.Instances))
	level.Warn(s.opts.Logger).Log("msg", msg,
		"certificates", len(made.Certificates), "instances", len(made.Instances),
		"served_certificates", len(served.Certificates), "served_instances", len(served.Instances),
		"lost_certificates", lost.certificates, "lost_instances", lost.instances, "max_shrink", s.opts.MaxShrink)
	return false
}

// shrunk says which of made's records fall short of (1 - MaxShrink) of served's, or of
// the reference's (the largest inventory of the last referenceWindow), when the guard
// applies to served: not for MaxShrink 1, no served snapshot, or one of another
// subscription (one saved before fingerprints were kept counts as this one's).
func (s *Loop) shrunk(served, made *snapshot.Snapshot, now time.Time) shrinkage {
	if s.opts.MaxShrink >= 1 || served == nil || !sameSubscription(served.Origin, s.opts.Origin) {
		return shrinkage{}
	}
	certs, ins := len(served.Certificates), len(served.Instances)
	if now.Sub(s.ref.at) < referenceWindow {
		certs, ins = max(certs, s.ref.certificates), max(ins, s.ref.instances)
	}
	keep := 1 - s.opts.MaxShrink
	return shrinkage{
		certificates: float64(len(made.Certificates)) < keep*float64(certs),
		instances:    float64(len(made.Instances)) < keep*float64(ins),
	}
}

// sameSubscription says whether a snapshot of origin a is of the subscription of b; a
// snapshot without a fingerprint (saved before they were kept) is taken to be.
func sameSubscription(a, b snapshot.Fingerprint) bool {
	return a.Subscription == "" || a.Subscription == b.Subscription
}

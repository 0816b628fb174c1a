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
}

// guardShrink decides whether made, a snapshot whose records of at least one API
// replace served's by a full listing, may be made current. It may not when it lost
// more than the configured share of served's certificates or instances and no listing
// is held yet: it is then held, and the next poll lists everything again. A second
// listing that shrinks as far confirms the first (the inventory really shrank); one
// that does not replaces it. The guard stands aside for no served snapshot, an empty
// one, one listed under other settings (a narrower filter shrinks the listing by
// design), and for MaxShrink 1.
func (s *Loop) guardShrink(served, made *snapshot.Snapshot, now time.Time) bool {
	if !s.shrunk(served, made) {
		if h := s.held; h != nil {
			s.held = nil
			s.opts.Telemetry.SetShrinkHeld(false, 0, 0)
			level.Warn(s.opts.Logger).Log("msg", "the next full listing did not confirm the shrunk listing held; dropping it and publishing the new one",
				"held_certificates", h.certificates, "held_instances", h.instances,
				"certificates", len(made.Certificates), "instances", len(made.Instances),
				"served_certificates", len(served.Certificates), "served_instances", len(served.Instances))
		}
		return true
	}
	if h := s.held; h != nil {
		s.held = nil
		s.opts.Telemetry.SetShrinkHeld(false, 0, 0)
		level.Warn(s.opts.Logger).Log("msg", "a second full listing confirms the shrink: the inventory shrank; publishing it",
			"certificates", len(made.Certificates), "instances", len(made.Instances),
			"served_certificates", len(served.Certificates), "served_instances", len(served.Instances),
			"held_certificates", h.certificates, "held_instances", h.instances, "held_since", h.since.UTC().Format(time.RFC3339))
		return true
	}
	s.held = &heldListing{certificates: len(made.Certificates), instances: len(made.Instances), since: now}
	s.opts.Telemetry.ShrinkHeld(len(made.Certificates), len(made.Instances))
	level.Warn(s.opts.Logger).Log("msg", "a full listing lost more than poll.max_shrink of the inventory; holding it unpublished until the next full listing confirms it",
		"certificates", len(made.Certificates), "instances", len(made.Instances),
		"served_certificates", len(served.Certificates), "served_instances", len(served.Instances),
		"max_shrink", s.opts.MaxShrink)
	return false
}

// shrunk says whether made holds fewer certificates or instances than (1 - MaxShrink)
// of served's, when the guard applies to served.
func (s *Loop) shrunk(served, made *snapshot.Snapshot) bool {
	if s.opts.MaxShrink >= 1 || served == nil || served.Origin != s.opts.Origin {
		return false
	}
	keep := 1 - s.opts.MaxShrink
	return float64(len(made.Certificates)) < keep*float64(len(served.Certificates)) ||
		float64(len(made.Instances)) < keep*float64(len(served.Instances))
}

package poll

import (
	"math"
	"slices"
	"strconv"

	"github.com/certview-exporter/certview_exporter/certview"
)

// A full listing is cut into id ranges, listed one after the other, so that a listing
// cut short (a failure, a reload, a restart) keeps the ranges it finished and goes on
// from there. The vendor documents no order for its pages, and records shift between
// pages while a listing runs; a range counts as done only once it has been paged to its
// end, so whatever order the API keeps, a finished range holds every record it had.
//
// The ranges are planned from the ids the exporter knows: those of the previous snapshot
// (quantiles, so that each range holds about rangeRecords records), or, for a first
// listing, those of a probe: one page of everything above the ranges done so far. A short
// probe is the end of the listing. A full one gives the ids' spacing, and the ranges go
// on at that density, each range's width adjusted to what the last one held. A range
// that comes back empty (a gap in the ids, or the end) is followed by a probe again.

// rangePages is how many pages a range is planned to take at most: what a listing cut
// short loses at most, per API. A poll.timeout or a share of the budget that fits fewer
// makes the ranges smaller (see Loop.pagesPerRange). A range is planned to hold one record
// less than its pages, so that a range of the planned density ends on a short page
// instead of costing an empty one.
const rangePages = 25

// firstProbePages is how many pages the first probe of a listing without a previous
// snapshot may take (half a range at most): an API of up to that many pages is listed by
// it alone, at no cost over a plain listing, and a larger one gives a sample that many
// pages deep, which the ranges list again.
const firstProbePages = 5

// idRange is a step of a listing: the ids above After and up to Upto (inclusive), or,
// for a probe, the first Pages pages of every id above After.
type idRange struct {
	After int64 // math.MinInt64: from the lowest id
	Upto  int64 // math.MaxInt64: no upper bound
	Probe bool
	Pages int // a probe's pages
}

// rangePlan plans one API's listing and counts what it cost. Its fields are what a
// checkpoint saves.
type rangePlan struct {
	After  int64   // every id up to After is listed (math.MinInt64 at the start)
	Bounds []int64 // the upper bounds of the next ranges, planned from known ids
	Width  int64   // the width of the next range in ids when Bounds is empty; 0: probe
	Done   bool
	Ranges int // ranges (and probes) finished

	PerRange   int // records a range is planned to hold
	FirstProbe int // pages of the first probe, when no previous snapshot plans the ranges

	Pages   int // calls made, done ranges or not
	Records int // records of the ranges done
	Known   int // records the previous snapshot held (0: unknown)
}

// newRangePlan plans a listing from the ids the previous snapshot held (nil: none), in
// ranges of pages pages of pageSize records.
func newRangePlan(known []int64, pages, pageSize int) *rangePlan {
	perRange := max(pages*pageSize-1, 1)
	p := &rangePlan{After: math.MinInt64, Known: len(known), PerRange: perRange, FirstProbe: min(firstProbePages, max(1, pages/2))}
	if len(known) > 0 && len(known) <= perRange {
		p.Bounds = []int64{math.MaxInt64} // one range holds it all: a plain listing
		return p
	}
	if len(known) > 0 {
		ids := slices.Clone(known)
		slices.Sort(ids)
		ids = slices.Compact(ids)
		for k := perRange - 1; k < len(ids); k += perRange {
			p.Bounds = append(p.Bounds, ids[k])
		}
		// What lies above the last bound is found by a probe.
	}
	return p
}

// next is the step to list, and false when the listing is done.
func (p *rangePlan) next() (idRange, bool) {
	for len(p.Bounds) > 0 && p.Bounds[0] <= p.After {
		p.Bounds = p.Bounds[1:] // a bound at or below what is listed (a damaged plan) is passed
	}
	switch {
	case p.Done:
		return idRange{}, false
	case len(p.Bounds) > 0:
		return idRange{After: p.After, Upto: p.Bounds[0]}, true
	case p.Width > 0:
		return idRange{After: p.After, Upto: addCapped(p.After, p.Width)}, true
	case p.After == math.MinInt64 && p.Known == 0:
		return idRange{After: p.After, Upto: math.MaxInt64, Probe: true, Pages: max(p.FirstProbe, 1)}, true
	}
	return idRange{After: p.After, Upto: math.MaxInt64, Probe: true, Pages: 1}, true
}

// finished records that step r was listed whole: ids are the records it held, full says
// the probe's last page was full (more records lie above).
func (p *rangePlan) finished(r idRange, ids []int64, full bool) {
	p.Ranges++
	if r.Probe {
		if !full {
			p.Done = true
			return
		}
		// The probe's pages sample what lies above After: their spacing sets the width. The
		// next range reaches from After (no id between After and the sample is skipped,
		// whatever order the pages came in) to the width past the sample's lowest id, so
		// that a gap below the sample is crossed in one range.
		sorted := slices.Clone(ids)
		slices.Sort(sorted)
		p.Width = mulCapped(int64(p.PerRange), medianGap(sorted))
		if len(sorted) > 0 {
			// From the lower quartile, not the lowest: a few stray low ids (a sparse region
			// below the dense one) would otherwise make the range reach only them.
			p.Bounds = []int64{addCapped(max(p.After, sorted[len(sorted)/4]-1), p.Width)}
		}
		return
	}
	p.After = max(p.After, r.Upto)
	if r.Upto == math.MaxInt64 {
		p.Done = true
		return
	}
	planned := len(p.Bounds) > 0
	if planned {
		p.Bounds = p.Bounds[1:]
		if len(p.Bounds) > 0 {
			return
		}
	}
	switch n := int64(len(ids)); {
	case 2*n < int64(p.PerRange):
		// Sparse: a gap, or the end. A probe of what lies above costs one call and tells
		// which; the next range is planned from its page.
		p.Width = 0
	case planned:
		// The last planned range: the ranges go on at the width the plan had.
	default:
		want := int64(p.PerRange)
		w := p.Width
		if w > 0 {
			scaled := float64(w) * float64(want) / float64(n)
			scaled = math.Min(math.Max(scaled, float64(w)/8), float64(w)*8)
			w = int64(math.Min(scaled, float64(math.MaxInt64/2)))
		}
		p.Width = max(w, 1)
	}
}

// medianGap is the median difference between consecutive sorted ids, at least 1.
func medianGap(sorted []int64) int64 {
	if len(sorted) < 2 {
		return 1
	}
	gaps := make([]int64, 0, len(sorted)-1)
	for i := 1; i < len(sorted); i++ {
		g := sorted[i] - sorted[i-1]
		if g < 0 { // overflowed: ids at both ends of the int64 range
			g = math.MaxInt64 / 2
		}
		gaps = append(gaps, g)
	}
	slices.Sort(gaps)
	return max(gaps[len(gaps)/2], 1)
}

// holds says whether every id lies in r (After, Upto], none missing (0): what an API that
// keeps the range filter answers.
func (r idRange) holds(ids []int64) bool {
	for _, id := range ids {
		if id == 0 || id <= r.After || id > r.Upto {
			return false
		}
	}
	return true
}

// whole says whether r is every id (a plan that lists its API whole).
func (r idRange) whole() bool { return r.After == math.MinInt64 && r.Upto == math.MaxInt64 && !r.Probe }

// listWhole makes the rest of the plan one range of every id, from the start: for an API
// whose answers cannot be cut by id. The ranges done are listed again.
func (p *rangePlan) listWhole() {
	p.After, p.Bounds, p.Width = math.MinInt64, []int64{math.MaxInt64}, 0
}

// shrink halves the ranges still to list: a range that did not fit in a poll (its
// poll.timeout or its share of the budget) is listed in two.
func (p *rangePlan) shrink(pageSize int) bool {
	if p.PerRange < pageSize {
		return false
	}
	p.PerRange = max(p.PerRange/2, 1)
	p.Width = max(p.Width/2, 0)
	if len(p.Bounds) > 0 && p.After != math.MinInt64 {
		if mid := p.After + (p.Bounds[0]-p.After)/2; mid > p.After && mid < p.Bounds[0] {
			p.Bounds = append([]int64{mid}, p.Bounds...)
		}
	}
	return true
}

// mulCapped is a*b for positive a and b, at most math.MaxInt64/2.
func mulCapped(a, b int64) int64 {
	if a <= 0 || b <= 0 {
		return 0
	}
	if a > math.MaxInt64/2/b {
		return math.MaxInt64 / 2
	}
	return a * b
}

// addCapped is a+b, at most math.MaxInt64-1 (MaxInt64 means no upper bound).
func addCapped(a, b int64) int64 {
	if a > 0 && b > math.MaxInt64-1-a {
		return math.MaxInt64 - 1
	}
	return a + b
}

// terms are the filter terms that select r on field (certificate.id or instance.id):
// GREATER After and LESSER Upto+1, each left out where it is unbounded.
func (r idRange) terms(field string) []certview.FilterTerm {
	var t []certview.FilterTerm
	if r.After != math.MinInt64 {
		t = append(t, certview.FilterTerm{Field: field, Operator: "GREATER", Value: strconv.FormatInt(r.After, 10)})
	}
	if r.Upto != math.MaxInt64 {
		t = append(t, certview.FilterTerm{Field: field, Operator: "LESSER", Value: strconv.FormatInt(r.Upto+1, 10)})
	}
	return t
}

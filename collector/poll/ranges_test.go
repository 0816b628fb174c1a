package poll

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// listByPlan runs a plan against an API holding ids, which pages them in the given
// order (shuffled: the API keeps none that the plan may rely on), pageSize to a page, and
// returns the ids the finished ranges held and the calls it took. It fails after limit
// steps: a plan must end.
func listByPlan(t *testing.T, p *rangePlan, ids []int64, pageSize, limit int) (map[int64]int, int) {
	t.Helper()
	seen, calls := map[int64]int{}, 0
	for steps := 0; ; steps++ {
		step, ok := p.next()
		if !ok {
			return seen, calls
		}
		if steps > limit {
			t.Fatalf("the plan did not end in %d steps (after %d, width %d, bounds %v)", limit, p.After, p.Width, p.Bounds)
		}
		var in []int64
		for _, id := range ids {
			if id > step.After && id <= step.Upto {
				in = append(in, id)
			}
		}
		pages := len(in)/pageSize + 1
		if step.Probe && pages > step.Pages {
			pages = step.Pages
		}
		calls += pages
		got := in[:min(len(in), pages*pageSize)]
		full := step.Probe && len(in) >= pages*pageSize
		if !full {
			for _, id := range got {
				seen[id]++
			}
		}
		p.finished(step, got, full)
	}
}

// Whatever the ids (dense, sparse, in clumps, at both ends of int64, spaced past any
// width), the ranges hold each exactly once, and the plan ends.
func TestRangePlansHoldEveryIDOnce(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	dense := func(from int64, n int) []int64 {
		out := make([]int64, n)
		for i := range out {
			out[i] = from + int64(i)
		}
		return out
	}
	spaced := func(from, gap int64, n int) []int64 {
		out := make([]int64, n)
		for i := range out {
			out[i] = from + gap*int64(i)
		}
		return out
	}
	cases := map[string][]int64{
		"dense":                 dense(1_000_000, 30_000),
		"clumps and gaps":       append(append(dense(35_000, 3), 466_000), dense(1_000_000, 12_000)...),
		"int64 ends":            {math.MinInt64 + 1, -5, 1, 2, math.MaxInt64 - 1, math.MaxInt64},
		"spaced past any width": spaced(1, 2_000_000_000_000_000, 4_500),
		"sparse":                spaced(10, 7_919, 6_000),
		"one":                   {42},
		"none":                  nil,
	}
	for name, ids := range cases {
		shuffled := slices.Clone(ids)
		rnd.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		for _, planned := range []bool{false, true} {
			var known []int64
			if planned {
				known = ids
			}
			for _, pages := range []int{25, 4, 1} {
				p := newRangePlan(known, pages, 200)
				seen, calls := listByPlan(t, p, shuffled, 200, 100_000)
				for _, id := range ids {
					if seen[id] != 1 {
						t.Fatalf("%s (planned %v, %d pages a range): id %d listed %d times", name, planned, pages, id, seen[id])
					}
				}
				if len(seen) != len(ids) {
					t.Fatalf("%s: %d ids listed, the API holds %d", name, len(seen), len(ids))
				}
				_ = calls
			}
		}
	}
}

// A page of one record makes ranges of one record, not none.
func TestRangePlanOfOneRecordPages(t *testing.T) {
	p := newRangePlan([]int64{5, 6, 7}, 1, 1)
	seen, _ := listByPlan(t, p, []int64{7, 5, 6}, 1, 1_000)
	if len(seen) != 3 {
		t.Fatalf("listed %v", seen)
	}
}

// A plan halved mid-way still holds every id once.
func TestShrunkPlanHoldsEveryID(t *testing.T) {
	ids := make([]int64, 20_000)
	for i := range ids {
		ids[i] = int64(100 + i)
	}
	p := newRangePlan(ids, 25, 200)
	step, _ := p.next()
	var got []int64
	for _, id := range ids {
		if id > step.After && id <= step.Upto {
			got = append(got, id)
		}
	}
	p.finished(step, got, false)
	if !p.shrink(200) || p.PerRange != 2499 {
		t.Fatalf("shrunk to %d records a range", p.PerRange)
	}
	seen, _ := listByPlan(t, p, ids, 200, 10_000)
	for _, id := range got {
		seen[id]++
	}
	for _, id := range ids {
		if seen[id] != 1 {
			t.Fatalf("id %d listed %d times", id, seen[id])
		}
	}
}

// At 300,000 dense ids, planned or not, the ranges cost at most 2% more calls than a
// plain listing's minimum.
func TestRangePlanCost(t *testing.T) {
	ids := make([]int64, 300_000)
	for i := range ids {
		ids[i] = 5_000_000 + int64(i)
	}
	minimum := len(ids)/200 + 1
	for _, known := range [][]int64{nil, ids} {
		_, calls := listByPlan(t, newRangePlan(known, rangePages, 200), ids, 200, 10_000)
		if float64(calls) > 1.02*float64(minimum) {
			t.Errorf("planned %v: %d calls, minimum %d", known != nil, calls, minimum)
		}
	}
}

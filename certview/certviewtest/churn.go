package certviewtest

import (
	"math/rand/v2"
	"sort"
	"sync"
	"time"
)

// Churn is one round of changes to the inventory, as a subscription sees them between
// two polls.
type Churn struct {
	// Rescan is the fraction (0..1) of the live generated instances rescanned: each gets
	// a new scannedDate and a different grade, as every grade change comes with a rescan.
	Rescan float64
	// Lag sets the rescans' scannedDate this long before the simulator's clock, as when
	// the vendor ingests scan results late.
	Lag time.Duration
	// Add adds this many certificates, each on a new instance. Every other one gets an
	// id below every existing id, because the vendor documents no id order.
	Add int
	// Remove deletes this many live generated instances.
	Remove int
}

// ChurnResult says what a round changed, by instance id and certificate id.
type ChurnResult struct {
	Rescanned    []int64
	Added        []int64 // certificate ids
	AddedOn      []int64 // their new instances' ids
	Removed      []int64 // instance ids
	RescanCutoff time.Time
}

// churnState is what rounds of churn have changed; records are still made on demand.
type churnState struct {
	mu      sync.RWMutex
	round   uint64
	rescans map[int]rescan // generated instance index -> its last rescan
	added   int            // certificates added (and instances, one each)
	removed []int          // generated instance indices, sorted
}

type rescan struct {
	at      time.Time
	profile int // index into gradeCases
}

func newChurnState() *churnState { return &churnState{rescans: map[int]rescan{}} }

// Churn applies one round of changes at the simulator's current time.
func (s *Simulator) Churn(c Churn) ChurnResult {
	inv := s.inv
	cs := inv.churn
	now := s.opts.Clock.Now()
	cs.mu.Lock()
	defer cs.mu.Unlock()
	cs.round++
	r := rand.New(rand.NewPCG(inv.Seed, 0xC4<<56|cs.round))
	var res ChurnResult
	total := inv.Instances + cs.added
	isRemoved := func(j int) bool { return isIn(cs.removed, j) }
	pick := func(n int, taken map[int]bool, keep func(int) bool) []int {
		var out []int
		for tries := 0; len(out) < n && tries < 20*n+100; tries++ {
			j := r.IntN(total)
			if taken[j] || isRemoved(j) || keep(j) {
				continue
			}
			taken[j] = true
			out = append(out, j)
		}
		return out
	}
	taken := map[int]bool{}
	alive := total - len(cs.removed)
	at := now.Add(-c.Lag).Truncate(time.Second)
	res.RescanCutoff = at
	for _, j := range pick(int(c.Rescan*float64(alive)+0.5), taken, func(int) bool { return false }) {
		rs, ok := cs.rescans[j]
		old := inv.makeInstance(j, rs, ok).Grade
		p := r.IntN(len(gradeCases))
		for gradeCases[p].grade == "" || gradeCases[p].grade == old {
			p = (p + 1) % len(gradeCases)
		}
		cs.rescans[j] = rescan{at: at, profile: p}
		res.Rescanned = append(res.Rescanned, instanceIDBase+int64(j))
	}
	// The renewal families keep their instances.
	for _, j := range pick(c.Remove, taken, inv.familyInstance) {
		k := sort.SearchInts(cs.removed, j)
		cs.removed = append(cs.removed, 0)
		copy(cs.removed[k+1:], cs.removed[k:])
		cs.removed[k] = j
		res.Removed = append(res.Removed, instanceIDBase+int64(j))
	}
	for n := 0; n < c.Add; n++ {
		e := cs.added
		cs.added++
		j := inv.Instances + e
		cs.rescans[j] = rescan{at: now.Truncate(time.Second), profile: 8 + e%2} // A- or A+
		res.Added = append(res.Added, inv.certID(inv.Certificates+e))
		res.AddedOn = append(res.AddedOn, instanceIDBase+int64(j))
	}
	return res
}

// certID is generated certificate i's id. Added certificates (i at or above
// Certificates) alternate between ids above and below every base id.
func (inv *Inventory) certID(i int) int64 {
	if e := i - inv.Certificates; e >= 0 && e%2 == 1 {
		return certIDBase/2 + int64(e)
	}
	return certIDBase + int64(i)
}

// generated returns the counts of generated certificates and instances, churn included,
// and the removed instance indices (sorted; do not modify).
func (inv *Inventory) generated() (certs, instances int, removed []int) {
	if inv.churn == nil {
		return inv.Certificates, inv.Instances, nil
	}
	inv.churn.mu.RLock()
	defer inv.churn.mu.RUnlock()
	return inv.Certificates + inv.churn.added, inv.Instances + inv.churn.added, inv.churn.removed
}

// rescanOf returns generated instance j's last rescan, if any.
func (inv *Inventory) rescanOf(j int) (rescan, bool) {
	if inv.churn == nil {
		return rescan{}, false
	}
	inv.churn.mu.RLock()
	defer inv.churn.mu.RUnlock()
	rs, ok := inv.churn.rescans[j]
	return rs, ok
}

// Removed says whether generated instance j was removed by churn.
func (inv *Inventory) Removed(j int) bool {
	_, _, removed := inv.generated()
	return isIn(removed, j)
}

// nthAlive returns the generated index of the p-th instance not removed.
func nthAlive(p int, removed []int) int {
	j := p
	for _, r := range removed {
		if r > j {
			break
		}
		j++
	}
	return j
}

package exposition

import (
	"fmt"
	"hash/fnv"
	"net/url"
	"strconv"
	"time"

	"github.com/certview-exporter/certview_exporter/collector/snapshot"
)

// MaxShards bounds the shards parameter: at 100,000 certificates and 300,000 instances
// the largest of 32 shards is about 8 MB with owners on (the scale table), so more than
// 256 serves no scraper.
const MaxShards = 256

// shardCountsKept is how many shard counts (values of the shards parameter) a snapshot
// keeps rendered; a publication renders again the counts in use (shardCountIdle). One
// job scrapes one count; two allow a change of count, or two jobs, without a cut on
// every scrape (a third count in use renders its shard at each scrape: see shards).
// Each count kept holds about as much as the whole compressed exposition (60 MB at
// 100,000/300,000), twice over while a publication cuts the next snapshot, so the scale
// table's peak RSS is measured with both in use.
const shardCountsKept = 2

// shardCountIdle is how long a count stays in use after its last scrape: a publication
// cuts the new snapshot into the counts scraped while the previous one was served or
// within this time, so that a count someone tried once is not cut and held at every
// poll, while one scraped less often than the polls come is kept.
const shardCountIdle = 15 * time.Minute

// part is what a scrape serves of a snapshot's per-object series: the certificates and
// the instances, by index into Snapshot.Certificates and Snapshot.Instances.
type part struct {
	certs, insts []int32
}

// wholePart is every certificate and instance of s.
func wholePart(s *snapshot.Snapshot) *part {
	p := &part{certs: make([]int32, len(s.Certificates)), insts: make([]int32, len(s.Instances))}
	for i := range p.certs {
		p.certs[i] = int32(i)
	}
	for i := range p.insts {
		p.insts[i] = int32(i)
	}
	return p
}

// ShardOf is the shard, of n, that serves a certificate and the instances that present
// it: FNV-1a (64 bits) of its certhash, modulo n. It is part of the contract: a
// certificate stays in its shard for a given n across snapshots and releases.
func ShardOf(certhash string, n int) int {
	h := fnv.New64a()
	_, _ = h.Write([]byte(certhash))
	return int(h.Sum64() % uint64(n))
}

// shardSet is a snapshot cut into n shards, each with its static families compressed.
type shardSet struct {
	n      int
	parts  []*part
	static []*staticCache // nil where compressing failed

	// Guarded by prepared.shardMu: when a scrape last asked for this count (of this
	// snapshot or an earlier one), and whether one did while this snapshot was served.
	lastScrape time.Time
	scraped    bool
}

// cutShards cuts s into n shards and compresses each one's static families.
func (e *Exposition) cutShards(s *snapshot.Snapshot, n int) *shardSet {
	if e.cutting != nil {
		e.cutting(n)
	}
	set := &shardSet{n: n, parts: make([]*part, n), static: make([]*staticCache, n)}
	for i := range set.parts {
		set.parts[i] = &part{}
	}
	for i := range s.Certificates {
		p := set.parts[ShardOf(s.Certificates[i].CertHash, n)]
		p.certs = append(p.certs, int32(i))
	}
	for i := range s.Instances {
		p := set.parts[ShardOf(s.Instances[i].CertHash, n)]
		p.insts = append(p.insts, int32(i))
	}
	for i, p := range set.parts {
		set.static[i] = e.compressStatic(s, p)
	}
	return set
}

// shards returns the snapshot cut into n shards, cutting it on first use; scrape is the
// time of the scrape asking, zero for a publication. A scrape of a count not yet cut
// waits for the cut (every shard of it at once, one cut of p at a time); a scrape of a
// count already cut does not, whatever is being cut. When the counts kept are all in use
// (each scraped within shardCountIdle), a scrape of another count gets nil and renders
// its one shard itself (shardPart): a third job, or a client trying count after count,
// would otherwise evict a count in use at every scrape and have it cut again, every
// shard of it, at the next.
func (p *prepared) shards(e *Exposition, n int, scrape time.Time) *shardSet {
	if set := p.cutInto(n, scrape); set != nil {
		return set
	}
	if p.keptInUse(scrape) {
		return nil
	}
	p.cutMu.Lock()
	defer p.cutMu.Unlock()
	if set := p.cutInto(n, scrape); set != nil { // cut while this scrape waited
		return set
	}
	if p.keptInUse(scrape) {
		return nil
	}
	set := e.cutShards(p.snap, n)
	set.lastScrape, set.scraped = scrape, !scrape.IsZero()
	p.shardMu.Lock()
	defer p.shardMu.Unlock()
	if len(p.shardSets) == shardCountsKept { // drop the one scraped longest ago
		oldest := 0
		for k, kept := range p.shardSets {
			if kept.lastScrape.Before(p.shardSets[oldest].lastScrape) {
				oldest = k
			}
		}
		p.shardSets = append(p.shardSets[:oldest], p.shardSets[oldest+1:]...)
	}
	p.shardSets = append([]*shardSet{set}, p.shardSets...)
	return set
}

// keptInUse says whether a scrape at time scrape finds every count p keeps in use:
// shardCountsKept of them, each scraped less than shardCountIdle before. A publication
// (scrape zero) cuts what it is asked to.
func (p *prepared) keptInUse(scrape time.Time) bool {
	if scrape.IsZero() {
		return false
	}
	p.shardMu.Lock()
	defer p.shardMu.Unlock()
	if len(p.shardSets) < shardCountsKept {
		return false
	}
	for _, set := range p.shardSets {
		if scrape.Sub(set.lastScrape) >= shardCountIdle {
			return false
		}
	}
	return true
}

// shardPart is shard i of n of s, for a scrape that renders it without a cache (see
// shards): one pass over the certhashes, no compression ahead of the scrape.
func shardPart(s *snapshot.Snapshot, n, i int) *part {
	p := &part{}
	for k := range s.Certificates {
		if ShardOf(s.Certificates[k].CertHash, n) == i {
			p.certs = append(p.certs, int32(k))
		}
	}
	for k := range s.Instances {
		if ShardOf(s.Instances[k].CertHash, n) == i {
			p.insts = append(p.insts, int32(k))
		}
	}
	return p
}

// cutInto returns the count n if p has been cut into it, now the most recently used,
// else nil; a scrape (not zero) is noted on it.
func (p *prepared) cutInto(n int, scrape time.Time) *shardSet {
	p.shardMu.Lock()
	defer p.shardMu.Unlock()
	for k, set := range p.shardSets {
		if set.n == n {
			copy(p.shardSets[1:k+1], p.shardSets[:k])
			p.shardSets[0] = set
			if !scrape.IsZero() {
				set.scraped = true
				if scrape.After(set.lastScrape) {
					set.lastScrape = scrape
				}
			}
			return set
		}
	}
	return nil
}

// shardUse is a count p has been cut into and its scrapes.
type shardUse struct {
	n          int
	lastScrape time.Time
	scraped    bool
}

// shardUses lists the counts p has been cut into, most recently used first.
func (p *prepared) shardUses() []shardUse {
	p.shardMu.Lock()
	defer p.shardMu.Unlock()
	var uses []shardUse
	for _, set := range p.shardSets {
		uses = append(uses, shardUse{n: set.n, lastScrape: set.lastScrape, scraped: set.scraped})
	}
	return uses
}

// shardCounts lists the shard counts p has cut, most recently used first.
func (p *prepared) shardCounts() []int {
	var ns []int
	for _, u := range p.shardUses() {
		ns = append(ns, u.n)
	}
	return ns
}

// shardRequest is a scrape's shard parameters.
type shardRequest struct {
	sharded   bool
	shard, of int
}

// parseShard reads the shard and shards parameters of a raw query: both or neither, each
// once. A query that does not parse is refused rather than read in part: url.Query drops
// the pairs it cannot read, and ?shard=0;shards=4 served the whole exposition.
func parseShard(rawQuery string) (shardRequest, error) {
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return shardRequest{}, fmt.Errorf("query: %w", err)
	}
	shard, hasShard := q["shard"]
	shards, hasShards := q["shards"]
	if !hasShard && !hasShards {
		return shardRequest{}, nil
	}
	if !hasShard || !hasShards {
		return shardRequest{}, fmt.Errorf("the shard and shards parameters go together: shard=i&shards=N, 0 <= i < N")
	}
	if len(shards) > 1 {
		return shardRequest{}, fmt.Errorf("parameter shards given %d times: give it once", len(shards))
	}
	if len(shard) > 1 {
		return shardRequest{}, fmt.Errorf("parameter shard given %d times: give it once", len(shard))
	}
	n, err := strconv.Atoi(shards[0])
	if err != nil || n < 1 || n > MaxShards {
		return shardRequest{}, fmt.Errorf("parameter shards=%.20q: want a whole number from 1 to %d", shards[0], MaxShards)
	}
	i, err := strconv.Atoi(shard[0])
	if err != nil || i < 0 || i >= n {
		return shardRequest{}, fmt.Errorf("parameter shard=%.20q: want a whole number from 0 to %d (shards=%d)", shard[0], n-1, n)
	}
	return shardRequest{sharded: true, shard: i, of: n}, nil
}

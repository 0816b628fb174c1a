// Package snapshot owns the exporter's inventory as one poll left it: the certificates
// and instances, with label values already made valid, and what is derived from them at
// build time (the counts, the sorted expiry times, the owners). A Snapshot is immutable
// once built: a different derivation (a reload with other owner rules) makes a new one
// that shares the records.
//
// The package knows nothing of the poll loop, the file a snapshot is saved in, or the
// exposition that serves it. Its only upstream is the certview client's record types.
package snapshot

import (
	"slices"
	"sort"
	"time"

	"github.com/certview-exporter/certview_exporter/certview"
)

// Certificate is one certificate in a snapshot, with label values already sanitised.
type Certificate struct {
	ID                 int64 // the API's id; 0 when it sent none
	CertHash           string
	CommonName         string
	Organization       string
	Issuer             string
	RootIssuer         string
	IssuerCategory     string
	SignatureAlgorithm string
	KeyAlgorithm       string // RSA, EC, DSA, or what v2.1 reports
	KeySize            int
	SelfSigned         bool
	Type               string
	SerialNumber       string
	NotBefore          time.Time
	NotAfter           time.Time
	InstanceCount      int
	// Served is how many server instances present the certificate: CertView's
	// instanceCount, or the instances in the snapshot naming it when they are more
	// (an incremental poll can see a new instance before the certificate's count).
	Served        int
	WeakKey       bool
	WeakSignature bool

	// What successors and the issuer chain are found by. Records saved before they were
	// kept load with them empty: until the next full listing, such certificates match
	// successors by subject name and organization alone, and name no issuer.
	DN                 string // the subject's distinguished name, as the API sent it; "" when none
	SANs               string // the subject alternative names of every type: lower-cased, sorted, unique, one per line
	IssuerCertHash     string // the issuer's certhash, when the record names it
	RootIssuerCertHash string // the root issuer's certhash, when the record names it
}

// Instance is one server instance in a snapshot.
type Instance struct {
	ID        int64
	CertID    int64 // the served certificate's id; 0 when the API sent none
	CertHash  string
	AssetID   int64 // the asset's numeric id, which owner tags are looked up by
	AssetName string
	IP        string
	Port      int
	Protocol  string
	Service   string
	FQDN      string
	Grade     string // from Grades, or another sanitised value
	// GradeTrustIgnored is CertView's gradeWithTrustIgnored when it differs from Grade
	// (in practice for T, a certificate from a CA the scanner does not trust); else "".
	GradeTrustIgnored string
	Scores            [4]float64
	HasScore          [4]bool
	Protocols         certview.ProtocolSupport
}

// assetKey is the key of the instance's asset in Records.AssetTags.
func (in *Instance) assetKey() uint64 { return uint64(in.AssetID) }

// Poll kinds: a full listing, or an incremental poll merged into the previous snapshot.
const (
	PollFull        = "full"
	PollIncremental = "incremental"
)

// Records are what a snapshot is made of: everything else in it is derived from them.
// The store saves and loads them.
type Records struct {
	Taken        time.Time     // when the poll finished
	PollDuration time.Duration // how long it took
	Certificates []Certificate // sorted by certhash
	Instances    []Instance    // sorted by id

	// Kind is how the poll that made the snapshot listed: PollFull or PollIncremental.
	Kind string
	// FullStarted and FullFinished are when the full listing that the snapshot rests on
	// started and finished (incremental polls carry them over).
	FullStarted, FullFinished time.Time
	// Watermark is the largest instance scannedDate seen: an incremental poll asks for
	// the instances scanned since then, less an overlap. Zero: the next poll is full.
	Watermark time.Time
	// MaxCertID is the largest certificate id seen.
	MaxCertID int64

	// AssetTags are the tag names of the assets the certificates listing named, by
	// asset id, in the API's order; TagsListed says the listing asked for them
	// (ASSET_TAGS), which it does only when owners are configured.
	AssetTags  map[uint64][]string
	TagsListed bool

	// Origin is the fingerprint of the settings the records were listed under; zero for
	// a file saved before fingerprints were kept.
	Origin Fingerprint
}

// Fingerprint identifies the settings that decide what a listing holds, as hashes: whose
// inventory it is (the API and the account), and what of it is listed (filters, asset
// type, includes, excluded fields, owner rules, weak-key thresholds). Records of another
// subscription are never served; records of the same subscription listed under other
// settings are served until a full listing replaces them.
type Fingerprint struct {
	Subscription string
	Content      string
}

// Snapshot is the result of one complete poll: its records and what is derived from
// them. It is never modified after it is made.
type Snapshot struct {
	Records

	SelfSigned     int
	WeakKey        int
	WeakSignature  int
	GradeCounts    map[string]int // every entry of Grades is present
	ProtocolCounts [6]int         // instances supporting each certview.Protocol
	notAfter       []int64        // sorted unix seconds, for scrape-time expiry counts

	// LifetimeOver counts the certificates whose validity exceeds each of LifetimeCapDays.
	LifetimeOver [len(LifetimeCapDays)]int
	successor    []int32 // each certificate's successor, by index; -1 when none
	servedLeaves []int32 // served certificates naming each as their issuer or root issuer

	// Owners is resolved from AssetTags by the owner rules the snapshot was made with;
	// nil when owners are off or the records carry no tags.
	Owners *Owners
}

// Expired counts the certificates whose not-after lies before now.
func (s *Snapshot) Expired(now time.Time) int {
	return sort.Search(len(s.notAfter), func(i int) bool { return s.notAfter[i] >= now.Unix() })
}

// ExpiringWithin counts the certificates not yet expired at now whose not-after lies
// within d.
func (s *Snapshot) ExpiringWithin(now time.Time, d time.Duration) int {
	limit := now.Add(d).Unix()
	upto := sort.Search(len(s.notAfter), func(i int) bool { return s.notAfter[i] > limit })
	return upto - s.Expired(now)
}

// HasCertificate says whether the snapshot holds a certificate with this certhash.
func (s *Snapshot) HasCertificate(certhash string) bool {
	i := sort.Search(len(s.Certificates), func(i int) bool { return s.Certificates[i].CertHash >= certhash })
	return i < len(s.Certificates) && s.Certificates[i].CertHash == certhash
}

// ExpiryBucketDays are the upper bounds, in days, of the time-to-expiry histogram.
var ExpiryBucketDays = []float64{0, 7, 14, 30, 60, 90, 180, 365, 730}

// ExpiryHistogram describes the certificates' time to expiry at now as a histogram in
// seconds: the cumulative count at or below each of ExpiryBucketDays (an expired
// certificate counts in every bucket), the sum of the times, and the count of
// certificates with a not-after.
func (s *Snapshot) ExpiryHistogram(now time.Time) (buckets []uint64, sum float64, count uint64) {
	at := certview.UnixSeconds(now)
	buckets = make([]uint64, len(ExpiryBucketDays))
	for k, le := range ExpiryBucketDays {
		limit := at + le*86400
		buckets[k] = uint64(sort.Search(len(s.notAfter), func(i int) bool { return float64(s.notAfter[i]) > limit }))
	}
	// Summed as floats: an int64 sum of saturated far-future times would wrap.
	var total float64
	for _, t := range s.notAfter {
		total += float64(t)
	}
	n := float64(len(s.notAfter))
	return buckets, total - n*at, uint64(len(s.notAfter))
}

// WithOwners returns a snapshot of the same records with its owners resolved by rules
// (nil: owners off). s is not modified; the two share the records, read-only.
func (s *Snapshot) WithOwners(rules *OwnerRules) *Snapshot {
	out := *s
	out.Owners = resolveOwners(&out, rules)
	return &out
}

// assemble sorts and de-duplicates the records, derives the counts, the lifetimes, the
// successors and the issuer chain, and resolves the owners. It owns the slices in r.
func assemble(r Records, rules *OwnerRules) *Snapshot {
	s := &Snapshot{Records: r, GradeCounts: make(map[string]int, len(Grades))}
	certs, ins := r.Certificates, r.Instances
	// Two records with one key (a certhash under two ids, an instance id twice in a
	// loaded file) would make duplicate series: after a stable sort, keep the first.
	sort.SliceStable(certs, func(i, j int) bool { return certs[i].CertHash < certs[j].CertHash })
	kept := slices.CompactFunc(certs, func(a, b Certificate) bool { return a.CertHash == b.CertHash })
	s.Certificates = kept
	sort.SliceStable(ins, func(i, j int) bool { return ins[i].ID < ins[j].ID })
	s.Instances = slices.CompactFunc(ins, func(a, b Instance) bool { return a.ID == b.ID })
	s.notAfter = make([]int64, 0, len(kept))
	for i := range kept {
		c := &kept[i]
		if c.SelfSigned {
			s.SelfSigned++
		}
		if c.WeakKey {
			s.WeakKey++
		}
		if c.WeakSignature {
			s.WeakSignature++
		}
		if !c.NotAfter.IsZero() {
			s.notAfter = append(s.notAfter, c.NotAfter.Unix())
		}
	}
	sort.Slice(s.notAfter, func(i, j int) bool { return s.notAfter[i] < s.notAfter[j] })
	for _, g := range Grades {
		s.GradeCounts[g] = 0
	}
	naming := make(map[string]int, len(kept))
	for i := range s.Instances {
		in := &s.Instances[i]
		naming[in.CertHash]++
		s.GradeCounts[in.Grade]++
		for p := range s.ProtocolCounts {
			if in.Protocols.Supports(certview.Protocol(p)) {
				s.ProtocolCounts[p]++
			}
		}
	}
	for i := range kept {
		kept[i].Served = max(kept[i].InstanceCount, naming[kept[i].CertHash])
		for k, over := range lifetimeOver(&kept[i]) {
			if over {
				s.LifetimeOver[k]++
			}
		}
	}
	s.successor = successors(kept)
	s.servedLeaves = servedLeaves(kept)
	s.Owners = resolveOwners(s, rules)
	return s
}

// Restore makes a snapshot again from saved records, with its owners resolved by rules.
// The records were written by someone: label values are made valid again, as at a
// poll, and recurring ones shared again (an encoding need not keep the sharing).
func Restore(r Records, rules *OwnerRules) *Snapshot {
	b := NewBuilder(Options{})
	b.sanitise(&r)
	tags := r.AssetTags
	r.AssetTags = nil
	if r.TagsListed {
		b.keepAssetTags()
		for id, names := range tags {
			b.keepTags(int64(id), names)
		}
		r.AssetTags = b.assetTags
	}
	return assemble(r, rules)
}

// sanitise makes the label values of records that were written by someone valid and
// bounded again, as at a poll (without reporting cuts: the poll that listed them did),
// and shares recurring ones.
func (b *Builder) sanitise(r *Records) {
	for i := range r.Certificates {
		c := &r.Certificates[i]
		c.CertHash = b.boundedShare("", c.CertHash, maxCertHashBytes)
		for _, p := range []*string{&c.Organization, &c.Issuer, &c.RootIssuer} {
			*p = b.boundedShare("", *p, maxNameBytes)
		}
		for _, p := range []*string{&c.IssuerCategory, &c.SignatureAlgorithm, &c.KeyAlgorithm, &c.Type} {
			*p = b.boundedShare("", *p, maxShortBytes)
		}
		c.CommonName, _ = labelMax(c.CommonName, maxNameBytes)
		c.SerialNumber, _ = labelMax(c.SerialNumber, maxShortBytes)
		c.IssuerCertHash = b.boundedShare("", c.IssuerCertHash, maxCertHashBytes)
		c.RootIssuerCertHash = b.boundedShare("", c.RootIssuerCertHash, maxCertHashBytes)
		c.DN, _ = boundDN(c.DN)
		c.SANs = normaliseSANs(c.SANs)
	}
	for i := range r.Instances {
		in := &r.Instances[i]
		in.CertHash = b.boundedShare("", in.CertHash, maxCertHashBytes)
		in.Protocol = b.boundedShare("", in.Protocol, maxShortBytes)
		in.Service = b.boundedShare("", in.Service, maxShortBytes)
		in.FQDN = b.boundedShare("", in.FQDN, maxHostBytes)
		in.AssetName, _ = labelMax(in.AssetName, maxHostBytes)
		in.IP, _ = labelMax(in.IP, maxShortBytes)
		in.Grade = gradeValue(in.Grade)
		if in.GradeTrustIgnored != "" {
			in.GradeTrustIgnored = gradeValue(in.GradeTrustIgnored)
		}
		for k := range in.Scores {
			if in.HasScore[k] && !validScore(in.Scores[k]) {
				in.Scores[k], in.HasScore[k] = 0, false
			}
		}
	}
}

// Package collector holds the exporter's poll loop, the immutable snapshot it builds,
// and the Prometheus collector that renders it. A scrape reads the snapshot only; it
// never calls the API.
package collector

import (
	"slices"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/certview-exporter/certview_exporter/certview"
)

// Score categories, in the order of Instance.Scores.
var ScoreCategories = [4]string{"certificate", "protocol_support", "key_exchange", "cipher_strength"}

// Grades in order from best to worst; "none" is ungraded.
var Grades = []string{"A+", "A", "A-", "B", "C", "D", "E", "F", "T", "M", "none"}

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

// Poll kinds: a full listing, or an incremental poll merged into the previous snapshot.
const (
	PollFull        = "full"
	PollIncremental = "incremental"
)

// Snapshot is the result of one complete poll. It is never modified after Build.
type Snapshot struct {
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

	SelfSigned     int
	WeakKey        int
	WeakSignature  int
	GradeCounts    map[string]int // every entry of Grades is present
	ProtocolCounts [6]int         // instances supporting each certview.Protocol
	notAfter       []int64        // sorted unix seconds, for scrape-time expiry counts

	// AssetTags are the tag names of the assets the certificates listing named, by
	// asset id, in the API's order; TagsListed says the listing asked for them
	// (ASSET_TAGS), which it does only when owners are configured.
	AssetTags  map[uint64][]string
	TagsListed bool
	// Owners is resolved from AssetTags by the configured owner rules when the snapshot
	// is prepared for serving (see ResolveOwners); nil when owners are off.
	Owners *Owners

	static *staticCache // the static families, compressed by Exposition.Prepare
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

// Thresholds decide which keys and signatures are weak.
type Thresholds struct {
	WeakRSABits int // RSA and DSA keys below this are weak
	WeakECBits  int // EC keys below this are weak
}

// Builder accumulates a poll's pages into a snapshot.
type Builder struct {
	th        Thresholds
	certs     []Certificate
	ins       []Instance
	shared    map[string]string
	watermark time.Time // the largest scannedDate added
	maxCertID int64     // the largest certificate id added

	tags      bool                // keep the assets' tags (owners are configured)
	assetTags map[uint64][]string // by asset id
	tagLists  map[string][]string // one copy of each distinct tag list
}

// NewBuilder starts a snapshot.
func NewBuilder(th Thresholds) *Builder { return &Builder{th: th, shared: map[string]string{}} }

// KeepAssetTags makes the builder keep the tags of the certificates' assets, for owners;
// the certificates listing must ask for them (ASSET_TAGS).
func (b *Builder) KeepAssetTags() {
	b.tags = true
	b.assetTags = map[uint64][]string{}
	b.tagLists = map[string][]string{}
}

// keepTags notes an asset's tag names (a slice it may keep), sharing one copy of each
// distinct list.
func (b *Builder) keepTags(assetID int64, names []string) {
	if assetID == 0 {
		return // instances name their asset by id: an asset without one matches none
	}
	key := strings.Join(names, "\xff")
	list, ok := b.tagLists[key]
	if !ok {
		for i, n := range names {
			names[i] = b.share(n)
		}
		list = names
		b.tagLists[key] = list
	}
	b.assetTags[uint64(assetID)] = list
}

// Reserve sizes the builder for about the given counts (the previous snapshot's), so a
// large poll does not grow its slices by copying.
func (b *Builder) Reserve(certs, instances int) {
	b.certs = make([]Certificate, 0, certs+certs/20)
	b.ins = make([]Instance, 0, instances+instances/20)
	b.shared = make(map[string]string, certs+1000)
}

// share sanitises a label value that recurs across records (an issuer, an algorithm, a
// certhash named by every instance that serves it) and returns one copy of it for all:
// at 100,000 certificates that saves tens of megabytes.
func (b *Builder) share(s string) string {
	if v, ok := b.shared[s]; ok {
		return v
	}
	v := label(s)
	b.shared[s] = v
	return v
}

// AddCertificates converts a page of certificates. It keeps nothing of the page.
func (b *Builder) AddCertificates(page []certview.Certificate) {
	for i := range page {
		c := &page[i]
		alg := KeyAlgorithm(c.PublicKeyAlgorithm, c.SignatureAlgorithm)
		b.maxCertID = max(b.maxCertID, c.ID)
		b.certs = append(b.certs, Certificate{
			ID:                 c.ID,
			CertHash:           b.share(c.CertHash),
			CommonName:         label(c.Subject.Name),
			Organization:       b.share(c.Subject.Organization),
			Issuer:             b.share(c.Issuer.Name),
			RootIssuer:         b.share(c.RootIssuer.Name),
			IssuerCategory:     b.share(c.IssuerCategory),
			SignatureAlgorithm: b.share(c.SignatureAlgorithm),
			KeyAlgorithm:       b.share(alg),
			KeySize:            c.KeySize,
			SelfSigned:         c.SelfSigned,
			Type:               b.share(c.Type),
			SerialNumber:       label(c.SerialNumber),
			NotBefore:          c.ValidFrom.Time,
			NotAfter:           c.ValidTo.Time,
			InstanceCount:      c.InstanceCount,
			WeakKey:            WeakKey(alg, c.KeySize, b.th),
			WeakSignature:      WeakSignature(c.SignatureAlgorithm),
		})
		if b.tags {
			for k := range c.Assets {
				b.keepTags(c.Assets[k].ID, c.Assets[k].Tags.Names())
			}
		}
	}
}

// AddInstances converts a page of instances. It keeps nothing of the page.
func (b *Builder) AddInstances(page []certview.Instance) {
	for i := range page {
		in := &page[i]
		g := in.GradeSummary
		if in.ScannedDate.After(b.watermark) {
			b.watermark = in.ScannedDate.Time
		}
		inst := Instance{
			ID:        in.ID,
			CertID:    in.Certificate.ID,
			CertHash:  b.share(in.Certificate.CertHash),
			AssetID:   in.Asset.ID,
			AssetName: label(in.Asset.Name),
			IP:        label(in.Asset.PrimaryIP),
			Port:      in.Port,
			Protocol:  b.share(in.Protocol),
			Service:   b.share(in.Service),
			FQDN:      b.share(in.FQDN),
			Grade:     b.share(NormalizeGrade(in.EffectiveGrade())),
			Protocols: g.ProtocolSupport,
		}
		if ti := NormalizeGrade(g.GradeWithTrustIgnored); ti != "none" && ti != inst.Grade {
			inst.GradeTrustIgnored = b.share(ti)
		}
		for k, s := range []certview.OptFloat{g.CertificateScore, g.ProtocolSupportScore, g.KeyExchangeScore, g.CipherStrengthScore} {
			inst.Scores[k], inst.HasScore[k] = s.Value, s.Valid
		}
		b.ins = append(b.ins, inst)
	}
}

// Build sorts, de-duplicates and counts a full listing that started at started. The
// Builder must not be used afterwards.
func (b *Builder) Build(started, taken time.Time, took time.Duration) *Snapshot {
	s := newSnapshot(b.certs, b.ins, taken, took)
	s.Kind, s.FullStarted, s.FullFinished = PollFull, started, taken
	s.Watermark, s.MaxCertID = b.watermark, b.maxCertID
	s.AssetTags, s.TagsListed = b.assetTags, b.tags
	b.certs, b.ins, b.shared = nil, nil, nil
	return s
}

// Merge makes the snapshot of an incremental poll: the records added to the Builder
// replace prev's records of the same certhash or instance id, and the rest of prev's
// are kept. When replaceCerts (or replaceInstances) is set, what was added is a full
// listing of that endpoint and prev's records of it are dropped; with both set the
// result is a full listing. prev is not modified. The Builder must not be used
// afterwards.
func (b *Builder) Merge(prev *Snapshot, replaceCerts, replaceInstances bool, started, taken time.Time, took time.Duration) *Snapshot {
	// The new records go first: newSnapshot keeps the first of each key.
	certs, ins := b.certs, b.ins
	watermark, maxCertID := b.watermark, b.maxCertID
	if !replaceCerts {
		certs = append(certs, prev.Certificates...)
		maxCertID = max(maxCertID, prev.MaxCertID)
	}
	if !replaceInstances {
		ins = append(ins, prev.Instances...)
		if prev.Watermark.After(watermark) {
			watermark = prev.Watermark
		}
	}
	s := newSnapshot(certs, ins, taken, took)
	s.Kind, s.FullStarted, s.FullFinished = PollIncremental, prev.FullStarted, prev.FullFinished
	if replaceCerts && replaceInstances {
		s.Kind, s.FullStarted, s.FullFinished = PollFull, started, taken
	}
	s.Watermark, s.MaxCertID = watermark, maxCertID
	// The assets' tags come with the certificates: those listed now replace what prev
	// knew of their assets, and prev's others are kept.
	if b.tags && (replaceCerts || prev.TagsListed) {
		s.AssetTags, s.TagsListed = b.assetTags, true
		if !replaceCerts {
			s.AssetTags = make(map[uint64][]string, len(prev.AssetTags)+len(b.assetTags))
			for id, tags := range prev.AssetTags {
				s.AssetTags[id] = tags
			}
			for id, tags := range b.assetTags {
				s.AssetTags[id] = tags
			}
		}
	}
	b.certs, b.ins, b.shared = nil, nil, nil
	return s
}

// HasCertificate says whether the snapshot holds a certificate with this certhash.
func (s *Snapshot) HasCertificate(certhash string) bool {
	i := sort.Search(len(s.Certificates), func(i int) bool { return s.Certificates[i].CertHash >= certhash })
	return i < len(s.Certificates) && s.Certificates[i].CertHash == certhash
}

// newSnapshot sorts and de-duplicates the records and derives the counts. It owns the
// slices it is given.
func newSnapshot(certs []Certificate, ins []Instance, taken time.Time, took time.Duration) *Snapshot {
	s := &Snapshot{Taken: taken, PollDuration: took, GradeCounts: make(map[string]int, len(Grades))}
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
	}
	return s
}

// ExpiryBucketDays are the upper bounds, in days, of the time-to-expiry histogram.
var ExpiryBucketDays = []float64{0, 7, 14, 30, 60, 90, 180, 365, 730}

// ExpiryHistogram describes the certificates' time to expiry at now as a histogram in
// seconds: the cumulative count at or below each of ExpiryBucketDays (an expired
// certificate counts in every bucket), the sum of the times, and the count of
// certificates with a not-after.
func (s *Snapshot) ExpiryHistogram(now time.Time) (buckets []uint64, sum float64, count uint64) {
	at := float64(now.UnixNano()) / 1e9
	buckets = make([]uint64, len(ExpiryBucketDays))
	for k, le := range ExpiryBucketDays {
		limit := at + le*86400
		buckets[k] = uint64(sort.Search(len(s.notAfter), func(i int) bool { return float64(s.notAfter[i]) > limit }))
	}
	var total int64
	for _, t := range s.notAfter {
		total += t
	}
	n := float64(len(s.notAfter))
	return buckets, float64(total) - n*at, uint64(len(s.notAfter))
}

// GradeRank ranks a grade, higher is better: A+ 12, A 11, A- 10, B 9, C 8, D 7, E 6,
// F 3, T 2 (not trusted) and M 1 (name mismatch). Ungraded and unknown grades have none.
func GradeRank(grade string) (float64, bool) {
	r, ok := gradeRanks[grade]
	return r, ok
}

var gradeRanks = map[string]float64{"A+": 12, "A": 11, "A-": 10, "B": 9, "C": 8, "D": 7, "E": 6, "F": 3, "T": 2, "M": 1}

// KeyAlgorithm is the key family: v2.1's publicKeyAlgorithm when present, else what the
// signature algorithm names (ECDSA, DSA), else RSA.
func KeyAlgorithm(publicKeyAlgorithm, signatureAlgorithm string) string {
	if p := strings.ToUpper(strings.TrimSpace(publicKeyAlgorithm)); p != "" {
		switch {
		case strings.HasPrefix(p, "EC"):
			return "EC"
		case strings.Contains(p, "RSA"):
			return "RSA"
		case strings.Contains(p, "DSA"):
			return "DSA"
		}
		return label(p)
	}
	s := strings.ToUpper(signatureAlgorithm)
	switch {
	case strings.Contains(s, "ECDSA"):
		return "EC"
	case strings.Contains(s, "DSA"):
		return "DSA"
	case strings.Contains(s, "ED25519"), strings.Contains(s, "ED448"):
		return "EdDSA"
	}
	return "RSA"
}

// WeakKey says whether a key is below its family's threshold. An unknown size is not weak.
func WeakKey(alg string, bits int, th Thresholds) bool {
	if bits <= 0 {
		return false
	}
	switch alg {
	case "EC":
		return bits < th.WeakECBits
	case "RSA", "DSA":
		return bits < th.WeakRSABits
	}
	return false
}

// WeakSignature says whether a signature algorithm uses MD5 or SHA-1 (or MD2).
func WeakSignature(alg string) bool {
	s := strings.ToUpper(strings.ReplaceAll(alg, "-", ""))
	return strings.Contains(s, "MD5") || strings.Contains(s, "MD2") || strings.Contains(s, "SHA1")
}

// NormalizeGrade maps a grade to its label value: "none" when ungraded.
func NormalizeGrade(g string) string {
	g = strings.ToUpper(strings.TrimSpace(g))
	if g == "" {
		return "none"
	}
	return label(g)
}

// label makes a label value valid: UTF-8, no NUL or other control characters, and at
// most 256 bytes.
func label(s string) string {
	clean := true
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7f || s[i] >= utf8.RuneSelf {
			clean = false
			break
		}
	}
	if clean && len(s) <= 256 {
		return s
	}
	var b strings.Builder
	for _, r := range strings.ToValidUTF8(s, "\uFFFD") {
		switch {
		case r == 0:
			continue
		case r < 0x20 || r == 0x7f:
			b.WriteByte(' ')
		default:
			b.WriteRune(r)
		}
		if b.Len() >= 256 {
			break
		}
	}
	return strings.TrimSpace(b.String())
}

// assetKey is the key of the instance's asset in Snapshot.AssetTags.
func (in *Instance) assetKey() uint64 { return uint64(in.AssetID) }

package snapshot

import (
	"slices"
	"strings"
	"time"

	"github.com/certview-exporter/certview_exporter/certview"
)

// Options decide what a Builder derives from the records.
type Options struct {
	Thresholds Thresholds
	// Owners, when set, are the owner rules: the builder keeps the assets' tags (the
	// certificates listing must ask for them, ASSET_TAGS) and resolves the owners.
	Owners *OwnerRules
	// Origin is the fingerprint of the settings the records are listed under.
	Origin Fingerprint
	// Cut, when set, is told of each value of a record cut to its bound (see bounds.go),
	// by field; OutOfRange of each value outside its domain: a grade CertView does not
	// document (served as "other"), a score outside 0-100 (dropped).
	Cut, OutOfRange func(field string)
}

// Builder accumulates a poll's pages into a snapshot.
type Builder struct {
	opts      Options
	certs     []Certificate
	ins       []Instance
	shared    map[sharedKey]sharedValue
	watermark time.Time // the largest scannedDate added
	maxCertID int64     // the largest certificate id added

	tags      bool                // keep the assets' tags (owners are configured)
	assetTags map[uint64][]string // by asset id
	tagLists  map[string][]string // one copy of each distinct tag list

	// fqdns are the host instances' fqdns the certificates listing named, by instance id:
	// the instances listing carries none.
	fqdns map[int64]string
}

// NewBuilder starts a snapshot.
func NewBuilder(opts Options) *Builder {
	b := &Builder{opts: opts, shared: map[sharedKey]sharedValue{}}
	if opts.Owners != nil {
		b.keepAssetTags()
	}
	return b
}

// keepAssetTags makes the builder keep the tags of the certificates' assets.
func (b *Builder) keepAssetTags() {
	b.tags = true
	b.assetTags = map[uint64][]string{}
	b.tagLists = map[string][]string{}
}

// keepTags notes an asset's tag names (a slice it may keep), sharing one copy of each
// distinct list. With owner rules it keeps only the tags they read, each rule's first
// match, so that an asset holds no more tags than there are rules however many the API
// sends (the owners resolved from the kept tags are the same). Without rules (a saved
// snapshot restored) it keeps the first MaxTagsPerAsset.
func (b *Builder) keepTags(assetID int64, names []string) {
	if assetID == 0 {
		return // instances name their asset by id: an asset without one matches none
	}
	if b.opts.Owners != nil {
		names = b.opts.Owners.firstMatches(names, maxHostBytes)
	} else if len(names) > MaxTagsPerAsset {
		names = names[:MaxTagsPerAsset]
		b.cut(FieldTags)
	}
	for i, n := range names {
		names[i] = b.boundedShare(FieldTags, n, maxHostBytes)
	}
	key := strings.Join(names, "\xff")
	list, ok := b.tagLists[key]
	if !ok {
		list = slices.Clip(names)
		b.tagLists[key] = list
	}
	b.assetTags[uint64(assetID)] = list
}

// keepFQDNs notes the fqdns of the certificate's host instances.
func (b *Builder) keepFQDNs(c *certview.Certificate) {
	for i := range c.Assets {
		for _, hi := range c.Assets[i].HostInstances {
			if hi.ID != 0 && hi.FQDN != "" {
				b.noteFQDN(hi.ID, b.boundedShare(FieldFQDN, hi.FQDN, maxHostBytes))
			}
		}
	}
}

// noteFQDN notes the fqdn a certificate named for instance id.
func (b *Builder) noteFQDN(id int64, fqdn string) {
	if b.fqdns == nil {
		b.fqdns = map[int64]string{}
	}
	b.fqdns[id] = fqdn
}

// fillFQDNs gives the instances without an fqdn the one a certificate named for them,
// or else, from prev (may be nil), the one they had.
func (b *Builder) fillFQDNs(ins []Instance, prev *Snapshot) {
	var before map[int64]string
	for i := range ins {
		in := &ins[i]
		if in.FQDN != "" {
			continue
		}
		if v, ok := b.fqdns[in.ID]; ok {
			in.FQDN = v
			continue
		}
		if prev == nil {
			continue
		}
		if before == nil {
			before = make(map[int64]string)
			for k := range prev.Instances {
				if p := &prev.Instances[k]; p.FQDN != "" {
					before[p.ID] = p.FQDN
				}
			}
		}
		in.FQDN = before[in.ID]
	}
}

// FQDNs returns a copy of the fqdns the certificates named so far, for a checkpoint.
func (b *Builder) FQDNs() map[int64]string {
	out := make(map[int64]string, len(b.fqdns))
	for id, v := range b.fqdns {
		out[id] = v
	}
	return out
}

// Reserve sizes the builder for about the given counts (the previous snapshot's), so a
// large poll does not grow its slices by copying.
func (b *Builder) Reserve(certs, instances int) {
	b.certs = make([]Certificate, 0, certs+certs/20)
	b.ins = make([]Instance, 0, instances+instances/20)
	b.shared = make(map[sharedKey]sharedValue, certs+1000)
}

// share sanitises a label value that recurs across records (an issuer, an algorithm, a
// certhash named by every instance that serves it) and returns one copy of it for all:
// at 100,000 certificates that saves tens of megabytes. It bounds the value as label
// does; boundedShare bounds it tighter and reports the cut.
func (b *Builder) share(s string) string { return b.boundedShare("", s, maxHostBytes) }

// AddCertificates converts a page of certificates. It keeps nothing of the page.
func (b *Builder) AddCertificates(page []certview.Certificate) {
	for i := range page {
		c := &page[i]
		alg := KeyAlgorithm(c.PublicKeyAlgorithm, c.SignatureAlgorithm)
		b.maxCertID = max(b.maxCertID, c.ID)
		b.certs = append(b.certs, Certificate{
			ID:                 c.ID,
			CertHash:           b.boundedShare(FieldCertHash, c.CertHash, maxCertHashBytes),
			CommonName:         b.bounded(FieldCommonName, c.Subject.Name, maxNameBytes),
			Organization:       b.boundedShare(FieldOrganization, c.Subject.Organization, maxNameBytes),
			Issuer:             b.boundedShare(FieldIssuer, c.Issuer.Name, maxNameBytes),
			RootIssuer:         b.boundedShare(FieldIssuer, c.RootIssuer.Name, maxNameBytes),
			IssuerCategory:     b.boundedShare(FieldIssuerCategory, c.IssuerCategory, maxShortBytes),
			SignatureAlgorithm: b.boundedShare(FieldSignatureAlgorithm, c.SignatureAlgorithm, maxShortBytes),
			KeyAlgorithm:       b.boundedShare(FieldKeyAlgorithm, alg, maxShortBytes),
			KeySize:            c.KeySize,
			SelfSigned:         c.SelfSigned,
			Type:               b.boundedShare(FieldType, c.Type, maxShortBytes),
			SerialNumber:       b.bounded(FieldSerialNumber, c.SerialNumber, maxShortBytes),
			NotBefore:          c.ValidFrom.Time,
			NotAfter:           c.ValidTo.Time,
			InstanceCount:      c.InstanceCount,
			WeakKey:            WeakKey(alg, c.KeySize, b.opts.Thresholds),
			WeakSignature:      WeakSignature(c.SignatureAlgorithm),
		})
		b.keepSubject(&b.certs[len(b.certs)-1], c)
		if b.tags {
			for k := range c.Assets {
				b.keepTags(c.Assets[k].ID, c.Assets[k].Tags.Names())
			}
		}
		b.keepFQDNs(c)
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
		grade, known := NormalizeGrade(in.EffectiveGrade())
		if !known {
			b.outOfRange(FieldGrade)
		}
		inst := Instance{
			ID:        in.ID,
			CertID:    in.Certificate.ID,
			CertHash:  b.boundedShare(FieldCertHash, in.Certificate.CertHash, maxCertHashBytes),
			AssetID:   in.Asset.ID,
			AssetName: b.bounded(FieldAssetName, in.Asset.Name, maxHostBytes),
			IP:        b.bounded(FieldIP, in.Asset.PrimaryIP, maxShortBytes),
			Port:      in.Port,
			Protocol:  b.boundedShare(FieldProtocol, in.Protocol, maxShortBytes),
			Service:   b.boundedShare(FieldService, in.Service, maxShortBytes),
			FQDN:      b.boundedShare(FieldFQDN, in.FQDN, maxHostBytes),
			Grade:     grade,
			Protocols: g.ProtocolSupport,
		}
		ti, tiKnown := NormalizeGrade(g.GradeWithTrustIgnored)
		if !tiKnown {
			b.outOfRange(FieldGrade)
		}
		if ti != GradeNone && ti != inst.Grade {
			inst.GradeTrustIgnored = ti
		}
		for k, s := range []certview.OptFloat{g.CertificateScore, g.ProtocolSupportScore, g.KeyExchangeScore, g.CipherStrengthScore} {
			inst.Scores[k], inst.HasScore[k] = s.Value, s.Valid
			if s.Valid && !validScore(s.Value) {
				inst.Scores[k], inst.HasScore[k] = 0, false
				b.outOfRange(FieldScore)
			}
		}
		b.ins = append(b.ins, inst)
	}
}

// Build makes the snapshot of a full listing that started at started: sorted,
// de-duplicated, counted, and with its owners resolved. Its watermark is the largest
// scannedDate listed, but never after started: a listing that took hours read its first
// records hours before its last, and what changed since must be asked for again. The
// Builder must not be used afterwards.
func (b *Builder) Build(started, taken time.Time, took time.Duration) *Snapshot {
	watermark := b.watermark
	if watermark.After(started) {
		watermark = started
	}
	b.fillFQDNs(b.ins, nil)
	r := Records{Taken: taken, PollDuration: took, Certificates: b.certs, Instances: b.ins,
		Kind: PollFull, FullStarted: started, FullFinished: taken, Watermark: watermark, MaxCertID: b.maxCertID,
		AssetTags: b.assetTags, TagsListed: b.tags, Origin: b.opts.Origin}
	b.certs, b.ins, b.shared = nil, nil, nil
	return assemble(r, b.opts.Owners)
}

// Touched names the records that incremental polls fetched while a full listing ran.
type Touched struct {
	Instances    map[int64]bool  // by instance id
	Certificates map[string]bool // by certhash
}

// BuildOver makes the snapshot of a full listing that started at started while
// incremental polls kept served current. The records those polls fetched (touched) are
// served's: they are at least as new as the listing's, which may have read them hours
// earlier, and they include records made after the listing passed their ids. The rest is
// the listing's, so records removed from the inventory are dropped. The watermark is
// served's, whose polls covered the time the listing took. The Builder must not be used
// afterwards.
func (b *Builder) BuildOver(served *Snapshot, touched Touched, started, taken time.Time, took time.Duration) *Snapshot {
	if served == nil {
		return b.Build(started, taken, took)
	}
	r := Records{Taken: taken, PollDuration: took, Kind: PollFull, FullStarted: started, FullFinished: taken,
		Watermark: served.Watermark, MaxCertID: max(b.maxCertID, served.MaxCertID), TagsListed: b.tags, Origin: b.opts.Origin}
	if r.Watermark.IsZero() {
		r.Watermark = b.watermark
		if r.Watermark.After(started) {
			r.Watermark = started
		}
	}
	// The touched records go first: assemble keeps the first of each key.
	for i := range served.Certificates {
		if touched.Certificates[served.Certificates[i].CertHash] {
			r.Certificates = append(r.Certificates, served.Certificates[i])
		}
	}
	r.Certificates = append(r.Certificates, b.certs...)
	for i := range served.Instances {
		if touched.Instances[served.Instances[i].ID] {
			r.Instances = append(r.Instances, served.Instances[i])
		}
	}
	b.fillFQDNs(b.ins, served)
	r.Instances = append(r.Instances, b.ins...)
	if b.tags {
		r.AssetTags = make(map[uint64][]string, len(b.assetTags))
		for id, tags := range served.AssetTags {
			r.AssetTags[id] = tags
		}
		for id, tags := range b.assetTags {
			r.AssetTags[id] = tags
		}
	}
	b.certs, b.ins, b.shared = nil, nil, nil
	return assemble(r, b.opts.Owners)
}

// Absorb adds what other holds to b: a range of a listing, staged in its own Builder
// until the range was listed whole. other must not be used afterwards.
func (b *Builder) Absorb(other *Builder) {
	b.certs = append(b.certs, other.certs...)
	b.ins = append(b.ins, other.ins...)
	if other.watermark.After(b.watermark) {
		b.watermark = other.watermark
	}
	b.maxCertID = max(b.maxCertID, other.maxCertID)
	if b.tags {
		for id, tags := range other.assetTags {
			b.assetTags[id] = tags
		}
	}
	for id, v := range other.fqdns {
		b.noteFQDN(id, v)
	}
	other.certs, other.ins, other.shared, other.assetTags, other.fqdns = nil, nil, nil, nil, nil
}

// Partial returns what b holds so far as records (unsorted, perhaps with repeats), for a
// checkpoint of a listing that has not ended. It copies the tags and the slice headers:
// b only ever appends, so the records it shares stay as they are.
func (b *Builder) Partial() Records {
	r := Records{Certificates: b.certs[:len(b.certs):len(b.certs)], Instances: b.ins[:len(b.ins):len(b.ins)],
		Watermark: b.watermark, MaxCertID: b.maxCertID, TagsListed: b.tags}
	if b.tags {
		r.AssetTags = make(map[uint64][]string, len(b.assetTags))
		for id, tags := range b.assetTags {
			r.AssetTags[id] = tags
		}
	}
	return r
}

// Resume starts a builder that holds the partial records of a checkpoint (see Partial
// and FQDNs), their label values made valid and shared again as Restore does.
func Resume(opts Options, r Records, fqdns map[int64]string) *Builder {
	b := NewBuilder(opts)
	b.sanitise(&r)
	for id, v := range fqdns {
		b.noteFQDN(id, b.share(v))
	}
	b.certs, b.ins = r.Certificates, r.Instances
	b.watermark, b.maxCertID = r.Watermark, r.MaxCertID
	if b.tags && r.TagsListed {
		for id, names := range r.AssetTags {
			b.keepTags(int64(id), names)
		}
	}
	return b
}

// Merge makes the snapshot of an incremental poll: the records added to the Builder
// replace prev's records of the same certhash or instance id, and the rest of prev's
// are kept. When replaceCerts (or replaceInstances) is set, what was added is a full
// listing of that endpoint and prev's records of it are dropped; with both set the
// result is a full listing. prev is not modified. The Builder must not be used
// afterwards.
func (b *Builder) Merge(prev *Snapshot, replaceCerts, replaceInstances bool, started, taken time.Time, took time.Duration) *Snapshot {
	// The new records go first: assemble keeps the first of each key.
	b.fillFQDNs(b.ins, prev)
	r := Records{Taken: taken, PollDuration: took, Certificates: b.certs, Instances: b.ins,
		Kind: PollIncremental, FullStarted: prev.FullStarted, FullFinished: prev.FullFinished,
		Watermark: b.watermark, MaxCertID: b.maxCertID, Origin: b.opts.Origin}
	if !replaceCerts {
		r.Certificates = append(r.Certificates, prev.Certificates...)
		r.MaxCertID = max(r.MaxCertID, prev.MaxCertID)
	}
	if !replaceInstances {
		r.Instances = append(r.Instances, prev.Instances...)
		if prev.Watermark.After(r.Watermark) {
			r.Watermark = prev.Watermark
		}
	}
	if replaceCerts && replaceInstances {
		r.Kind, r.FullStarted, r.FullFinished = PollFull, started, taken
	}
	// The assets' tags come with the certificates: those listed now replace what prev
	// knew of their assets, and prev's others are kept.
	if b.tags && (replaceCerts || prev.TagsListed) {
		r.AssetTags, r.TagsListed = b.assetTags, true
		if !replaceCerts {
			r.AssetTags = make(map[uint64][]string, len(prev.AssetTags)+len(b.assetTags))
			for id, tags := range prev.AssetTags {
				r.AssetTags[id] = tags
			}
			for id, tags := range b.assetTags {
				r.AssetTags[id] = tags
			}
		}
	}
	b.certs, b.ins, b.shared = nil, nil, nil
	return assemble(r, b.opts.Owners)
}

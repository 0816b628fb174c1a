package snapshot

import (
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
}

// Builder accumulates a poll's pages into a snapshot.
type Builder struct {
	opts      Options
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
func NewBuilder(opts Options) *Builder {
	b := &Builder{opts: opts, shared: map[string]string{}}
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
			WeakKey:            WeakKey(alg, c.KeySize, b.opts.Thresholds),
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

// Build makes the snapshot of a full listing that started at started: sorted,
// de-duplicated, counted, and with its owners resolved. The Builder must not be used
// afterwards.
func (b *Builder) Build(started, taken time.Time, took time.Duration) *Snapshot {
	r := Records{Taken: taken, PollDuration: took, Certificates: b.certs, Instances: b.ins,
		Kind: PollFull, FullStarted: started, FullFinished: taken, Watermark: b.watermark, MaxCertID: b.maxCertID,
		AssetTags: b.assetTags, TagsListed: b.tags}
	b.certs, b.ins, b.shared = nil, nil, nil
	return assemble(r, b.opts.Owners)
}

// Merge makes the snapshot of an incremental poll: the records added to the Builder
// replace prev's records of the same certhash or instance id, and the rest of prev's
// are kept. When replaceCerts (or replaceInstances) is set, what was added is a full
// listing of that endpoint and prev's records of it are dropped; with both set the
// result is a full listing. prev is not modified. The Builder must not be used
// afterwards.
func (b *Builder) Merge(prev *Snapshot, replaceCerts, replaceInstances bool, started, taken time.Time, took time.Duration) *Snapshot {
	// The new records go first: assemble keeps the first of each key.
	r := Records{Taken: taken, PollDuration: took, Certificates: b.certs, Instances: b.ins,
		Kind: PollIncremental, FullStarted: prev.FullStarted, FullFinished: prev.FullFinished,
		Watermark: b.watermark, MaxCertID: b.maxCertID}
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

package snapshot

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"unicode/utf8"
)

// What a snapshot keeps of an API record is bounded, field by field, so that an API
// that sends a 60 KB name on every record cannot fill the memory: each kept string has a
// length in bytes, each kept list a count. The bounds sit above what the standards allow
// (RFC 5280's upper bounds: 64 characters for a common or organization name, 20 octets
// for a serial number; 253 bytes for a DNS name), so a real inventory loses nothing.
// A value past its bound is cut (a string to its bound on a rune boundary, a list to its
// first elements) and reported to Options.Cut with the field's name.
const (
	maxCertHashBytes = 128 // a SHA-256 certhash is 64 hex digits
	maxNameBytes     = 128 // common name, organization, issuer and root issuer names
	maxShortBytes    = 64  // serial numbers, IP addresses, algorithms, types, protocols, services
	maxHostBytes     = 256 // fqdns, asset names, tag names

	// MaxDNBytes bounds a subject DN. A longer one is kept as its digest, "sha256:" and
	// the first 32 hex digits (128 bits) of its SHA-256: successors compare DNs only for
	// equality, which the digest keeps, and most DNs are longer than it (so it saves
	// memory on every inventory, not only on a hostile one).
	MaxDNBytes = len(dnDigestPrefix) + 32
	// MaxSANBytes bounds a certificate's SAN list, its names joined by newlines, sorted:
	// the names that do not fit are dropped. MaxSANNameBytes bounds one name (a DNS
	// name is at most 253 bytes): a longer one is dropped.
	MaxSANBytes     = 512
	MaxSANNameBytes = 253
	// MaxTagsPerAsset bounds the tags kept of an asset, in the API's order.
	MaxTagsPerAsset = 32
)

// Fields named to Options.Cut and Options.OutOfRange: the values of the field label of
// the exporter's counters.
const (
	FieldCertHash           = "certhash"
	FieldCommonName         = "common_name"
	FieldOrganization       = "organization"
	FieldIssuer             = "issuer"
	FieldIssuerCategory     = "issuer_category"
	FieldSignatureAlgorithm = "signature_algorithm"
	FieldKeyAlgorithm       = "key_algorithm"
	FieldType               = "type"
	FieldSerialNumber       = "serial_number"
	FieldDN                 = "dn"
	FieldSANs               = "subject_alternative_names"
	FieldAssetName          = "asset_name"
	FieldIP                 = "ip"
	FieldProtocol           = "protocol"
	FieldService            = "service"
	FieldFQDN               = "fqdn"
	FieldTags               = "tags"
	FieldGrade              = "grade"
	FieldScore              = "score"
)

// CutFields lists the fields Options.Cut names; OutOfRangeFields those Options.OutOfRange
// names. Both are for seeding the counters.
var (
	CutFields = []string{FieldCertHash, FieldCommonName, FieldOrganization, FieldIssuer, FieldIssuerCategory,
		FieldSignatureAlgorithm, FieldKeyAlgorithm, FieldType, FieldSerialNumber, FieldDN, FieldSANs, FieldAssetName,
		FieldIP, FieldProtocol, FieldService, FieldFQDN, FieldTags}
	OutOfRangeFields = []string{FieldGrade, FieldScore}
)

// cut reports a value of field cut to its bound; a field of "" (a saved record bounded
// again, or a value share bounds) is not reported.
func (b *Builder) cut(field string) {
	if b.opts.Cut != nil && field != "" {
		b.opts.Cut(field)
	}
}

// outOfRange reports a value of field outside its domain, replaced or dropped.
func (b *Builder) outOfRange(field string) {
	if b.opts.OutOfRange != nil {
		b.opts.OutOfRange(field)
	}
}

// bounded is label with a bound of max bytes, reporting a cut of field.
func (b *Builder) bounded(field, s string, max int) string {
	v, cut := labelMax(s, max)
	if cut {
		b.cut(field)
	}
	return v
}

// sharedKey keys the shared map: a raw value under its field's bound, so that one value
// named by fields of different bounds is bounded for each.
type sharedKey struct {
	raw string
	max int
}

// sharedValue is a value made valid and bounded, and whether that cut it.
type sharedValue struct {
	v   string
	cut bool
}

// boundedShare is share with a bound of max bytes, reporting a cut of field each time a
// value is cut (once for each record that names it). Only bounded strings become keys of
// the shared map: a value longer than the widest bound is cut to it before it is looked
// up, so the map holds no copy of a long one.
func (b *Builder) boundedShare(field, s string, max int) string {
	longCut := false
	if len(s) > maxHostBytes {
		s, longCut = labelMax(s, maxHostBytes)
	}
	k := sharedKey{s, max}
	sv, ok := b.shared[k]
	if !ok {
		sv.v, sv.cut = labelMax(s, max)
		b.shared[k] = sv
	}
	if longCut || sv.cut {
		b.cut(field)
	}
	return sv.v
}

// labelMax makes a label value valid: UTF-8, no NUL or other control characters, and at
// most max bytes, cut on a rune boundary. cut says whether runes were dropped to fit.
func labelMax(s string, max int) (v string, cut bool) {
	clean := len(s) <= max
	for i := 0; clean && i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7f || s[i] >= utf8.RuneSelf {
			clean = false
		}
	}
	if clean {
		return s, false
	}
	var out strings.Builder
	out.Grow(min(len(s), max))
	for _, r := range strings.ToValidUTF8(s, "\uFFFD") {
		switch {
		case r == 0:
			continue
		case r < 0x20 || r == 0x7f:
			r = ' '
		}
		if out.Len()+utf8.RuneLen(r) > max {
			cut = true
			break
		}
		out.WriteRune(r)
	}
	return strings.TrimSpace(out.String()), cut
}

// dnDigestPrefix starts a DN kept as its digest.
const dnDigestPrefix = "sha256:"

// boundDN trims a subject DN and keeps one past MaxDNBytes as its digest. cut says
// whether it was longer than dnCutBytes, the length that counts as cut: a DN of
// ordinary length kept as its digest loses nothing that is used, and is not counted.
func boundDN(dn string) (string, bool) {
	dn = strings.TrimSpace(dn)
	if len(dn) <= MaxDNBytes {
		return dn, false
	}
	sum := sha256.Sum256([]byte(dn))
	return dnDigestPrefix + hex.EncodeToString(sum[:16]), len(dn) > dnCutBytes
}

// dnCutBytes is the DN length past which a DN counts as cut: RFC 5280's upper bounds
// for the attributes of a subject add up to well under it.
const dnCutBytes = 1024

// boundSANs joins sorted, unique names into a SAN list of at most MaxSANBytes: names
// longer than MaxSANNameBytes are dropped, and the list stops before the first name that
// does not fit: what is kept is a prefix of the sorted names, so two certificates cut
// alike still compare. cut says whether any name was dropped.
func boundSANs(names []string) (string, bool) {
	cut := false
	kept := names[:0]
	size := -1 // no newline before the first name
	for _, n := range names {
		if len(n) > MaxSANNameBytes {
			cut = true
			continue
		}
		if size+1+len(n) > MaxSANBytes {
			cut = true
			break
		}
		size += 1 + len(n)
		kept = append(kept, n)
	}
	return strings.Join(kept, "\n"), cut
}

// validScore says whether a category score lies in its domain, 0 to 100. A score
// outside it (1e308 has been sent) is dropped: it would swamp every sum and average
// over the fleet.
func validScore(v float64) bool { return v >= 0 && v <= 100 }

package certviewtest

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// filter is the subset of the vendor's filter syntax the simulator evaluates.
type filter struct {
	Filters []struct {
		Field    string `json:"field"`
		Operator string `json:"operator"`
		Value    string `json:"value"`
	} `json:"filters"`
	Operation string `json:"operation"`
}

// getter returns a field's values; a record can have several (one per asset).
type getter func(field string) []string

func parseFilter(raw json.RawMessage, fields map[string]bool) (*filter, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var f filter
	if err := json.Unmarshal(raw, &f); err != nil {
		return nil, fmt.Errorf("filter: %v", err)
	}
	switch f.Operation {
	case "", "AND", "OR":
	default:
		return nil, fmt.Errorf("filter: unsupported operation %q", f.Operation)
	}
	for _, t := range f.Filters {
		if !fields[t.Field] {
			return nil, fmt.Errorf("filter: unsupported field %q", t.Field)
		}
		switch t.Operator {
		case "EQUALS", "NOT_EQUALS", "CONTAINS", "IN", "IS_EMPTY", "IS_NOT_EMPTY",
			"GREATER", "LESSER", "GREATER_THAN_EQUAL", "LESS_THAN_EQUAL":
		default:
			return nil, fmt.Errorf("filter: unsupported operator %q", t.Operator)
		}
	}
	if len(f.Filters) == 0 {
		return nil, nil
	}
	return &f, nil
}

// match evaluates the filter; a nil filter matches everything.
func (f *filter) match(get getter) bool {
	if f == nil {
		return true
	}
	or := f.Operation == "OR"
	for _, t := range f.Filters {
		ok := term(get(t.Field), t.Operator, t.Value)
		if or && ok {
			return true
		}
		if !or && !ok {
			return false
		}
	}
	return !or
}

func term(values []string, op, want string) bool {
	any := func(pred func(string) bool) bool {
		for _, v := range values {
			if pred(v) {
				return true
			}
		}
		return false
	}
	switch op {
	case "EQUALS":
		return any(func(v string) bool { return strings.EqualFold(v, want) })
	case "NOT_EQUALS":
		return !any(func(v string) bool { return strings.EqualFold(v, want) })
	case "CONTAINS":
		return any(func(v string) bool { return strings.Contains(strings.ToLower(v), strings.ToLower(want)) })
	case "IN":
		set := strings.Split(want, ",")
		return any(func(v string) bool {
			for _, w := range set {
				if strings.EqualFold(strings.TrimSpace(w), v) {
					return true
				}
			}
			return false
		})
	case "IS_EMPTY":
		return !any(func(v string) bool { return v != "" })
	case "IS_NOT_EMPTY":
		return any(func(v string) bool { return v != "" })
	}
	w, ok := number(want)
	if !ok {
		return false
	}
	return any(func(v string) bool {
		n, ok := number(v)
		if !ok {
			return false
		}
		switch op {
		case "GREATER":
			return n > w
		case "LESSER":
			return n < w
		case "GREATER_THAN_EQUAL":
			return n >= w
		default:
			return n <= w
		}
	})
}

// number reads a number, or a date in the formats the vendor documents (as epoch ms).
func number(s string) (float64, bool) {
	if n, err := strconv.ParseFloat(s, 64); err == nil {
		return n, true
	}
	for _, layout := range []string{"2006-01-02T15:04:05Z", "2006-01-02T15:04Z", "2006-01-02T15Z", "2006-01-02Z", "2006-01-02", "2006-01-02 15:04:05", time.RFC3339Nano} {
		if t, err := time.Parse(layout, s); err == nil {
			return float64(t.UnixMilli()), true
		}
	}
	return 0, false
}

func certificateFields(version string) map[string]bool {
	m := map[string]bool{
		"certificate.id": true, "certificate.certhash": true, "certificate.type": true,
		"certificate.isSelfSigned": true, "certificate.keySize": true, "certificate.signatureAlgorithm": true,
		"certificate.issuerCategory": true, "certificate.validToDate": true, "certificate.validFromDate": true,
		"certificate.name": true, "asset.name": true, "asset.wasUrl": true,
	}
	if version != "v2" {
		m["certificate.publicKeyAlgorithm"] = true
	}
	return m
}

var instanceFields = map[string]bool{
	"instance.scannedDate": true,
	"instance.id":          true, "instance.port": true, "instance.grade": true, "instance.protocol": true,
	"instance.service": true, "asset.name": true, "asset.primaryIp": true, "certificate.certhash": true,
	"certificate.name": true,
}

// certificateGetter reads listing record k's fields, making the whole record only for
// the fields that need it: a filter on id or certhash scans a large inventory cheaply.
func (inv *Inventory) certificateGetter(k int) getter {
	var rec *CertificateRecord
	full := func() *CertificateRecord {
		if rec == nil {
			r := inv.Certificate(k)
			rec = &r
		}
		return rec
	}
	i := k - len(inv.sampleCerts())
	return func(field string) []string {
		c := full
		switch field {
		case "certificate.id":
			if i >= 0 {
				return []string{strconv.FormatInt(inv.certID(i), 10)}
			}
			return []string{strconv.FormatInt(c().ID, 10)}
		case "certificate.certhash":
			if i >= 0 {
				return []string{hash(inv.Seed, "cert", i)}
			}
			return []string{c().CertHash}
		case "certificate.type":
			return []string{c().Type}
		case "certificate.isSelfSigned":
			return []string{strconv.FormatBool(c().SelfSigned)}
		case "certificate.keySize":
			return []string{strconv.Itoa(c().KeySize)}
		case "certificate.signatureAlgorithm":
			return []string{c().SignatureAlgorithm}
		case "certificate.publicKeyAlgorithm":
			return []string{c().PublicKeyAlgorithm}
		case "certificate.issuerCategory":
			return []string{c().IssuerCategory}
		case "certificate.validToDate":
			return []string{strconv.FormatInt(c().ValidTo, 10)}
		case "certificate.validFromDate":
			return []string{strconv.FormatInt(c().ValidFrom, 10)}
		case "certificate.name":
			return []string{c().Subject.Name}
		case "asset.name":
			out := make([]string, 0, len(c().Assets))
			for _, a := range c().Assets {
				out = append(out, a.Name)
			}
			return out
		}
		return nil
	}
}

// instanceGetter reads listing record k's fields, making the whole record only for the
// fields that need it: a filter on id or scannedDate scans a large inventory cheaply.
func (inv *Inventory) instanceGetter(k int) getter {
	var rec *InstanceRecord
	full := func() *InstanceRecord {
		if rec == nil {
			r := inv.Instance(k)
			rec = &r
		}
		return rec
	}
	j := k - len(inv.sampleInstances())
	return func(field string) []string {
		in := full
		switch field {
		case "instance.id":
			if j >= 0 {
				return []string{strconv.FormatInt(instanceIDBase+int64(j), 10)}
			}
			return []string{strconv.FormatInt(in().ID, 10)}
		case "instance.scannedDate":
			if j >= 0 {
				return []string{strconv.FormatInt(inv.scannedAt(j).UnixMilli(), 10)}
			}
			return []string{in().ScannedDate}
		case "instance.port":
			return []string{strconv.Itoa(in().Port)}
		case "instance.grade":
			return []string{in().Grade}
		case "instance.protocol":
			return []string{in().Protocol}
		case "instance.service":
			return []string{in().Service}
		case "asset.name":
			return []string{in().Asset.Name}
		case "asset.primaryIp":
			return []string{in().Asset.PrimaryIP}
		case "certificate.certhash":
			return []string{in().Certificate.CertHash}
		case "certificate.name":
			return []string{in().Certificate.Name}
		}
		return nil
	}
}

// idBounds reads the bounds an AND filter puts on an id field: every matching id lies
// in [lo, hi). ok is false when the filter has no such bound (or joins terms by OR).
func (f *filter) idBounds(field string) (lo, hi int64, ok bool) {
	lo, hi = math.MinInt64, math.MaxInt64
	if f == nil || f.Operation == "OR" {
		return lo, hi, false
	}
	for _, t := range f.Filters {
		if t.Field != field {
			continue
		}
		v, err := strconv.ParseInt(strings.TrimSpace(t.Value), 10, 64)
		if err != nil {
			continue
		}
		switch t.Operator {
		case "GREATER":
			if v < math.MaxInt64 {
				lo, ok = max(lo, v+1), true
			}
		case "GREATER_THAN_EQUAL":
			lo, ok = max(lo, v), true
		case "LESSER":
			hi, ok = min(hi, v), true
		case "LESS_THAN_EQUAL":
			if v < math.MaxInt64 {
				hi, ok = min(hi, v+1), true
			}
		}
	}
	return lo, hi, ok
}

// window is the listing indices [from, to) of generated records whose ids, base+i for
// generated record i, lie in [lo, hi), offset by the samples before them.
func window(lo, hi, base int64, samples, generated int) [2]int {
	n := int64(generated)
	from, to := int64(0), n
	if lo > base {
		from = min(lo-base, n)
	}
	if hi <= base {
		to = 0
	} else if hi-base < n {
		to = hi - base
	}
	return [2]int{samples + int(from), samples + int(max(to, from))}
}

// certificateWindows are the listing index ranges that hold every certificate an id
// range filter can match: the samples, the generated ones whose id is base+index, and
// those added by churn (whose ids are not in that order); nil when the filter bounds no
// id.
func (inv *Inventory) certificateWindows(f *filter) [][2]int {
	lo, hi, ok := f.idBounds("certificate.id")
	if !ok {
		return nil
	}
	samples := len(inv.sampleCerts())
	certs, _, _ := inv.generated()
	return [][2]int{{0, samples}, window(lo, hi, certIDBase, samples, inv.Certificates), {samples + inv.Certificates, samples + certs}}
}

// instanceWindows are the listing index ranges that hold every instance an id range
// filter can match: the samples, and the generated ones, whose id is base+index; nil
// when the filter bounds no id.
func (inv *Inventory) instanceWindows(f *filter) [][2]int {
	lo, hi, ok := f.idBounds("instance.id")
	if !ok {
		return nil
	}
	samples := len(inv.sampleInstances())
	_, instances, _ := inv.generated()
	return [][2]int{{0, samples}, window(lo, hi, instanceIDBase, samples, instances)}
}

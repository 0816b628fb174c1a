package collector

import (
	"cmp"
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// OwnersConfig turns asset tags into owner labels (owners.labels in the file). Qualys
// tags are names, not key/value pairs: each label takes its value from the first of an
// asset's tags, in the API's order, that its rule matches.
type OwnersConfig struct {
	Labels []OwnerLabel `yaml:"labels"`
}

// OwnerLabel is one owner label: tag_regex (the first capture group is the value) or
// tag_values (the tag name is the value), and a cap on its distinct values.
type OwnerLabel struct {
	Name      string   `yaml:"name"`
	TagRegex  string   `yaml:"tag_regex"`
	TagValues []string `yaml:"tag_values"`
	// MaxValues caps the label's distinct values in a snapshot; 0 is the default. The
	// values on the fewest instances are dropped (the label is empty there) and counted.
	MaxValues int `yaml:"max_values"`
}

// DefaultOwnerMaxValues is an owner label's cap on distinct values.
const DefaultOwnerMaxValues = 200

// Configured says whether any owner label is configured.
func (o OwnersConfig) Configured() bool { return len(o.Labels) > 0 }

// reservedOwnerLabels may not be owner labels: the target labels, the labels of the
// exporter's own series (an owner label beside them would clash in a join) and those the
// shipped rules and alerts set.
var reservedOwnerLabels = map[string]bool{
	"job": true, "instance": true, "grade": true, "category": true, "le": true, "within_days": true,
	"protocol": true, "endpoint": true, "code": true, "reason": true, "label": true, "version": true,
	"alertname": true, "severity": true, "alertstate": true, "quantile": true, "kind": true,
}

var labelNameRE = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

// validate checks the owner labels; fail names the key at fault.
func (o OwnersConfig) validate(fail func(string, string, ...any) error) error {
	seen := map[string]bool{}
	for i, l := range o.Labels {
		key := fmt.Sprintf("owners.labels[%d]", i)
		switch {
		case !labelNameRE.MatchString(l.Name):
			return fail(key+".name", "%q is not a valid label name", l.Name)
		case strings.HasPrefix(l.Name, "__"):
			return fail(key+".name", "%q: names starting with __ are reserved by Prometheus", l.Name)
		case reservedOwnerLabels[l.Name] || slices.Contains(certInfoLabels, l.Name) || slices.Contains(instanceInfoLabels, l.Name):
			return fail(key+".name", "%q is a label the exporter or its rules already use", l.Name)
		case seen[l.Name]:
			return fail(key+".name", "%q is configured twice", l.Name)
		case (l.TagRegex == "") == (len(l.TagValues) == 0):
			return fail(key, "give tag_regex or tag_values (one of them)")
		case l.MaxValues < 0:
			return fail(key+".max_values", "must not be negative")
		}
		seen[l.Name] = true
		if l.TagRegex != "" {
			re, err := regexp.Compile(l.TagRegex)
			if err != nil {
				return fail(key+".tag_regex", "%v", err)
			}
			if re.NumSubexp() < 1 {
				return fail(key+".tag_regex", "%q has no capture group; the first one is the value", l.TagRegex)
			}
		}
		for k, v := range l.TagValues {
			if strings.TrimSpace(v) == "" {
				return fail(fmt.Sprintf("%s.tag_values[%d]", key, k), "an empty tag name")
			}
		}
	}
	return nil
}

// OwnerRules are compiled owner labels. A nil *OwnerRules means owners are off.
type OwnerRules struct {
	labels []ownerRule
}

type ownerRule struct {
	name      string
	re        *regexp.Regexp
	values    map[string]bool
	maxValues int
}

// CompileOwners compiles a validated configuration; it returns nil when no owner label
// is configured.
func CompileOwners(o OwnersConfig) (*OwnerRules, error) {
	if !o.Configured() {
		return nil, nil
	}
	if err := o.validate(func(key, format string, args ...any) error {
		return fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...))
	}); err != nil {
		return nil, err
	}
	r := &OwnerRules{}
	for _, l := range o.Labels {
		rule := ownerRule{name: l.Name, maxValues: cmp.Or(l.MaxValues, DefaultOwnerMaxValues)}
		if l.TagRegex != "" {
			rule.re = regexp.MustCompile(l.TagRegex)
		} else {
			rule.values = map[string]bool{}
			for _, v := range l.TagValues {
				rule.values[v] = true
			}
		}
		r.labels = append(r.labels, rule)
	}
	return r, nil
}

// Names lists the owner label names, in configured order.
func (r *OwnerRules) Names() []string {
	out := make([]string, len(r.labels))
	for i, l := range r.labels {
		out[i] = l.name
	}
	return out
}

// Values returns each label's value for an asset's tags: the first tag, in the given
// order, that the label's rule matches; "" when none does.
func (r *OwnerRules) Values(tags []string) []string {
	out := make([]string, len(r.labels))
	for i, l := range r.labels {
		for _, t := range tags {
			if l.re != nil {
				if m := l.re.FindStringSubmatch(t); m != nil && m[1] != "" {
					out[i] = label(m[1])
					break
				}
			} else if l.values[t] {
				out[i] = label(t)
				break
			}
		}
	}
	return out
}

// Owners is a snapshot's owner labels, resolved from its assets' tags by the rules.
type Owners struct {
	Labels []string
	// Combos are the distinct combinations of values; Combos[0] is all empty (unowned).
	Combos [][]string
	// Instance is each snapshot instance's combination, by index in Snapshot.Instances.
	Instance []uint32
	// Certificate is each snapshot certificate's combinations (by index in
	// Snapshot.Certificates): those of the instances that serve it, sorted; {0} for a
	// certificate no instance in the snapshot serves.
	Certificate [][]uint32
	// Dropped is, per label, how many distinct values the label's cap dropped.
	Dropped []int
	// Instances counts the instances per combination and grade; Certificates counts
	// the certificates per combination (a certificate counts once in each of its).
	Instances    map[OwnerGrade]int
	Certificates []int
}

// OwnerGrade keys Owners.Instances.
type OwnerGrade struct {
	Combo uint32
	Grade string
}

// ResolveOwners resolves the snapshot's owners; nil rules, or a snapshot listed without
// asset tags, give nil. An instance's asset is looked up by its numeric id; an asset
// whose tags are not in the snapshot is unowned. Then each label keeps its values on the
// most instances, up to its cap (ties by value), and the others become "".
func ResolveOwners(s *Snapshot, r *OwnerRules) *Owners {
	if r == nil || s == nil || !s.TagsListed {
		return nil
	}
	// One resolution per distinct tag list: assets share a handful of them.
	byTags := map[string][]string{}
	raw := make([][]string, len(s.Instances))
	for i := range s.Instances {
		tags := s.AssetTags[s.Instances[i].assetKey()]
		key := strings.Join(tags, "\xff")
		v, ok := byTags[key]
		if !ok {
			v = r.Values(tags)
			byTags[key] = v
		}
		raw[i] = v
	}
	o := &Owners{Labels: r.Names(), Dropped: make([]int, len(r.labels))}
	keep := make([]map[string]bool, len(r.labels))
	for k, l := range r.labels {
		counts := map[string]int{}
		for _, v := range raw {
			if v[k] != "" {
				counts[v[k]]++
			}
		}
		values := make([]string, 0, len(counts))
		for v := range counts {
			values = append(values, v)
		}
		slices.SortFunc(values, func(a, b string) int { return cmp.Or(cmp.Compare(counts[b], counts[a]), cmp.Compare(a, b)) })
		if len(values) > l.maxValues {
			o.Dropped[k] = len(values) - l.maxValues
			values = values[:l.maxValues]
		}
		keep[k] = map[string]bool{}
		for _, v := range values {
			keep[k][v] = true
		}
	}
	o.Combos = [][]string{make([]string, len(r.labels))}
	index := map[string]uint32{strings.Join(o.Combos[0], "\xff"): 0}
	byRaw := map[*string]uint32{} // the resolutions are shared slices: one lookup each
	o.Instance = make([]uint32, len(s.Instances))
	for i, v := range raw {
		c, ok := byRaw[&v[0]]
		if !ok {
			capped := make([]string, len(v))
			for k := range v {
				if keep[k][v[k]] {
					capped[k] = v[k]
				}
			}
			key := strings.Join(capped, "\xff")
			if c, ok = index[key]; !ok {
				c = uint32(len(o.Combos))
				o.Combos = append(o.Combos, capped)
				index[key] = c
			}
			byRaw[&v[0]] = c
		}
		o.Instance[i] = c
	}
	o.Instances = map[OwnerGrade]int{}
	served := map[string][]uint32{}
	for i := range s.Instances {
		in, c := &s.Instances[i], o.Instance[i]
		o.Instances[OwnerGrade{c, in.Grade}]++
		if list := served[in.CertHash]; !slices.Contains(list, c) {
			served[in.CertHash] = append(list, c)
		}
	}
	o.Certificate = make([][]uint32, len(s.Certificates))
	o.Certificates = make([]int, len(o.Combos))
	unserved := []uint32{0}
	for i := range s.Certificates {
		list := served[s.Certificates[i].CertHash]
		if list == nil {
			list = unserved
		}
		slices.Sort(list)
		o.Certificate[i] = list
		for _, c := range list {
			o.Certificates[c]++
		}
	}
	return o
}

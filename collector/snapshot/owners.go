package snapshot

import (
	"cmp"
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// OwnerLabel is one owner label's rule: TagRegex (its first capture group is the value)
// or TagValues (a tag name in the list is the value), and a cap on distinct values.
// Qualys tags are names, not key/value pairs: the label takes its value from the first
// of an asset's tags, in the API's order, that the rule matches.
type OwnerLabel struct {
	Name      string
	TagRegex  string
	TagValues []string
	// MaxValues caps the label's distinct values in a snapshot; 0 is
	// DefaultOwnerMaxValues. The values on the fewest instances are dropped (the label
	// is empty there) and counted.
	MaxValues int
}

// DefaultOwnerMaxValues is an owner label's cap on distinct values.
const DefaultOwnerMaxValues = 200

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

// NewOwnerRules compiles owner labels (validated by the configuration, which names the
// key at fault); it returns nil when there are none.
func NewOwnerRules(labels []OwnerLabel) (*OwnerRules, error) {
	if len(labels) == 0 {
		return nil, nil
	}
	r := &OwnerRules{}
	for _, l := range labels {
		rule := ownerRule{name: l.Name, maxValues: cmp.Or(l.MaxValues, DefaultOwnerMaxValues)}
		if l.TagRegex != "" {
			re, err := regexp.Compile(l.TagRegex)
			if err != nil {
				return nil, fmt.Errorf("owner label %s: %w", l.Name, err)
			}
			if re.NumSubexp() < 1 {
				return nil, fmt.Errorf("owner label %s: %q has no capture group", l.Name, l.TagRegex)
			}
			rule.re = re
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

// firstMatches keeps of tags, in their order, those that are the first a rule matches,
// as Values reads each tag: cut to max bytes. Values gives the same for what it keeps
// as for all of tags. It reuses tags' array.
func (r *OwnerRules) firstMatches(tags []string, max int) []string {
	found := make([]bool, len(r.labels))
	left := len(r.labels)
	kept := tags[:0]
	for _, t := range tags {
		if left == 0 {
			break
		}
		v, _ := labelMax(t, max)
		first := false
		for i, l := range r.labels {
			if found[i] {
				continue
			}
			if l.re != nil {
				if m := l.re.FindStringSubmatch(v); m != nil && m[1] != "" {
					found[i], first = true, true
					left--
				}
			} else if l.values[v] {
				found[i], first = true, true
				left--
			}
		}
		if first {
			kept = append(kept, t)
		}
	}
	return kept
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
	// LifetimeOver counts, per combination, the certificates (counted as in
	// Certificates) whose validity exceeds each of LifetimeCapDays.
	LifetimeOver [][len(LifetimeCapDays)]int
}

// OwnerGrade keys Owners.Instances.
type OwnerGrade struct {
	Combo uint32
	Grade string
}

// resolveOwners resolves the snapshot's owners; nil rules, or a snapshot listed without
// asset tags, give nil. An instance's asset is looked up by its numeric id; an asset
// whose tags are not in the snapshot is unowned. Then each label keeps its values on the
// most instances, up to its cap (ties by value), and the others become "".
func resolveOwners(s *Snapshot, r *OwnerRules) *Owners {
	if r == nil || s == nil || !s.TagsListed {
		return nil
	}
	raw := r.instanceValues(s)
	o := &Owners{Labels: r.Names(), Dropped: make([]int, len(r.labels))}
	keep := r.capValues(raw, o.Dropped)
	o.combine(raw, keep)
	o.count(s)
	return o
}

// instanceValues resolves each instance's raw label values from its asset's tags, once
// per distinct tag list (assets share a handful of them): instances with the same list
// share one slice.
func (r *OwnerRules) instanceValues(s *Snapshot) [][]string {
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
	return raw
}

// capValues chooses, per label, the values to keep: those on the most instances, up to
// the label's cap (ties by value). It notes in dropped how many each label lost.
func (r *OwnerRules) capValues(raw [][]string, dropped []int) []map[string]bool {
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
			dropped[k] = len(values) - l.maxValues
			values = values[:l.maxValues]
		}
		keep[k] = map[string]bool{}
		for _, v := range values {
			keep[k][v] = true
		}
	}
	return keep
}

// combine numbers the distinct combinations of kept values (0: all empty) and gives each
// instance its combination.
func (o *Owners) combine(raw [][]string, keep []map[string]bool) {
	o.Combos = [][]string{make([]string, len(o.Labels))}
	index := map[string]uint32{strings.Join(o.Combos[0], "\xff"): 0}
	byRaw := map[*string]uint32{} // the raw values are shared slices: one lookup each
	o.Instance = make([]uint32, len(raw))
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
}

// count gives each certificate the combinations of the instances serving it and counts
// instances per combination and grade, and certificates per combination.
func (o *Owners) count(s *Snapshot) {
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
	o.LifetimeOver = make([][len(LifetimeCapDays)]int, len(o.Combos))
	unserved := []uint32{0}
	for i := range s.Certificates {
		list := served[s.Certificates[i].CertHash]
		if list == nil {
			list = unserved
		}
		slices.Sort(list)
		o.Certificate[i] = list
		over := lifetimeOver(&s.Certificates[i])
		for _, c := range list {
			o.Certificates[c]++
			for k, yes := range over {
				if yes {
					o.LifetimeOver[c][k]++
				}
			}
		}
	}
}

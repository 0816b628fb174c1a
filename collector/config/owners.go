package config

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/certview-exporter/certview_exporter/collector/exposition"
	"github.com/certview-exporter/certview_exporter/collector/snapshot"
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
	// MaxValues caps the label's distinct values in a snapshot; 0 is the default
	// (snapshot.DefaultOwnerMaxValues). The values on the fewest instances are dropped
	// (the label is empty there) and counted.
	MaxValues int `yaml:"max_values"`
}

// Configured says whether any owner label is configured.
func (o OwnersConfig) Configured() bool { return len(o.Labels) > 0 }

// reservedOwnerLabels may not be owner labels: the target labels (shard, for a sharded
// scrape), the labels of the exporter's own series (an owner label beside them would
// clash in a join) and those the shipped rules and alerts, and vmalert, set.
var reservedOwnerLabels = map[string]bool{
	"job": true, "instance": true, "shard": true, "grade": true, "category": true, "le": true, "within_days": true,
	"protocol": true, "endpoint": true, "code": true, "reason": true, "label": true, "version": true,
	"alertname": true, "severity": true, "alertstate": true, "quantile": true, "kind": true,
	"renewal_state": true, "cap_days": true, "successor_certhash": true, "field": true, "result": true, "alertgroup": true,
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
		case reservedOwnerLabels[l.Name] || slices.Contains(exposition.CertificateInfoLabels(), l.Name) || slices.Contains(exposition.InstanceInfoLabels(), l.Name):
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

// Rules compiles the owner labels for the snapshot builder; nil when none is configured.
func (o OwnersConfig) Rules() (*snapshot.OwnerRules, error) {
	if !o.Configured() {
		return nil, nil
	}
	if err := o.validate(func(key, format string, args ...any) error {
		return fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...))
	}); err != nil {
		return nil, err
	}
	labels := make([]snapshot.OwnerLabel, len(o.Labels))
	for i, l := range o.Labels {
		labels[i] = snapshot.OwnerLabel{Name: l.Name, TagRegex: l.TagRegex, TagValues: l.TagValues, MaxValues: l.MaxValues}
	}
	return snapshot.NewOwnerRules(labels)
}

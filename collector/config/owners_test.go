package config

import (
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

const ownersYAML = `owners:
  labels:
    - name: team
      tag_regex: '^Team-(.+)$'
    - name: environment
      tag_values: [Production, Staging]
`

func TestOwnersConfig(t *testing.T) {
	c, err := Parse("c.yml", []byte(minimal+ownersYAML), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if inc := c.ClientConfig().Includes; !slices.Equal(inc, []string{"ASSET_TAGS"}) {
		t.Errorf("includes with owners: %q, want ASSET_TAGS", inc)
	}
	plain, err := Parse("c.yml", []byte(strings.Replace(minimal, "qualys:\n", "qualys:\n  includes: [ASSET_INTERFACES]\n", 1)), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if inc := plain.ClientConfig().Includes; !slices.Equal(inc, []string{"ASSET_INTERFACES"}) {
		t.Errorf("includes without owners: %q, want only what is configured", inc)
	}
	r, err := c.Owners.Rules()
	if err != nil || !slices.Equal(r.Names(), []string{"team", "environment"}) {
		t.Fatalf("compiled %v, %v", r, err)
	}
	for _, tc := range []struct {
		tags []string
		want []string
	}{
		{[]string{"Internet Facing Assets", "Team-Payments", "Production"}, []string{"Payments", "Production"}},
		{[]string{"Staging", "Team-Search", "Team-Legacy", "Production"}, []string{"Search", "Staging"}}, // first match in tag order
		{[]string{"Team-", "production", "Cloud Agent"}, []string{"", ""}},                               // an empty capture, another spelling
		{nil, []string{"", ""}},
	} {
		if got := r.Values(tc.tags); !slices.Equal(got, tc.want) {
			t.Errorf("tags %q: values %q, want %q", tc.tags, got, tc.want)
		}
	}
	if r, err := (OwnersConfig{}).Rules(); r != nil || err != nil {
		t.Errorf("no owners: %v, %v", r, err)
	}
}

func TestOwnersConfigErrorsNameTheLabel(t *testing.T) {
	item := func(s string) string {
		return minimal + "owners:\n  labels:\n    - name: team\n      tag_regex: '^Team-(.+)$'\n" + s
	}
	for _, tc := range []struct{ name, yaml, want string }{
		{"reserved", item("    - name: instance\n      tag_values: [Production]\n"), `owners.labels[1].name: "instance" is a label the exporter or its rules already use (line 14)`},
		{"existing", item("    - name: common_name\n      tag_values: [Production]\n"), `owners.labels[1].name: "common_name" is a label`},
		{"invalid", item("    - name: env-name\n      tag_values: [Production]\n"), `owners.labels[1].name: "env-name" is not a valid label name (line 14)`},
		{"shard", item("    - name: shard\n      tag_values: [Production]\n"), `owners.labels[1].name: "shard" is a label the exporter or its rules already use (line 14)`},
		{"renewal_state", item("    - name: renewal_state\n      tag_values: [Production]\n"), `owners.labels[1].name: "renewal_state" is a label the exporter or its rules already use (line 14)`},
		{"dunder", item("    - name: __env\n      tag_values: [Production]\n"), `reserved by Prometheus`},
		{"twice", item("    - name: team\n      tag_values: [Production]\n"), `owners.labels[1].name: "team" is configured twice`},
		{"neither", item("    - name: env\n"), `owners.labels[1]: give tag_regex or tag_values (one of them) (line 14)`},
		{"both", item("    - name: env\n      tag_regex: '(.*)'\n      tag_values: [Production]\n"), `give tag_regex or tag_values`},
		{"no group", item("    - name: env\n      tag_regex: '^Env-.+$'\n"), `owners.labels[1].tag_regex: "^Env-.+$" has no capture group; the first one is the value (line 15)`},
		{"bad regex", item("    - name: env\n      tag_regex: '^Env-(.+$'\n"), `owners.labels[1].tag_regex: error parsing regexp`},
		{"empty value", item("    - name: env\n      tag_values: [Production, '']\n"), `owners.labels[1].tag_values[1]: an empty tag name`},
		{"cap", item("    - name: env\n      tag_values: [Production]\n      max_values: -1\n"), `owners.labels[1].max_values: must not be negative (line 16)`},
		{"unknown key", item("    - name: env\n      tag_value: [Production]\n"), `unknown key tag_value`},
		{"no instances", item("metrics:\n  instances: false\n"), `metrics.instances: false leaves owners.labels nowhere to go`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("c.yml", []byte(tc.yaml), env(nil))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v\nwant it to contain %q", err, tc.want)
			}
		})
	}
}

// The example configuration's owners block, uncommented, is the shipped rules' owners.
func TestTheExampleOwnersAreValid(t *testing.T) {
	data, err := os.ReadFile("../../config.example.yml")
	if err != nil {
		t.Fatal(err)
	}
	uncommented := regexp.MustCompile(`(?m)^# (owners:|  labels:|    - name|      tag_)`).ReplaceAll(data, []byte("$1"))
	c, err := Parse("config.example.yml", uncommented, env(map[string]string{EnvPassword: "x"}))
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(c.Owners) != fmt.Sprint(exampleOwners) {
		t.Fatalf("the example's owners %+v, want %+v", c.Owners, exampleOwners)
	}
}

var exampleOwners = OwnersConfig{Labels: []OwnerLabel{
	{Name: "team", TagRegex: "^Team-(.+)$"}, {Name: "environment", TagValues: []string{"Production", "Staging"}}}}

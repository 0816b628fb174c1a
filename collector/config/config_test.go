package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

const minimal = `qualys:
  api_url: https://gateway.qg1.apps.qualys.com
  username: acme_user
  password: secret
poll:
  interval: 1h
rate_limit:
  calls: 300
  window: 1h
`

func TestParseMinimalConfig(t *testing.T) {
	c, err := Parse("c.yml", []byte(minimal), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if time.Duration(c.Poll.Interval) != time.Hour || c.RateLimit.Calls != 300 || string(c.Qualys.Password) != "secret" ||
		!c.Metrics.PerCertificate() || c.Metrics.WeakRSABits != 2048 || time.Duration(c.Poll.MaxBackoff) != 4*time.Hour {
		t.Fatalf("parsed %+v", c)
	}
	cc := c.ClientConfig()
	if cc.BaseURL != "https://gateway.qg1.apps.qualys.com" || cc.Credentials.Password != "secret" || cc.RateLimit.Window != time.Hour {
		t.Fatalf("client config %+v", cc)
	}
}

func TestTheExampleConfigIsValid(t *testing.T) {
	data, err := os.ReadFile("../../config.example.yml")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Parse("config.example.yml", data, env(map[string]string{EnvPassword: "x"})); err != nil {
		t.Fatal(err)
	}
}

func TestConfigErrorsNameTheKey(t *testing.T) {
	cases := []struct {
		name, yaml, want string
		line             int // the line the error names, 0: none
	}{
		{"unknown key", minimal + "metrics:\n  colour: blue\n", "c.yml: metrics.colour: unknown key colour (keys are decoded strictly", 11},
		{"unknown section", minimal + "extra: 1\n", "unknown key extra", 0},
		{"bad duration", strings.Replace(minimal, "interval: 1h", "interval: soon", 1), `c.yml: poll.interval: "soon" is not a duration (write it like 30s, 5m, 1h or 1d) (line 6)`, 6},
		{"no url", strings.Replace(minimal, "  api_url: https://gateway.qg1.apps.qualys.com\n", "", 1), "c.yml: qualys.api_url: required (or qualys.platform", 1},
		{"both urls", strings.Replace(minimal, "qualys:\n", "qualys:\n  platform: US1\n", 1), "c.yml: qualys.platform: give qualys.api_url or qualys.platform, not both", 2},
		{"bad platform", strings.Replace(minimal, "  api_url: https://gateway.qg1.apps.qualys.com\n", "  platform: MARS\n", 1), `c.yml: qualys.platform: unknown platform "MARS"`, 2},
		{"no user", strings.Replace(minimal, "  username: acme_user\n", "", 1), "qualys.username: required", 0},
		{"no password", strings.Replace(minimal, "  password: secret\n", "", 1), "c.yml: qualys.password: required: set qualys.password, qualys.password_file, or the environment variable QUALYS_PASSWORD", 1},
		{"page size", minimal + "  page_size: 500\n", "", 0},
		{"short interval", strings.Replace(minimal, "interval: 1h", "interval: 100ms", 1), "c.yml: poll.interval: 100ms is below the minimum of 1s", 6},
		{"window", strings.Replace(minimal, "window: 1h", "window: 500ms", 1), "c.yml: rate_limit.window: 500ms is below the minimum of 1s", 9},
		{"calls", strings.Replace(minimal, "calls: 300", "calls: -5", 1), "c.yml: rate_limit.calls: must be positive", 8},
		{"backoff", minimal + "  max_backoff: 1m\n", "", 0},
		{"version", strings.Replace(minimal, "qualys:\n", "qualys:\n  certificates_api_version: v9\n", 1), `c.yml: qualys.certificates_api_version: "v9": must be one of auto, v2.2, v2.1, v2 (line 2)`, 2},
		{"filter", strings.Replace(minimal, "qualys:\n", "qualys:\n  instance_filter:\n    filters:\n      - {field: instance.grade, operator: LIKE, value: F}\n", 1), `c.yml: qualys.instance_filter: filters[0] (instance.grade): operator "LIKE"`, 2},
		{"snapshot dir", minimal + "snapshot:\n  path: /nonexistent/dir/snapshot\n", "c.yml: snapshot.path: directory /nonexistent/dir does not exist", 11},
		{"full interval", minimal[:strings.Index(minimal, "rate_limit:")] + "  full_interval: 30m\n" + minimal[strings.Index(minimal, "rate_limit:"):], "c.yml: poll.full_interval: 30m: must be 0 (every poll full) or at least poll.interval (1h)", 7},
		{"overlap", minimal[:strings.Index(minimal, "rate_limit:")] + "  incremental_overlap: -1h\n" + minimal[strings.Index(minimal, "rate_limit:"):], `c.yml: poll.incremental_overlap: "-1h" is not a duration`, 7},
		{"wrong type", strings.Replace(minimal, "qualys:\n", "qualys:\n  page_size: many\n", 1), "c.yml: qualys.page_size: cannot unmarshal !!str `many` into int (line 2)", 2},
		{"nested type", strings.Replace(minimal, "qualys:\n", "qualys:\n  instance_filter:\n    filters:\n      - field: instance.grade\n        operator: [EQUALS]\n", 1),
			"c.yml: qualys.instance_filter.filters[0].operator: cannot unmarshal !!seq into string (line 5)", 5},
		{"two bad values", strings.Replace(minimal, "qualys:\n", "qualys:\n  page_size: many\n  max_pages: lots\n", 1),
			"c.yml: qualys.page_size: cannot unmarshal !!str `many` into int (line 2); qualys.max_pages: cannot unmarshal !!str `lots` into int (line 3)", 3},
		{"mapping as a key", minimal + "metrics:\n  ? {a: b}\n  : 1\n", "c.yml: metrics.<mapping as a key>: cannot unmarshal !!map into string (line 11)", 11},
		{"two documents", minimal + "---\nfoo: 1\n", "more than one YAML document", 0},
		{"duplicate key", minimal + "poll:\n  interval: 2h\n", `mapping key "poll" already defined`, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("c.yml", []byte(tc.yaml), env(nil))
			if err == nil {
				t.Fatal("accepted")
			}
			if tc.want != "" && !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v\nwant it to contain %q", err, tc.want)
			}
			if tc.line > 0 && !strings.HasSuffix(err.Error(), fmt.Sprintf("(line %d)", tc.line)) && !strings.Contains(err.Error(), fmt.Sprintf("(line %d);", tc.line)) {
				t.Fatalf("err = %v\nwant it to name line %d", err, tc.line)
			}
			if strings.Contains(err.Error(), "secret") && !strings.Contains(tc.want, "secret") {
				t.Fatalf("error %q shows the password", err)
			}
		})
	}
}

func TestPasswordFromFileOrEnvironment(t *testing.T) {
	noPassword := strings.Replace(minimal, "  password: secret\n", "", 1)
	c, err := Parse("c.yml", []byte(noPassword), env(map[string]string{EnvPassword: "from-env"}))
	if err != nil || string(c.Qualys.Password) != "from-env" {
		t.Fatalf("env: %v %v", c, err)
	}
	file := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(file, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	withFile := strings.Replace(noPassword, "qualys:\n", "qualys:\n  password_file: "+file+"\n", 1)
	c, err = Parse("c.yml", []byte(withFile), env(map[string]string{EnvPassword: "from-env"}))
	if err != nil || string(c.Qualys.Password) != "from-file" {
		t.Fatalf("file: %v %v", c, err)
	}
	both := strings.Replace(minimal, "qualys:\n", "qualys:\n  password_file: "+file+"\n", 1)
	if _, err := Parse("c.yml", []byte(both), env(nil)); err == nil || !strings.Contains(err.Error(), "not both") {
		t.Fatalf("both: %v", err)
	}
	missing := strings.Replace(noPassword, "qualys:\n", "qualys:\n  password_file: /nonexistent/pw\n", 1)
	if _, err := Parse("c.yml", []byte(missing), env(nil)); err == nil || !strings.Contains(err.Error(), "qualys.password_file") {
		t.Fatalf("missing file: %v", err)
	}
	oauth := "qualys:\n  platform: EU2\n  client_id: cid\npoll:\n  interval: 2h\n"
	c, err = Parse("c.yml", []byte(oauth), env(map[string]string{EnvClientSecret: "cs"}))
	if err != nil || string(c.Qualys.ClientSecret) != "cs" || c.ClientConfig().Credentials.ClientID != "cid" {
		t.Fatalf("oauth: %v %v", c, err)
	}
	if Secret("x").String() != "<secret>" {
		t.Fatal("Secret prints its value")
	}
}

// --config.check and the log say, with the numbers, how large a full listing a
// poll.timeout fits at the configured rate.
func TestPollTimeoutWarningSaysWhatItFits(t *testing.T) {
	c, err := Parse("c.yml", []byte(strings.Replace(minimal, "  interval: 1h\n", "  interval: 1h\n  timeout: 30m\n", 1)), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	w := c.Warnings()
	if len(w) != 1 || !strings.Contains(w[0], "poll.timeout: 30m at rate_limit 300 per 1h fits a full listing of at most about 300 calls per API (59800 records") {
		t.Fatalf("warnings %q", w)
	}
	if c, _ := Parse("c.yml", []byte(minimal), env(nil)); len(c.Warnings()) != 0 {
		t.Fatalf("no timeout, yet %q", c.Warnings())
	}
}

func TestMaxShrink(t *testing.T) {
	withShrink := func(v string) string {
		return strings.Replace(minimal, "  interval: 1h\n", "  interval: 1h\n  max_shrink: "+v+"\n", 1)
	}
	c, err := Parse("c.yml", []byte(minimal), env(nil))
	if err != nil || *c.Poll.MaxShrink != 0.5 {
		t.Fatalf("default: %v, %v", err, c)
	}
	for v, want := range map[string]float64{"0.25": 0.25, "1": 1, "0.9": 0.9} {
		c, err := Parse("c.yml", []byte(withShrink(v)), env(nil))
		if err != nil || *c.Poll.MaxShrink != want {
			t.Fatalf("max_shrink %s: %v", v, err)
		}
	}
	for v, want := range map[string]string{
		"0":    "c.yml: poll.max_shrink: 0: must be a share above 0 and at most 1, such as 0.5",
		"-0.5": "c.yml: poll.max_shrink: -0.5: must be a share above 0 and at most 1",
		"1.5":  "c.yml: poll.max_shrink: 1.5: must be a share above 0 and at most 1",
		"50":   "c.yml: poll.max_shrink: 50: must be a share above 0 and at most 1",
		".nan": "c.yml: poll.max_shrink: NaN: must be a share above 0 and at most 1",
		"50%":  "c.yml: poll.max_shrink: cannot unmarshal !!str `50%` into float64",
		"half": "c.yml: poll.max_shrink: cannot unmarshal !!str `half` into float64",
	} {
		_, err := Parse("c.yml", []byte(withShrink(v)), env(nil))
		if err == nil || !strings.Contains(err.Error(), want) || !strings.HasSuffix(err.Error(), "(line 7)") {
			t.Errorf("max_shrink %s: err = %v\nwant %q at line 7", v, err, want)
		}
	}
}

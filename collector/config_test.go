package collector

import (
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
	c, err := ParseConfig("c.yml", []byte(minimal), env(nil))
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
	data, err := os.ReadFile("../config.example.yml")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ParseConfig("config.example.yml", data, env(map[string]string{EnvPassword: "x"})); err != nil {
		t.Fatal(err)
	}
}

func TestConfigErrorsNameTheKey(t *testing.T) {
	cases := []struct{ name, yaml, want string }{
		{"unknown key", minimal + "metrics:\n  colour: blue\n", "c.yml: line 11: unknown key colour (keys are decoded strictly"},
		{"unknown section", minimal + "extra: 1\n", "unknown key extra"},
		{"bad duration", strings.Replace(minimal, "interval: 1h", "interval: soon", 1), `c.yml: line 6: "soon" is not a duration (write it like 30s, 5m, 1h or 1d)`},
		{"no url", strings.Replace(minimal, "  api_url: https://gateway.qg1.apps.qualys.com\n", "", 1), "c.yml:1: qualys.api_url: required (or qualys.platform"},
		{"both urls", strings.Replace(minimal, "qualys:\n", "qualys:\n  platform: US1\n", 1), "c.yml:2: qualys.platform: give qualys.api_url or qualys.platform, not both"},
		{"bad platform", strings.Replace(minimal, "  api_url: https://gateway.qg1.apps.qualys.com\n", "  platform: MARS\n", 1), `c.yml:2: qualys.platform: unknown platform "MARS"`},
		{"no user", strings.Replace(minimal, "  username: acme_user\n", "", 1), "qualys.username: required"},
		{"no password", strings.Replace(minimal, "  password: secret\n", "", 1), "c.yml:1: qualys.password: required: set qualys.password, qualys.password_file, or the environment variable QUALYS_PASSWORD"},
		{"page size", minimal + "  page_size: 500\n", ""},
		{"short interval", strings.Replace(minimal, "interval: 1h", "interval: 100ms", 1), "c.yml:6: poll.interval: 100ms is below the minimum of 1s"},
		{"window", strings.Replace(minimal, "window: 1h", "window: 500ms", 1), "c.yml:9: rate_limit.window: 500ms is below the minimum of 1s"},
		{"calls", strings.Replace(minimal, "calls: 300", "calls: -5", 1), "c.yml:8: rate_limit.calls: must be positive"},
		{"backoff", minimal + "  max_backoff: 1m\n", ""},
		{"version", strings.Replace(minimal, "qualys:\n", "qualys:\n  certificates_api_version: v9\n", 1), `c.yml:2: qualys.certificates_api_version: "v9": must be one of auto, v2.2, v2.1, v2`},
		{"filter", strings.Replace(minimal, "qualys:\n", "qualys:\n  instance_filter:\n    filters:\n      - {field: instance.grade, operator: LIKE, value: F}\n", 1), `c.yml:2: qualys.instance_filter: filters[0] (instance.grade): operator "LIKE"`},
		{"snapshot dir", minimal + "snapshot:\n  path: /nonexistent/dir/snapshot\n", "c.yml:11: snapshot.path: directory /nonexistent/dir does not exist"},
		{"two documents", minimal + "---\nfoo: 1\n", "more than one YAML document"},
		{"duplicate key", minimal + "poll:\n  interval: 2h\n", `mapping key "poll" already defined`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseConfig("c.yml", []byte(tc.yaml), env(nil))
			if err == nil {
				t.Fatal("accepted")
			}
			if tc.want != "" && !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v\nwant it to contain %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "secret") && !strings.Contains(tc.want, "secret") {
				t.Fatalf("error %q shows the password", err)
			}
		})
	}
}

func TestPasswordFromFileOrEnvironment(t *testing.T) {
	noPassword := strings.Replace(minimal, "  password: secret\n", "", 1)
	c, err := ParseConfig("c.yml", []byte(noPassword), env(map[string]string{EnvPassword: "from-env"}))
	if err != nil || string(c.Qualys.Password) != "from-env" {
		t.Fatalf("env: %v %v", c, err)
	}
	file := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(file, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	withFile := strings.Replace(noPassword, "qualys:\n", "qualys:\n  password_file: "+file+"\n", 1)
	c, err = ParseConfig("c.yml", []byte(withFile), env(map[string]string{EnvPassword: "from-env"}))
	if err != nil || string(c.Qualys.Password) != "from-file" {
		t.Fatalf("file: %v %v", c, err)
	}
	both := strings.Replace(minimal, "qualys:\n", "qualys:\n  password_file: "+file+"\n", 1)
	if _, err := ParseConfig("c.yml", []byte(both), env(nil)); err == nil || !strings.Contains(err.Error(), "not both") {
		t.Fatalf("both: %v", err)
	}
	missing := strings.Replace(noPassword, "qualys:\n", "qualys:\n  password_file: /nonexistent/pw\n", 1)
	if _, err := ParseConfig("c.yml", []byte(missing), env(nil)); err == nil || !strings.Contains(err.Error(), "qualys.password_file") {
		t.Fatalf("missing file: %v", err)
	}
	oauth := "qualys:\n  platform: EU2\n  client_id: cid\npoll:\n  interval: 2h\n"
	c, err = ParseConfig("c.yml", []byte(oauth), env(map[string]string{EnvClientSecret: "cs"}))
	if err != nil || string(c.Qualys.ClientSecret) != "cs" || c.ClientConfig().Credentials.ClientID != "cid" {
		t.Fatalf("oauth: %v %v", c, err)
	}
	if Secret("x").String() != "<secret>" {
		t.Fatal("Secret prints its value")
	}
}

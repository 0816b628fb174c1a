package certview

import (
	"strings"
	"testing"
	"time"
)

func TestConfigValidation(t *testing.T) {
	ok := func() Config {
		return Config{Platform: "us1", Credentials: Credentials{Username: "u", Password: "p"}}
	}
	cases := []struct {
		name  string
		tweak func(*Config)
		want  string // "" means valid
	}{
		{"defaults", func(*Config) {}, ""},
		{"full URL", func(c *Config) { c.Platform, c.BaseURL = "", "https://qualysgateway.example.com/" }, ""},
		{"oauth", func(c *Config) { c.Credentials = Credentials{ClientID: "id", ClientSecret: "s"} }, ""},
		{"v2.2", func(c *Config) { c.CertificatesVersion = "v2.2" }, ""},
		{"no gateway", func(c *Config) { c.Platform = "" }, "a base URL or a platform name is required"},
		{"both gateways", func(c *Config) { c.BaseURL = "https://x" }, "not both"},
		{"unknown platform", func(c *Config) { c.Platform = "MARS1" }, `unknown platform "MARS1"`},
		{"bad scheme", func(c *Config) { c.Platform, c.BaseURL = "", "ftp://x" }, "scheme must be https"},
		{"no host", func(c *Config) { c.Platform, c.BaseURL = "", "https://" }, "has no host"},
		{"userinfo", func(c *Config) { c.Platform, c.BaseURL = "", "https://u:p@x" }, "must not carry credentials"},
		{"no credentials", func(c *Config) { c.Credentials = Credentials{} }, "are required"},
		{"no password", func(c *Config) { c.Credentials.Password = "" }, "username given without a password"},
		{"no user", func(c *Config) { c.Credentials.Username = "" }, "password given without a username"},
		{"mixed", func(c *Config) { c.Credentials.ClientID = "id" }, "not both"},
		{"no client secret", func(c *Config) { c.Credentials = Credentials{ClientID: "id"} }, "without a client secret"},
		{"no client id", func(c *Config) { c.Credentials = Credentials{ClientSecret: "s"} }, "without a client ID"},
		{"version", func(c *Config) { c.CertificatesVersion = "v3" }, `certificates version "v3"`},
		{"page size", func(c *Config) { c.PageSize = 500 }, "page size 500"},
		{"asset type", func(c *Config) { c.AssetType = "all" }, `asset type "all"`},
		{"operation", func(c *Config) { c.CertificateFilter = &Filter{Operation: "XOR"} }, `certificate filter: operation "XOR"`},
		{"operator", func(c *Config) {
			c.InstanceFilter = &Filter{Filters: []FilterTerm{{Field: "instance.grade", Operator: "LIKE"}}}
		}, `instance filter: filters[0] (instance.grade): operator "LIKE"`},
		{"field", func(c *Config) { c.InstanceFilter = &Filter{Filters: []FilterTerm{{Operator: "EQUALS"}}} }, "field is empty"},
		{"window", func(c *Config) { c.RateLimit.Window = time.Millisecond }, "rate limit window"},
		{"margin", func(c *Config) { c.TokenRenewMargin = 5 * time.Hour }, "token renew margin"},
		{"no budget, no retries", func(c *Config) { c.RateLimit.Calls, c.MaxRetries = NoRateLimit, NoRetries }, ""},
		{"throttle retries", func(c *Config) { c.MaxThrottleRetries = -1 }, "throttle retries"},
		{"backoff", func(c *Config) { c.BackoffBase, c.BackoffMax = time.Minute, time.Second }, "backoff"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := ok()
			tc.tweak(&c)
			err := c.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("unexpected error %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("err = %v, want it to say %q", err, tc.want)
			}
			if _, nerr := New(c); (nerr == nil) != (err == nil) {
				t.Fatalf("New and Validate disagree: %v vs %v", nerr, err)
			}
		})
	}
}

func TestPlatforms(t *testing.T) {
	if len(Platforms) != 13 {
		t.Fatalf("%d platforms, want US1..KSA1 (13)", len(Platforms))
	}
	c, err := New(Config{Platform: "ksa1", Credentials: Credentials{Username: "u", Password: "p"}})
	if err != nil || c.BaseURL() != "https://gateway.qg1.apps.qualysksa.com" {
		t.Fatalf("KSA1: %v %v", c, err)
	}
	c, err = New(Config{BaseURL: "https://qualysgateway.corp.example/", Credentials: Credentials{Username: "u", Password: "p"}})
	if err != nil || c.BaseURL() != "https://qualysgateway.corp.example" {
		t.Fatalf("private cloud URL: %v", err)
	}
}

func TestCAPEM(t *testing.T) {
	base := Config{Platform: "US1", Credentials: Credentials{Username: "u", Password: "p"}}
	base.CAPEM = []byte("not a certificate")
	if _, err := New(base); err == nil || !strings.Contains(err.Error(), "no PEM certificate") {
		t.Fatalf("bad CA certificates: %v", err)
	}
}

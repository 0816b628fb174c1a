// Package config owns the configuration file: its keys, strict decoding, defaults,
// secrets read from files or the environment, and validation with errors that name the
// key and line at fault. It sits on top of the flow: it maps the file onto the settings
// of the client, the poll loop and the exposition, and nothing below imports it.
package config

import (
	"bytes"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/certview-exporter/certview_exporter/certview"
	"github.com/certview-exporter/certview_exporter/collector/exposition"
	"github.com/certview-exporter/certview_exporter/collector/poll"
	"github.com/prometheus/common/model"
	"gopkg.in/yaml.v3"
)

// Environment variables that may carry the secrets, so they stay out of files and flags.
const (
	EnvPassword     = "QUALYS_PASSWORD"
	EnvClientSecret = "QUALYS_CLIENT_SECRET"
)

// Config is the exporter's configuration file. Keys are decoded strictly: an unknown
// key is an error.
type Config struct {
	Qualys    QualysConfig    `yaml:"qualys"`
	Poll      PollConfig      `yaml:"poll"`
	RateLimit RateLimitConfig `yaml:"rate_limit"`
	Metrics   MetricsConfig   `yaml:"metrics"`
	Snapshot  SnapshotConfig  `yaml:"snapshot"`
	Owners    OwnersConfig    `yaml:"owners"`

	// zeros are the keys of zeroMeans the file wrote as 0: the defaults keep them.
	zeros map[string]bool
}

// SnapshotConfig is where the last good snapshot is saved, to be served at once after a
// restart. Empty: not saved.
type SnapshotConfig struct {
	Path string `yaml:"path"`
}

// QualysConfig is the connection to the subscription.
type QualysConfig struct {
	APIURL             string           `yaml:"api_url"`
	Platform           string           `yaml:"platform"`
	Username           string           `yaml:"username"`
	Password           Secret           `yaml:"password"`
	PasswordFile       string           `yaml:"password_file"`
	ClientID           string           `yaml:"client_id"`
	ClientSecret       Secret           `yaml:"client_secret"`
	ClientSecretFile   string           `yaml:"client_secret_file"`
	Timeout            Duration         `yaml:"timeout"`
	CAFile             string           `yaml:"ca_file"`
	caPEM              []byte           // what CAFile held when the file was loaded
	InsecureSkipVerify bool             `yaml:"insecure_skip_verify"`
	CertificatesAPI    string           `yaml:"certificates_api_version"`
	PageSize           int              `yaml:"page_size"`
	AssetType          string           `yaml:"asset_type"`
	CertificateFilter  *certview.Filter `yaml:"certificate_filter"`
	InstanceFilter     *certview.Filter `yaml:"instance_filter"`
	Includes           []string         `yaml:"includes"`
	ExcludeFields      []string         `yaml:"exclude_fields"`
	TokenRenewMargin   Duration         `yaml:"token_renew_margin"`
	MaxPages           int              `yaml:"max_pages"`
	// MaxRetries: after defaults, 0 means no retries (written as 0 in the file).
	MaxRetries int `yaml:"max_retries"`
	// AllowInsecureHTTP permits an http:// api_url outside loopback: the password then
	// crosses the network in clear.
	AllowInsecureHTTP bool `yaml:"allow_insecure_http"`
}

// PollConfig is the poll loop.
type PollConfig struct {
	Interval Duration `yaml:"interval"`
	// FullInterval: a full listing at least this often, incremental polls between; 0
	// makes every poll full. Nil: the default.
	FullInterval *Duration `yaml:"full_interval"`
	// IncrementalOverlap: how far an incremental poll reaches back before the watermark.
	IncrementalOverlap *Duration `yaml:"incremental_overlap"`
	// Timeout caps a poll; 0 (the default) is no cap. A full listing cut short keeps
	// the id ranges it finished and goes on at the next poll.
	Timeout Duration `yaml:"timeout"`
	// StallTimeout fails a poll that makes no progress for this long: no answer from
	// the API and no rate-limit wait.
	StallTimeout     Duration `yaml:"stall_timeout"`
	MaxBackoff       Duration `yaml:"max_backoff"`
	ProgressInterval Duration `yaml:"progress_interval"`
	// MaxShrink is the share of the served snapshot's certificates, or of its instances,
	// that a full listing may lose before it is held unpublished until the next full
	// listing confirms it; 1 turns the guard off. Nil: the default.
	MaxShrink *float64 `yaml:"max_shrink"`
}

// RateLimitConfig is the client-side budget per API.
type RateLimitConfig struct {
	Calls       int      `yaml:"calls"`
	Window      Duration `yaml:"window"`
	Concurrency int      `yaml:"concurrency"`
}

// MetricsConfig chooses what the collector exposes.
type MetricsConfig struct {
	// Per-object families; the counts are always exposed.
	Certificates *bool `yaml:"certificates"`
	Instances    *bool `yaml:"instances"`
	// InstanceScoreCategories serves the four category scores of each graded instance
	// (qualys_certview_instance_score): up to four more series per instance, off by default.
	InstanceScoreCategories bool `yaml:"instance_score_categories"`
	// Weak-key thresholds, in bits.
	WeakRSABits int `yaml:"weak_rsa_bits"`
	WeakECBits  int `yaml:"weak_ec_bits"`
	// Allow-lists of info labels (nil: all); certhash and instance_id always stay.
	CertificateInfoLabels []string `yaml:"certificate_info_labels"`
	InstanceInfoLabels    []string `yaml:"instance_info_labels"`
}

// Duration is a time span in Prometheus's notation (30s, 5m, 1h, 1d, 1w).
type Duration time.Duration

// UnmarshalYAML reads a duration and names the line of a bad one.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := model.ParseDuration(n.Value)
	if err != nil || n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: %q is not a duration (write it like 30s, 5m, 1h or 1d)", n.Line, n.Value)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes the duration in the same notation.
func (d Duration) MarshalYAML() (any, error) { return model.Duration(d).String(), nil }

// String formats the duration like 1h or 30s.
func (d Duration) String() string { return model.Duration(d).String() }

// Secret is a string that never prints.
type Secret string

// String hides the value.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return "<secret>"
}

// MarshalYAML hides the value.
func (s Secret) MarshalYAML() (any, error) { return s.String(), nil }

// Defaults.
const (
	DefaultPollInterval = time.Hour
	DefaultWeakRSABits  = 2048
	DefaultWeakECBits   = 224
)

// PerCertificate says whether the per-certificate families are on.
func (m MetricsConfig) PerCertificate() bool { return m.Certificates == nil || *m.Certificates }

// PerInstance says whether the per-instance families are on.
func (m MetricsConfig) PerInstance() bool { return m.Instances == nil || *m.Instances }

// Complete applies the defaults to a configuration built in code.
func (c *Config) Complete() { c.setDefaults() }

func (c *Config) setDefaults() {
	if c.Poll.Interval == 0 {
		c.Poll.Interval = Duration(DefaultPollInterval)
	}
	if c.Poll.StallTimeout == 0 {
		c.Poll.StallTimeout = Duration(poll.DefaultStallTimeout)
	}
	if c.Poll.FullInterval == nil {
		d := Duration(poll.DefaultFullInterval)
		c.Poll.FullInterval = &d
	}
	if c.Poll.IncrementalOverlap == nil {
		d := Duration(poll.DefaultOverlap)
		c.Poll.IncrementalOverlap = &d
	}
	if c.Poll.MaxShrink == nil {
		v := poll.DefaultMaxShrink
		c.Poll.MaxShrink = &v
	}
	if c.Poll.MaxBackoff == 0 {
		c.Poll.MaxBackoff = 4 * c.Poll.Interval
	}
	if c.Poll.ProgressInterval == 0 {
		c.Poll.ProgressInterval = Duration(time.Minute)
	}
	if c.RateLimit.Calls == 0 {
		c.RateLimit.Calls = certview.DefaultRateLimitCalls
	}
	if c.RateLimit.Window == 0 {
		c.RateLimit.Window = Duration(certview.DefaultRateLimitWindow)
	}
	if c.RateLimit.Concurrency == 0 {
		c.RateLimit.Concurrency = certview.DefaultConcurrency
	}
	if c.Metrics.WeakRSABits == 0 {
		c.Metrics.WeakRSABits = DefaultWeakRSABits
	}
	if c.Metrics.WeakECBits == 0 {
		c.Metrics.WeakECBits = DefaultWeakECBits
	}
	if c.Qualys.MaxRetries == 0 {
		c.Qualys.MaxRetries = certview.DefaultMaxRetries
	}
	c.keepZeros()
}

// Load reads, decodes strictly, completes (secrets from files or the environment) and
// validates a configuration file. The file must be a regular file of at most
// MaxConfigFileBytes.
func Load(path string) (*Config, error) {
	data, err := readLimited(path, MaxConfigFileBytes)
	if err != nil {
		return nil, &Error{File: path, Msg: "--config.file: " + err.Error()}
	}
	return Parse(path, data, os.Getenv)
}

// Parse is Load on bytes; getenv looks up the environment. Its errors never hold a
// secret of the file.
func Parse(name string, data []byte, getenv func(string) string) (*Config, error) {
	var c Config
	var root yaml.Node
	_ = yaml.Unmarshal(data, &root)
	cfg, err := c.parse(name, data, &root, getenv)
	if err != nil {
		return nil, redact(err, secretsIn(&root, &c))
	}
	return cfg, nil
}

func (c *Config) parse(name string, data []byte, root *yaml.Node, getenv func(string) string) (*Config, error) {
	lineOf := func(key string) int { return findLine(root, strings.Split(key, ".")) }
	fail := func(key, format string, args ...any) error {
		return &Error{File: name, Key: key, Line: lineOf(key), Msg: fmt.Sprintf(format, args...)}
	}
	if err := checkSecretNodes(root, fail); err != nil {
		return nil, err
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) {
		return nil, decodeError(name, err, root)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, &Error{File: name, Msg: "more than one YAML document"}
	}
	if err := c.explicitZeros(root, fail); err != nil {
		return nil, err
	}
	c.setDefaults()
	if err := c.resolveSecrets(getenv, fail); err != nil {
		return nil, err
	}
	if err := c.validate(fail); err != nil {
		return nil, err
	}
	return c, nil
}

// resolveSecrets fills the password and client secret from *_file or the environment.
func (c *Config) resolveSecrets(getenv func(string) string, fail func(string, string, ...any) error) error {
	q := &c.Qualys
	type source struct {
		value    *Secret
		file     string
		env      string
		key      string
		required bool
	}
	for _, s := range []source{
		{&q.Password, q.PasswordFile, EnvPassword, "qualys.password", q.Username != ""},
		{&q.ClientSecret, q.ClientSecretFile, EnvClientSecret, "qualys.client_secret", q.ClientID != ""},
	} {
		if *s.value != "" && s.file != "" {
			return fail(s.key, "give %s or %s_file, not both", s.key, s.key)
		}
		if s.file != "" {
			// The errors name the key, never the path: a path may be the secret itself,
			// written under the wrong key.
			b, err := readLimited(s.file, MaxSecretFileBytes)
			if err != nil {
				return fail(s.key+"_file", "cannot read the file it names: %v", err)
			}
			v := strings.TrimRight(string(b), "\r\n")
			if v == "" {
				return fail(s.key+"_file", "the file it names is empty")
			}
			*s.value = Secret(v)
		}
		if *s.value == "" && s.required {
			*s.value = Secret(getenv(s.env))
		}
		if *s.value == "" && s.required {
			return fail(s.key, "required: set %s, %s_file, or the environment variable %s", s.key, s.key, s.env)
		}
	}
	return nil
}

func (c *Config) validate(fail func(string, string, ...any) error) error {
	q := c.Qualys
	switch {
	case q.APIURL == "" && q.Platform == "":
		return fail("qualys.api_url", "required (or qualys.platform, such as US1)")
	case q.APIURL != "" && q.Platform != "":
		return fail("qualys.platform", "give qualys.api_url or qualys.platform, not both")
	case q.Platform != "":
		if _, err := certview.PlatformURL(q.Platform); err != nil {
			return fail("qualys.platform", "%v", err)
		}
	}
	if q.Username == "" && q.ClientID == "" {
		return fail("qualys.username", "required (or qualys.client_id for an API client)")
	}
	if q.Username != "" && q.ClientID != "" {
		return fail("qualys.client_id", "give qualys.username or qualys.client_id, not both")
	}
	if q.PageSize < 0 || q.PageSize > certview.MaxPageSize {
		return fail("qualys.page_size", "%d is out of range 1..%d", q.PageSize, certview.MaxPageSize)
	}
	if v := q.CertificatesAPI; v != "" && !slices.Contains(certview.Versions, v) {
		return fail("qualys.certificates_api_version", "%q: must be one of %s", v, strings.Join(certview.Versions, ", "))
	}
	if err := q.CertificateFilter.Validate(); err != nil {
		return fail("qualys.certificate_filter", "%v", err)
	}
	if err := q.InstanceFilter.Validate(); err != nil {
		return fail("qualys.instance_filter", "%v", err)
	}
	if q.Timeout < 0 {
		return fail("qualys.timeout", "must be positive")
	}
	if q.MaxRetries < 0 {
		return fail("qualys.max_retries", "must not be negative (0: no retries)")
	}
	if q.CAFile != "" {
		// Read once, bounded, here: the client trusts what was read, not what the path
		// holds later.
		b, err := readLimited(q.CAFile, MaxCAFileBytes)
		if err != nil {
			return fail("qualys.ca_file", "cannot read the file it names: %v", err)
		}
		if !x509.NewCertPool().AppendCertsFromPEM(b) {
			return fail("qualys.ca_file", "the file it names holds no PEM certificate")
		}
		c.Qualys.caPEM = b
	}
	p := c.Poll
	switch {
	case time.Duration(p.Interval) < time.Second:
		return fail("poll.interval", "%s is below the minimum of 1s", p.Interval)
	case p.Timeout < 0:
		return fail("poll.timeout", "must not be negative (0: no cap)")
	case p.StallTimeout < Duration(time.Second):
		return fail("poll.stall_timeout", "%s is below the minimum of 1s", p.StallTimeout)
	case q.Timeout > 0 && p.StallTimeout < q.Timeout:
		return fail("poll.stall_timeout", "%s is shorter than qualys.timeout (%s): a call may take that long", p.StallTimeout, q.Timeout)
	case p.MaxBackoff < p.Interval:
		return fail("poll.max_backoff", "%s is shorter than poll.interval (%s)", p.MaxBackoff, p.Interval)
	case *p.FullInterval < 0, *p.FullInterval > 0 && *p.FullInterval < p.Interval:
		return fail("poll.full_interval", "%s: must be 0 (every poll full) or at least poll.interval (%s)", *p.FullInterval, p.Interval)
	case *p.IncrementalOverlap < 0:
		return fail("poll.incremental_overlap", "must not be negative")
	case !(*p.MaxShrink > 0 && *p.MaxShrink <= 1):
		return fail("poll.max_shrink", "%v: must be a share above 0 and at most 1, such as 0.5 (a full listing may lose half the certificates or instances before it is held); 1 turns the guard off", *p.MaxShrink)
	}
	r := c.RateLimit
	switch {
	case r.Calls < 0:
		return fail("rate_limit.calls", "must be positive")
	case time.Duration(r.Window) < time.Second:
		return fail("rate_limit.window", "%s is below the minimum of 1s", r.Window)
	case r.Concurrency < 0:
		return fail("rate_limit.concurrency", "must be positive")
	}
	m := c.Metrics
	if m.WeakRSABits < 0 || m.WeakECBits < 0 {
		return fail("metrics", "weak_rsa_bits and weak_ec_bits must be positive")
	}
	if err := knownLabels(exposition.CertificateInfoLabels(), m.CertificateInfoLabels); err != nil {
		return fail("metrics.certificate_info_labels", "%v", err)
	}
	if err := knownLabels(exposition.InstanceInfoLabels(), m.InstanceInfoLabels); err != nil {
		return fail("metrics.instance_info_labels", "%v", err)
	}
	if err := c.Owners.validate(fail); err != nil {
		return err
	}
	if c.Owners.Configured() && !m.PerInstance() {
		// Without them every expiry alert would lose its owner labels, and its route.
		return fail("metrics.instances", "false leaves owners.labels nowhere to go: the owners are served on qualys_certview_instance_info, where the rules and alerts find them; keep the per-instance families on, or remove owners")
	}
	if c.Snapshot.Path != "" {
		dir := filepath.Dir(c.Snapshot.Path)
		if st, err := os.Stat(dir); err != nil || !st.IsDir() {
			return fail("snapshot.path", "directory %s does not exist", dir)
		}
	}
	// Whatever the client would still refuse, report against the qualys section.
	cc := c.ClientConfig()
	if err := cc.Validate(); err != nil {
		key := "qualys"
		if q.APIURL != "" && strings.HasPrefix(err.Error(), "gateway: ") {
			key = "qualys.api_url"
		}
		return fail(key, "%v", err)
	}
	if host, plain := plainHTTP(q.APIURL); plain && !loopback(host) && !q.AllowInsecureHTTP {
		return fail("qualys.api_url", "http:// sends the password in clear to %s, a host outside loopback: use https, or set qualys.allow_insecure_http: true", host)
	}
	return nil
}

// ClientConfig maps the file onto the client's settings (without clock, logger, hooks).
func (c *Config) ClientConfig() certview.Config {
	q := c.Qualys
	return certview.Config{
		BaseURL:             q.APIURL,
		Platform:            q.Platform,
		Credentials:         certview.Credentials{Username: q.Username, Password: string(q.Password), ClientID: q.ClientID, ClientSecret: string(q.ClientSecret)},
		Timeout:             time.Duration(q.Timeout),
		CAPEM:               q.caPEM,
		InsecureSkipVerify:  q.InsecureSkipVerify,
		CertificatesVersion: q.CertificatesAPI,
		PageSize:            q.PageSize,
		AssetType:           q.AssetType,
		CertificateFilter:   q.CertificateFilter,
		InstanceFilter:      q.InstanceFilter,
		Includes:            c.includes(),
		ExcludeFields:       q.ExcludeFields,
		TokenRenewMargin:    time.Duration(q.TokenRenewMargin),
		MaxPages:            q.MaxPages,
		MaxRetries:          orNone(q.MaxRetries, certview.NoRetries),
		RateLimit: certview.RateLimit{
			Calls:       orNone(c.RateLimit.Calls, certview.NoRateLimit),
			Window:      time.Duration(c.RateLimit.Window),
			Concurrency: c.RateLimit.Concurrency,
		},
	}
}

// includes is qualys.includes, with ASSET_TAGS when owners are configured (and only
// then: the tags make every certificate page larger).
func (c *Config) includes() []string {
	if !c.Owners.Configured() || slices.Contains(c.Qualys.Includes, "ASSET_TAGS") {
		return c.Qualys.Includes
	}
	return append(slices.Clip(c.Qualys.Includes), "ASSET_TAGS")
}

// knownLabels checks an allow-list of info labels against the labels a family has.
func knownLabels(all, allow []string) error {
	for _, l := range allow {
		if !slices.Contains(all, l) {
			return fmt.Errorf("unknown label %q (known: %s)", l, strings.Join(all, ", "))
		}
	}
	return nil
}

// orNone maps a completed setting's 0 (which the client reads as "the default") onto the
// client's value for none.
func orNone(v, none int) int {
	if v == 0 {
		return none
	}
	return v
}

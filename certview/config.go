// Package certview is a client for the Qualys Certificate View (CertView) API.
//
// It owns authentication (JWT and its renewal), paging, the subscription's rate and
// concurrency limits, retries, and decoding into typed records. It knows nothing of
// Prometheus: callers observe it through Hooks.
package certview

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/go-kit/log"
	"github.com/jonboulle/clockwork"
)

// Defaults, from the vendor documents and the Standard API service.
const (
	DefaultVersion         = VersionAuto
	DefaultPageSize        = 200
	MaxPageSize            = 200
	DefaultAssetType       = "ALL"
	DefaultTimeout         = 60 * time.Second
	DefaultRateLimitCalls  = 300
	DefaultRateLimitWindow = time.Hour
	DefaultConcurrency     = 2
	TokenLifetime          = 4 * time.Hour
	DefaultRenewMargin     = 30 * time.Minute
	DefaultMaxPages        = 10000
	DefaultMaxRetries      = 3
	DefaultThrottleRetries = 5
	DefaultBackoffBase     = time.Second
	DefaultBackoffMax      = 2 * time.Minute
	AssetsWindow           = 10000 // records the v1 assets endpoint serves per query

	// NoRetries, as Config.MaxRetries, makes no retries at all (0 takes the default).
	NoRetries = -1
	// NoRateLimit, as RateLimit.Calls, sets no client-side budget (0 takes the default):
	// the client then keeps to what the server's X-RateLimit headers say, once it says
	// it.
	NoRateLimit = -1
	// A page's body may hold PageBytesPerRecord bytes per record asked for, plus
	// PageBytesSlack, unless Config.MaxPageBytes says otherwise: 13.5 MiB for a page of
	// 200. The vendor's sample records are 2 to 4 KiB; a certificate listing carries a
	// certificate's assets inline (up to about a thousand, past which the vendor points to
	// the assets API), so the allowance is generous, and the slack lets one record of
	// about 1 MiB through even a small page.
	PageBytesPerRecord      = 64 << 10
	PageBytesSlack          = 1 << 20
	maxErrorBodyBytes       = 200
	maxTokenBytes           = 64 << 10
	maxResponseHeaderBytes  = 256 << 10 // all of a response's headers (Go's default is 10 MiB)
	defaultUserAgentProduct = "certview_exporter"
)

// Platforms maps the Qualys platform names to their API gateway URLs.
var Platforms = map[string]string{
	"US1":  "https://gateway.qg1.apps.qualys.com",
	"US2":  "https://gateway.qg2.apps.qualys.com",
	"US3":  "https://gateway.qg3.apps.qualys.com",
	"US4":  "https://gateway.qg4.apps.qualys.com",
	"EU1":  "https://gateway.qg1.apps.qualys.eu",
	"EU2":  "https://gateway.qg2.apps.qualys.eu",
	"EU3":  "https://gateway.qg3.apps.qualys.it",
	"IN1":  "https://gateway.qg1.apps.qualys.in",
	"CA1":  "https://gateway.qg1.apps.qualys.ca",
	"AE1":  "https://gateway.qg1.apps.qualys.ae",
	"UK1":  "https://gateway.qg1.apps.qualys.co.uk",
	"AU1":  "https://gateway.qg1.apps.qualys.com.au",
	"KSA1": "https://gateway.qg1.apps.qualysksa.com",
}

// PlatformURL returns the gateway URL of a platform name (case-insensitive).
func PlatformURL(platform string) (string, error) {
	if u, ok := Platforms[strings.ToUpper(strings.TrimSpace(platform))]; ok {
		return u, nil
	}
	names := make([]string, 0, len(Platforms))
	for n := range Platforms {
		names = append(names, n)
	}
	sort.Strings(names)
	return "", fmt.Errorf("unknown platform %q (known: %s; or give a full URL)", platform, strings.Join(names, ", "))
}

// Versions of the certificates endpoint that the client accepts: auto (negotiate) or
// one of NegotiationOrder.
var Versions = []string{VersionAuto, "v2.2", "v2.1", "v2"}

// Credentials authenticate to the gateway: a username and password, or an API client
// ID and secret. Its String and GoString never print the secrets.
type Credentials struct {
	Username     string
	Password     string
	ClientID     string
	ClientSecret string
}

// String describes the credentials without their secrets.
func (c Credentials) String() string {
	switch {
	case c.ClientID != "":
		return fmt.Sprintf("api client %q", c.ClientID)
	case c.Username != "":
		return fmt.Sprintf("user %q", c.Username)
	}
	return "no credentials"
}

// GoString keeps %#v from printing the secrets.
func (c Credentials) GoString() string { return "certview.Credentials{" + c.String() + "}" }

// Format prints String (GoString for %#v) whatever the verb, so that no verb, %d or %x
// included, reaches the secret fields; a Config holding the credentials prints safely
// too.
func (c Credentials) Format(f fmt.State, verb rune) { formatSafe(f, verb, c.String(), c.GoString()) }

// formatSafe writes a secret holder's description for any verb: goString for %#v, else
// s formatted as a string with the verb and flags given.
func formatSafe(f fmt.State, verb rune, s, goString string) {
	if verb == 'v' && f.Flag('#') {
		_, _ = io.WriteString(f, goString)
		return
	}
	fmt.Fprintf(f, fmt.FormatString(f, verb), s)
}

func (c Credentials) oauth() bool { return c.ClientID != "" }

func (c Credentials) validate() error {
	user := c.Username != "" || c.Password != ""
	client := c.ClientID != "" || c.ClientSecret != ""
	switch {
	case user && client:
		return errors.New("credentials: give a username and password or a client ID and secret, not both")
	case user && c.Username == "":
		return errors.New("credentials: password given without a username")
	case user && c.Password == "":
		return errors.New("credentials: username given without a password")
	case client && c.ClientID == "":
		return errors.New("credentials: client secret given without a client ID")
	case client && c.ClientSecret == "":
		return errors.New("credentials: client ID given without a client secret")
	case !user && !client:
		return errors.New("credentials: a username and password, or a client ID and secret, are required")
	}
	return nil
}

// FilterTerm is one condition in the vendor's filter syntax.
type FilterTerm struct {
	Field    string `json:"field" yaml:"field"`
	Operator string `json:"operator" yaml:"operator"`
	Value    string `json:"value" yaml:"value"`
}

// Filter is the vendor's filter object: terms joined by an operation (AND or OR).
type Filter struct {
	Filters   []FilterTerm `json:"filters" yaml:"filters"`
	Operation string       `json:"operation,omitempty" yaml:"operation"`
}

// Operators the vendor documents for filters.
var Operators = []string{
	"EQUALS", "NOT_EQUALS", "CONTAINS", "IN", "IS_EMPTY", "IS_NOT_EMPTY",
	"GREATER", "LESSER", "GREATER_THAN_EQUAL", "LESS_THAN_EQUAL",
}

// Validate checks the filter's operation and each term.
func (f *Filter) Validate() error {
	if f == nil {
		return nil
	}
	switch f.Operation {
	case "", "AND", "OR":
	default:
		return fmt.Errorf("operation %q: must be AND or OR", f.Operation)
	}
	for i, t := range f.Filters {
		if strings.TrimSpace(t.Field) == "" {
			return fmt.Errorf("filters[%d]: field is empty", i)
		}
		if !slices.Contains(Operators, t.Operator) {
			return fmt.Errorf("filters[%d] (%s): operator %q: must be one of %s", i, t.Field, t.Operator, strings.Join(Operators, ", "))
		}
	}
	return nil
}

// ErrNotNarrowable says that terms cannot be added to a filter: its terms are joined by
// OR, and the vendor's filter has one level, so (a OR b) AND c cannot be written.
var ErrNotNarrowable = errors.New("its terms are joined by OR, which cannot be narrowed with AND")

// Narrow returns f with terms ANDed on, as a new filter (f is not modified). A filter of
// one term joined by OR is the same as one joined by AND; more than one is
// ErrNotNarrowable.
func Narrow(f *Filter, terms ...FilterTerm) (*Filter, error) {
	out := &Filter{Operation: "AND"}
	if f != nil {
		if f.Operation == "OR" && len(f.Filters) > 1 {
			return nil, ErrNotNarrowable
		}
		out.Filters = append(out.Filters, f.Filters...)
	}
	out.Filters = append(out.Filters, terms...)
	if len(out.Filters) == 0 {
		return nil, nil
	}
	return out, nil
}

// RateLimit is the client-side budget for one API: calls per window and calls at once.
// Response headers can only tighten it.
type RateLimit struct {
	Calls       int // 0: DefaultRateLimitCalls; negative (NoRateLimit): no client-side budget
	Window      time.Duration
	Concurrency int
}

// Config holds the connection settings. Zero values take the defaults above.
type Config struct {
	// BaseURL is the gateway URL. Platform is used when BaseURL is empty.
	BaseURL  string
	Platform string

	Credentials Credentials

	Timeout            time.Duration // per HTTP request
	InsecureSkipVerify bool
	CAPEM              []byte // PEM certificates to trust instead of the system's; nil: the system's

	CertificatesVersion string // auto (default), v2.2, v2.1 or v2
	PageSize            int    // 1..200, default 200
	AssetType           string // default ALL

	CertificateFilter *Filter
	InstanceFilter    *Filter
	Includes          []string
	ExcludeFields     []string

	RateLimit        RateLimit
	TokenRenewMargin time.Duration // renew this long before the token expires
	MaxPages         int           // runaway-paging guard per listing
	// MaxPageBytes bounds one page's body, after decompression. 0 means
	// PageSize*PageBytesPerRecord + PageBytesSlack.
	MaxPageBytes       int64
	MaxRetries         int // for 5xx, network and stream errors; negative (NoRetries): none
	MaxThrottleRetries int // for 409, 429 and 503
	BackoffBase        time.Duration
	BackoffMax         time.Duration

	UserAgent string

	// Transport replaces the HTTP transport (tests). TLS settings are then ignored.
	Transport http.RoundTripper
	Clock     clockwork.Clock
	Logger    log.Logger
	Hooks     Hooks
}

func (c *Config) setDefaults() {
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.CertificatesVersion == "" {
		c.CertificatesVersion = DefaultVersion
	}
	if c.PageSize == 0 {
		c.PageSize = DefaultPageSize
	}
	if c.AssetType == "" {
		c.AssetType = DefaultAssetType
	}
	if c.RateLimit.Calls == 0 {
		c.RateLimit.Calls = DefaultRateLimitCalls
	}
	if c.RateLimit.Window == 0 {
		c.RateLimit.Window = DefaultRateLimitWindow
	}
	if c.RateLimit.Concurrency == 0 {
		c.RateLimit.Concurrency = DefaultConcurrency
	}
	if c.TokenRenewMargin == 0 {
		c.TokenRenewMargin = DefaultRenewMargin
	}
	if c.MaxPages == 0 {
		c.MaxPages = DefaultMaxPages
	}
	if c.MaxRetries == 0 {
		c.MaxRetries = DefaultMaxRetries
	}
	if c.MaxThrottleRetries == 0 {
		c.MaxThrottleRetries = DefaultThrottleRetries
	}
	if c.BackoffBase == 0 {
		c.BackoffBase = DefaultBackoffBase
	}
	if c.BackoffMax == 0 {
		c.BackoffMax = DefaultBackoffMax
	}
	if c.UserAgent == "" {
		c.UserAgent = defaultUserAgentProduct
	}
	if c.Clock == nil {
		c.Clock = clockwork.NewRealClock()
	}
	if c.Logger == nil {
		c.Logger = log.NewNopLogger()
	}
}

// pageByteLimit is the most bytes one page's body may hold.
func (c *Config) pageByteLimit() int64 {
	if c.MaxPageBytes > 0 {
		return c.MaxPageBytes
	}
	return int64(c.PageSize)*PageBytesPerRecord + PageBytesSlack
}

// gateway resolves BaseURL or Platform to a URL without a trailing slash.
func (c *Config) gateway() (string, error) {
	raw := strings.TrimSpace(c.BaseURL)
	if raw == "" && c.Platform == "" {
		return "", errors.New("gateway: a base URL or a platform name is required")
	}
	if raw != "" && c.Platform != "" {
		return "", errors.New("gateway: give a base URL or a platform name, not both")
	}
	if raw == "" {
		u, err := PlatformURL(c.Platform)
		if err != nil {
			return "", fmt.Errorf("gateway: %w", err)
		}
		return u, nil
	}
	if strings.Contains(raw, "@") {
		// Userinfo, perhaps a password: say so without printing it, and before any
		// parsing, whose errors quote the URL.
		return "", fmt.Errorf("gateway: base URL %q must not carry credentials; use the credential settings", redactUserinfo(raw))
	}
	u, err := url.Parse(raw)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return "", fmt.Errorf("gateway: base URL %q: %v", raw, err)
	}
	if u.Scheme != "https" && u.Scheme != "http" {
		return "", fmt.Errorf("gateway: base URL %q: scheme must be https (or http for a local simulator)", raw)
	}
	if u.Host == "" {
		return "", fmt.Errorf("gateway: base URL %q has no host", raw)
	}
	if u.User != nil {
		return "", errors.New("gateway: base URL must not carry credentials; use the credential settings")
	}
	return strings.TrimRight(u.String(), "/"), nil
}

// redactUserinfo replaces what stands between the scheme and the last "@" of a URL, the
// userinfo wherever a password's own "/", "?" or "#" may have moved the URL's parts.
func redactUserinfo(raw string) string {
	at := strings.LastIndex(raw, "@")
	if at < 0 {
		return raw
	}
	start := 0
	if i := strings.Index(raw[:at], "://"); i >= 0 {
		start = i + len("://")
	}
	return raw[:start] + "[REDACTED]" + raw[at:]
}

// Validate checks the configuration after applying defaults. Its errors name the setting
// at fault and never contain a secret.
func (c *Config) Validate() error {
	cc := *c
	cc.setDefaults()
	return cc.validate()
}

func (c *Config) validate() error {
	if _, err := c.gateway(); err != nil {
		return err
	}
	if err := c.Credentials.validate(); err != nil {
		return err
	}
	if !slices.Contains(Versions, c.CertificatesVersion) {
		return fmt.Errorf("certificates version %q: must be one of %s", c.CertificatesVersion, strings.Join(Versions, ", "))
	}
	if c.PageSize < 1 || c.PageSize > MaxPageSize {
		return fmt.Errorf("page size %d: must be between 1 and %d", c.PageSize, MaxPageSize)
	}
	for _, r := range c.AssetType {
		if (r < 'A' || r > 'Z') && r != '_' {
			return fmt.Errorf("asset type %q: must be an upper-case name such as ALL or MANAGED", c.AssetType)
		}
	}
	if err := c.CertificateFilter.Validate(); err != nil {
		return fmt.Errorf("certificate filter: %w", err)
	}
	if err := c.InstanceFilter.Validate(); err != nil {
		return fmt.Errorf("instance filter: %w", err)
	}
	switch {
	case c.Timeout < 0:
		return fmt.Errorf("timeout %s: must be positive", c.Timeout)
	case c.RateLimit.Window < time.Second:
		return fmt.Errorf("rate limit window %s: must be at least 1s", c.RateLimit.Window)
	case c.RateLimit.Concurrency < 0:
		return fmt.Errorf("rate limit concurrency %d: must be positive", c.RateLimit.Concurrency)
	case c.TokenRenewMargin < 0 || c.TokenRenewMargin >= TokenLifetime:
		return fmt.Errorf("token renew margin %s: must be between 0 and %s", c.TokenRenewMargin, TokenLifetime)
	case c.MaxPages < 1:
		return fmt.Errorf("max pages %d: must be at least 1", c.MaxPages)
	case c.MaxPageBytes < 0:
		return fmt.Errorf("max page bytes %d: must not be negative (0 derives it from the page size)", c.MaxPageBytes)
	case c.MaxThrottleRetries < 0:
		return errors.New("throttle retries: must not be negative")
	case c.BackoffBase <= 0 || c.BackoffMax < c.BackoffBase:
		return fmt.Errorf("backoff %s..%s: base must be positive and not above the maximum", c.BackoffBase, c.BackoffMax)
	}
	return nil
}

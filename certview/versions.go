package certview

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-kit/log/level"
)

// VersionAuto lets the client choose the certificates API version: the newest in
// NegotiationOrder that answers.
const VersionAuto = "auto"

// NegotiationOrder is the order in which VersionAuto tries the certificates API
// versions: newest first. A version answering 404 or 410 has been retired by the
// vendor, and the next is tried.
var NegotiationOrder = []string{"v2.2", "v2.1", "v2"}

// InstancesVersion is the only version of the instances API.
const InstancesVersion = "v2"

// versionState remembers the certificates API version that answered, so that a retired
// path is not asked again at every poll.
type versionState struct {
	mu     sync.Mutex
	chosen string // "" until a listing succeeds (auto), or the configured version
}

func (v *versionState) get() string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.chosen
}

func (v *versionState) set(version string) (changed bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	changed = v.chosen != version
	v.chosen = version
	return changed
}

// forget drops the remembered version if it is still the one that failed.
func (v *versionState) forget(version string) {
	v.mu.Lock()
	if v.chosen == version {
		v.chosen = ""
	}
	v.mu.Unlock()
}

// candidates lists the versions to try, in order: the remembered one, then the rest of
// NegotiationOrder. Each is asked at most once per negotiation.
func (v *versionState) candidates() []string {
	chosen := v.get()
	if chosen == "" {
		return NegotiationOrder
	}
	out := []string{chosen}
	for _, o := range NegotiationOrder {
		if o != chosen {
			out = append(out, o)
		}
	}
	return out
}

// CertificatesVersion returns the certificates API version in use: the configured one,
// or under VersionAuto the one negotiated ("" before the first successful listing).
func (c *Client) CertificatesVersion() string {
	if c.cfg.CertificatesVersion != VersionAuto {
		return c.cfg.CertificatesVersion
	}
	return c.versions.get()
}

// retired says whether a listing failed because the path answered 404 or 410.
func retired(err error) (*APIError, bool) {
	var apiErr *APIError
	if errors.As(err, &apiErr) && (apiErr.Status == http.StatusNotFound || apiErr.Status == http.StatusGone) {
		return apiErr, true
	}
	return nil, false
}

// VersionError says that no certificates API version answered, or that the configured
// one was retired.
type VersionError struct {
	Tried []string  // the versions asked, in order
	Last  *APIError // the last answer (404 or 410)
	Auto  bool
}

func (e *VersionError) Error() string {
	if !e.Auto {
		return fmt.Sprintf("certview: certificates API %s answered HTTP %d: the vendor may have retired it; set qualys.certificates_api_version to auto or to one of %s (%v)",
			e.Tried[0], e.Last.Status, strings.Join(NegotiationOrder, ", "), e.Last)
	}
	return fmt.Sprintf("certview: no certificates API version answered (tried %s; the last answered HTTP %d: %v)", strings.Join(e.Tried, ", "), e.Last.Status, e.Last)
}

// Unwrap returns the last answer.
func (e *VersionError) Unwrap() error { return e.Last }

// negotiate runs list with each candidate version of the certificates API until one
// answers. Under an explicit version only that one is asked. A 404 or 410 on the first
// page steps down to the next version; on a later page the listing fails, and the next
// listing negotiates afresh.
func (c *Client) negotiate(list func(version string) (ListStats, error)) (ListStats, error) {
	if v := c.cfg.CertificatesVersion; v != VersionAuto {
		st, err := list(v)
		if apiErr, ok := retired(err); ok && st.Pages == 0 {
			return st, &VersionError{Tried: []string{v}, Last: apiErr}
		}
		if err == nil {
			c.reportVersion(EndpointCertificates, v)
		}
		return st, err
	}
	var tried []string
	var last *APIError
	for _, v := range c.versions.candidates() {
		tried = append(tried, v)
		st, err := list(v)
		apiErr, gone := retired(err)
		if !gone {
			if err == nil {
				if c.versions.set(v) {
					level.Info(c.cfg.Logger).Log("msg", "using certificates API version", "version", v, "tried", strings.Join(tried, ","))
				}
				c.reportVersion(EndpointCertificates, v)
			}
			return st, err
		}
		c.versions.forget(v)
		if st.Pages > 0 {
			return st, err
		}
		last = apiErr
		level.Warn(c.cfg.Logger).Log("msg", "certificates API version did not answer; trying an older one", "version", v, "status", apiErr.Status)
	}
	return ListStats{}, &VersionError{Tried: tried, Last: last, Auto: true}
}

func (c *Client) reportVersion(endpoint, version string) {
	c.cfg.Hooks.version(VersionEvent{Endpoint: endpoint, Version: version})
}

// Deprecation is what a response said of its API's retirement (RFC 9745's Deprecation
// and RFC 8594's Sunset headers). Zero times are unknown.
type Deprecation struct {
	Deprecated bool
	Since      time.Time // when it was or will be deprecated
	Sunset     time.Time // when it stops answering
}

// ParseDeprecation reads the Deprecation and Sunset headers. Deprecation is an RFC 9745
// date ("@1735689600"), or, as earlier drafts had it, an HTTP date or "true". Sunset is
// an HTTP date. A malformed value is reported in problems and otherwise ignored.
func ParseDeprecation(h http.Header) (d Deprecation, problems []error) {
	if raw := strings.TrimSpace(h.Get("Deprecation")); raw != "" {
		switch {
		case strings.HasPrefix(raw, "@"):
			n, err := strconv.ParseInt(raw[1:], 10, 64)
			if errors.Is(err, strconv.ErrRange) {
				err = nil // n is int64-max or -min: it saturates
			}
			if err != nil {
				problems = append(problems, fmt.Errorf("header Deprecation: %.40q is not @<unix seconds>", raw))
				break
			}
			d.Deprecated, d.Since = true, unixSecondsTime(n)
		case strings.EqualFold(raw, "true"):
			d.Deprecated = true
		default:
			t, err := http.ParseTime(raw)
			if err != nil {
				problems = append(problems, fmt.Errorf("header Deprecation: %.40q is neither @<unix seconds> nor an HTTP date", raw))
				break
			}
			d.Deprecated, d.Since = true, t.UTC()
		}
	}
	if raw := strings.TrimSpace(h.Get("Sunset")); raw != "" {
		t, err := http.ParseTime(raw)
		if err != nil {
			problems = append(problems, fmt.Errorf("header Sunset: %.40q is not an HTTP date", raw))
		} else {
			d.Deprecated, d.Sunset = true, t.UTC()
		}
	}
	return d, problems
}

// noteDeprecation warns once per path that the API announced its retirement, and hands
// every announcement to the hooks.
func (c *Client) noteDeprecation(endpoint, version, path string, h http.Header) {
	d, problems := ParseDeprecation(h)
	for _, p := range problems {
		level.Warn(c.cfg.Logger).Log("msg", "ignoring a malformed deprecation header", "endpoint", endpoint, "err", p)
	}
	if !d.Deprecated {
		return
	}
	if _, warned := c.deprecationWarned.LoadOrStore(path, true); !warned {
		kv := []any{"msg", "the CertView API announced that this API version is deprecated; plan the move to a newer one",
			"endpoint", endpoint, "version", version, "path", path}
		if !d.Since.IsZero() {
			kv = append(kv, "deprecation", d.Since.Format(time.RFC3339))
		}
		if !d.Sunset.IsZero() {
			kv = append(kv, "sunset", d.Sunset.Format(time.RFC3339))
		}
		level.Warn(c.cfg.Logger).Log(kv...)
	}
	c.cfg.Hooks.deprecation(DeprecationEvent{Endpoint: endpoint, Version: version, Deprecation: d})
}

// unixSecondsTime is time.Unix(n, 0), saturated at MinEpochTime and MaxEpochTime rather
// than wrapped (time.Unix overflows near int64-max seconds).
func unixSecondsTime(n int64) time.Time {
	const limit = math.MaxInt64 / 1000
	switch {
	case n > limit:
		return MaxEpochTime
	case n < -limit:
		return MinEpochTime
	}
	return time.Unix(n, 0).UTC()
}

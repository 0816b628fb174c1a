package certview

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-kit/log/level"
)

// Client talks to one CertView subscription. It is safe for concurrent use.
type Client struct {
	cfg      Config
	base     string
	http     *http.Client
	limiters map[string]*limiter
	rand     func() float64

	// auth: sem serialises renewals so that concurrent callers share one /auth call.
	authSem chan struct{}
	tokMu   sync.RWMutex
	token   string
	expires time.Time

	secrets []string // the password and client secret in each spelling redact replaces

	versions          versionState
	deprecationWarned sync.Map // paths whose deprecation was logged
}

// New validates cfg, applies the defaults and returns a client. It makes no request.
func New(cfg Config) (*Client, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("certview: %w", err)
	}
	base, _ := cfg.gateway()
	transport := cfg.Transport
	if transport == nil {
		tlsConfig := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: cfg.InsecureSkipVerify} //nolint:gosec // opt-in
		if cfg.CAPEM != nil {
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(cfg.CAPEM) {
				return nil, fmt.Errorf("certview: CA certificates: no PEM certificate found")
			}
			tlsConfig.RootCAs = pool
		}
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.TLSClientConfig = tlsConfig
		t.MaxIdleConnsPerHost = 4
		t.MaxResponseHeaderBytes = maxResponseHeaderBytes
		transport = t
	}
	c := &Client{
		cfg:      cfg,
		base:     base,
		http:     &http.Client{Transport: transport, Timeout: cfg.Timeout, CheckRedirect: noRedirect},
		limiters: map[string]*limiter{},
		rand:     rand.Float64,
		authSem:  make(chan struct{}, 1),
		secrets:  secretSpellings(cfg.Credentials.Password, cfg.Credentials.ClientSecret),
	}
	for _, ep := range []string{EndpointCertificates, EndpointInstances, EndpointAssets} {
		l := newLimiter(cfg.Clock, cfg.RateLimit)
		l.logger, l.endpoint = cfg.Logger, ep
		c.limiters[ep] = l
	}
	return c, nil
}

// pageByteLimit is the most bytes the body of a page of size records may hold, after
// decompression: Config.MaxPageBytes when set, a bound on any one answer whatever its
// size; otherwise PageBytesPerRecord per record asked for plus PageBytesSlack, so that
// a smaller page (see listPages) has a smaller limit.
func (c *Client) pageByteLimit(size int) int64 {
	if c.cfg.MaxPageBytes > 0 || size == c.cfg.PageSize {
		return c.cfg.pageByteLimit()
	}
	return int64(size)*PageBytesPerRecord + PageBytesSlack
}

// noRedirect stops redirects: a POST with a bearer token must not follow one.
func noRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// Close releases the client's idle connections.
func (c *Client) Close() { c.http.CloseIdleConnections() }

// BaseURL returns the gateway URL in use.
func (c *Client) BaseURL() string { return c.base }

// Budget returns the current rate-limit budget of an endpoint's API.
func (c *Client) Budget(endpoint string) (Budget, bool) {
	l, ok := c.limiters[endpoint]
	if !ok {
		return Budget{}, false
	}
	return l.budget(), true
}

// String describes the client by its gateway and the credentials' public part.
func (c *Client) String() string {
	return fmt.Sprintf("certview.Client{%s, %s}", c.base, c.cfg.Credentials)
}

// Format prints String for every verb: the client holds the token and the credentials,
// which fmt would otherwise print from its unexported fields.
func (c *Client) Format(f fmt.State, verb rune) { formatSafe(f, verb, c.String(), c.String()) }

// redact replaces every secret the client knows in s: the token, and the password and
// client secret in every spelling a server could echo them in (see secretSpellings).
func (c *Client) redact(s string) string {
	c.tokMu.RLock()
	tok := c.token
	c.tokMu.RUnlock()
	if len(tok) >= 4 {
		s = strings.ReplaceAll(s, tok, "[REDACTED]")
	}
	for _, secret := range c.secrets {
		s = replaceFold(s, secret, "[REDACTED]")
	}
	return s
}

// replaceFold replaces every instance of old in s, matched without regard to ASCII case
// (a server may echo a secret upper-cased), with repl.
func replaceFold(s, old, repl string) string {
	lowerS, lowerOld := asciiLower(s), asciiLower(old)
	var out strings.Builder
	for {
		i := strings.Index(lowerS, lowerOld)
		if i < 0 {
			if out.Len() == 0 {
				return s
			}
			out.WriteString(s)
			return out.String()
		}
		out.WriteString(s[:i])
		out.WriteString(repl)
		s, lowerS = s[i+len(old):], lowerS[i+len(old):]
	}
}

// asciiLower lower-cases ASCII letters only, so that byte offsets stay those of s.
func asciiLower(s string) string {
	b := []byte(s)
	for i := range b {
		b[i] = lowerASCII(b[i])
	}
	return string(b)
}

// secretSpellings lists the ways a secret can come back in a body: as it is, URL-query
// and form encoded (how /auth sent it), path encoded, each with upper- or lower-case
// hex, JSON escaped, HTML escaped, and base64 (standard and URL alphabets, padded or
// not). redact matches them without regard to ASCII case. Longest first, so that a spelling is replaced
// before a shorter one inside it; secrets under 4 bytes are left alone.
func secretSpellings(secrets ...string) []string {
	lowerHex := func(s string) string {
		b := []byte(s)
		for i := 0; i+2 < len(b); i++ {
			if b[i] == '%' {
				b[i+1], b[i+2] = lowerASCII(b[i+1]), lowerASCII(b[i+2])
			}
		}
		return string(b)
	}
	seen := map[string]bool{}
	var out []string
	for _, secret := range secrets {
		if len(secret) < 4 {
			continue
		}
		var js strings.Builder
		enc := json.NewEncoder(&js)
		enc.SetEscapeHTML(false)
		_ = enc.Encode(secret)
		jsonHTML, _ := json.Marshal(secret)
		for _, sp := range []string{secret, url.QueryEscape(secret), url.PathEscape(secret),
			lowerHex(url.QueryEscape(secret)), lowerHex(url.PathEscape(secret)),
			strings.Trim(strings.TrimSpace(js.String()), `"`), strings.Trim(string(jsonHTML), `"`), html.EscapeString(secret),
			base64.StdEncoding.EncodeToString([]byte(secret)), base64.RawStdEncoding.EncodeToString([]byte(secret)),
			base64.URLEncoding.EncodeToString([]byte(secret)), base64.RawURLEncoding.EncodeToString([]byte(secret))} {
			if !seen[sp] {
				seen[sp] = true
				out = append(out, sp)
			}
		}
	}
	slices.SortStableFunc(out, func(a, b string) int { return len(b) - len(a) })
	return out
}

func lowerASCII(b byte) byte {
	if b >= 'A' && b <= 'Z' {
		return b + 'a' - 'A'
	}
	return b
}

// headerProblem describes a malformed header of h for the log. A value that holds a
// secret the client knows is not quoted at all, since a prefix of it would survive
// redaction.
func (c *Client) headerProblem(h http.Header, err error) string {
	var he *HeaderError
	if errors.As(err, &he) {
		if raw, _ := headerValue(h, he.Header); c.redact(raw) != raw {
			return fmt.Sprintf("header %s: a value holding a secret (not shown) %s", he.Header, he.Reason)
		}
	}
	return c.redact(err.Error())
}

// snippet returns the first 200 bytes of a body for an error message. It redacts
// before it cuts, so that a secret straddling the cut cannot survive in part.
func (c *Client) snippet(body io.Reader) string {
	b, _ := io.ReadAll(io.LimitReader(body, 64<<10))
	s := c.redact(string(b))
	if len(s) > maxErrorBodyBytes {
		s = s[:maxErrorBodyBytes]
	}
	return strings.ToValidUTF8(s, "?")
}

// Token returns a valid token, authenticating when none is cached or the cached one is
// within the renewal margin of its expiry. Concurrent callers share one renewal.
func (c *Client) Token(ctx context.Context) (string, error) {
	if tok, ok := c.cachedToken(); ok {
		return tok, nil
	}
	select {
	case c.authSem <- struct{}{}:
	case <-ctx.Done():
		return "", ctx.Err()
	}
	defer func() { <-c.authSem }()
	if tok, ok := c.cachedToken(); ok {
		return tok, nil
	}
	tok, exp, err := c.authenticate(ctx)
	if err != nil {
		return "", err
	}
	c.tokMu.Lock()
	c.token, c.expires = tok, exp
	c.tokMu.Unlock()
	return tok, nil
}

func (c *Client) cachedToken() (string, bool) {
	c.tokMu.RLock()
	defer c.tokMu.RUnlock()
	if c.token == "" || !c.cfg.Clock.Now().Before(c.expires.Add(-c.cfg.TokenRenewMargin)) {
		return "", false
	}
	return c.token, true
}

// invalidate drops the cached token if it is still the one that was refused, so that
// concurrent 401s lead to one renewal.
func (c *Client) invalidate(refused string) {
	c.tokMu.Lock()
	if c.token == refused {
		c.token = ""
	}
	c.tokMu.Unlock()
}

// authenticate calls /auth (or /auth/oauth), retrying 5xx and network errors.
func (c *Client) authenticate(ctx context.Context) (string, time.Time, error) {
	cred := c.cfg.Credentials
	path := "/auth"
	form := url.Values{}
	if cred.oauth() {
		path = "/auth/oauth"
	} else {
		form.Set("username", cred.Username)
		form.Set("password", cred.Password)
		form.Set("token", "true")
		form.Set("permissions", "true")
	}
	body := []byte(form.Encode())
	var lastErr error
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			d := backoff(attempt-1, c.cfg.BackoffBase, c.cfg.BackoffMax, c.rand)
			c.cfg.Hooks.wait(WaitEvent{Endpoint: EndpointAuth, Page: -1, Reason: "retry", Duration: d})
			if err := sleep(ctx, c.cfg.Clock, d); err != nil {
				return "", time.Time{}, err
			}
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+path, bytes.NewReader(body))
		if err != nil {
			return "", time.Time{}, fmt.Errorf("certview: auth request: %w", err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("User-Agent", c.cfg.UserAgent)
		if cred.oauth() {
			req.Header.Set("clientId", cred.ClientID)
			req.Header.Set("clientSecret", cred.ClientSecret)
		}
		start := c.cfg.Clock.Now()
		resp, err := c.http.Do(req)
		ev := RequestEvent{Endpoint: EndpointAuth, Page: -1, Duration: c.cfg.Clock.Since(start), RateLimit: noRateLimit}
		if err != nil {
			ev.Err = err
			c.cfg.Hooks.request(ev)
			if ctx.Err() != nil {
				return "", time.Time{}, ctx.Err()
			}
			lastErr = fmt.Errorf("certview: %s: %w", path, err)
			if attempt < c.cfg.MaxRetries {
				continue
			}
			return "", time.Time{}, lastErr
		}
		ev.Status = resp.StatusCode
		c.cfg.Hooks.request(ev)
		switch {
		case resp.StatusCode == http.StatusCreated || resp.StatusCode == http.StatusOK:
			raw, err := io.ReadAll(io.LimitReader(resp.Body, maxTokenBytes+1))
			drain(resp)
			if err != nil {
				lastErr = fmt.Errorf("certview: %s: reading token: %w", path, err)
				if attempt < c.cfg.MaxRetries {
					continue
				}
				return "", time.Time{}, lastErr
			}
			if len(raw) > maxTokenBytes {
				return "", time.Time{}, &AuthError{Endpoint: EndpointAuth, Status: resp.StatusCode,
					Reason: fmt.Sprintf("the answer is larger than a token may be (%d bytes)", maxTokenBytes)}
			}
			tok := strings.TrimSpace(string(raw))
			if tok == "" || strings.ContainsAny(tok, " \t\r\n<{") {
				return "", time.Time{}, &AuthError{Endpoint: EndpointAuth, Status: resp.StatusCode, Reason: "the answer is not a JWT"}
			}
			return tok, c.tokenExpiry(tok), nil
		case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
			drain(resp)
			return "", time.Time{}, &AuthError{Endpoint: EndpointAuth, Status: resp.StatusCode,
				Reason: fmt.Sprintf("the gateway refused the credentials of %s", cred)}
		case resp.StatusCode >= 500 && attempt < c.cfg.MaxRetries:
			drain(resp)
			continue
		default:
			e := &APIError{Endpoint: EndpointAuth, Page: -1, Status: resp.StatusCode, Body: c.snippet(resp.Body)}
			drain(resp)
			return "", time.Time{}, e
		}
	}
}

var noRateLimit = RateLimitInfo{Unknown, Unknown, Unknown, Unknown, Unknown, Unknown}

// tokenExpiry reads the JWT's exp claim; without one the token lives TokenLifetime.
func (c *Client) tokenExpiry(tok string) time.Time {
	now := c.cfg.Clock.Now()
	fallback := now.Add(TokenLifetime)
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return fallback
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return fallback
	}
	var claims struct {
		Exp float64 `json:"exp"`
	}
	if json.Unmarshal(payload, &claims) != nil || claims.Exp <= 0 {
		return fallback
	}
	exp := EpochTime(claims.Exp)
	if exp.Before(now) || exp.After(fallback) {
		// A clock skew or an odd claim: trust the documented lifetime, capped.
		if exp.Before(now) {
			return now.Add(c.cfg.TokenRenewMargin + time.Minute)
		}
		return fallback
	}
	return exp
}

func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	resp.Body.Close()
}

// TransportError is a request that got no response: its message has any secret the
// client knows replaced, and it still says whether it was a timeout (net.Error).
type TransportError struct {
	msg     string
	timeout bool
}

func (e *TransportError) Error() string { return e.msg }

// Timeout says whether the request timed out.
func (e *TransportError) Timeout() bool { return e.timeout }

// Temporary is part of net.Error; a timeout is worth retrying.
func (e *TransportError) Temporary() bool { return e.timeout }

// errStream marks a body that broke off or was not JSON: the page is fetched again.
type errStream struct{ err error }

func (e *errStream) Error() string { return e.err.Error() }
func (e *errStream) Unwrap() error { return e.err }

// call POSTs body to path and hands a 2xx response body to read (nil for a 204). It
// applies the rate limiter, renews the token once on a 401, waits out throttling and
// retries 5xx, network and stream errors within their bounds.
func (c *Client) call(ctx context.Context, endpoint string, page int, path string, body []byte, read func(io.Reader) error) error {
	lim := c.limiters[endpoint]
	renewed := false
	retries, throttles := 0, 0
	attempts := 0
	for {
		attempts++
		tok, err := c.Token(ctx)
		if err != nil {
			return err
		}
		release, err := lim.acquire(ctx, func(reason string, d time.Duration) {
			c.cfg.Hooks.wait(WaitEvent{Endpoint: endpoint, Page: page, Reason: reason, Duration: d})
		})
		if err != nil {
			return err
		}
		status, info, hdr, err := c.roundTrip(ctx, endpoint, page, path, body, tok, read)
		release()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var wait time.Duration
		switch {
		case err == nil && status < 300:
			return nil
		case err != nil && status == 0, err != nil && isStream(err):
			if retries >= c.cfg.MaxRetries {
				return &PageError{Endpoint: endpoint, Page: page, Attempts: attempts, Err: err}
			}
			wait = backoff(retries, c.cfg.BackoffBase, c.cfg.BackoffMax, c.rand)
			retries++
		case status == http.StatusUnauthorized:
			if renewed {
				return &AuthError{Endpoint: endpoint, Status: status, Reason: "a renewed token was refused too"}
			}
			renewed = true
			c.invalidate(tok)
			continue
		case status == http.StatusConflict || status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable:
			if throttles >= c.cfg.MaxThrottleRetries {
				return &ThrottledError{Endpoint: endpoint, Page: page, Status: status, Attempts: attempts}
			}
			wait = c.throttleWait(lim, page, info, hdr, throttles)
			throttles++
			lim.throttled(wait)
			c.cfg.Hooks.wait(WaitEvent{Endpoint: endpoint, Page: page, Reason: "throttled", Duration: wait})
			if err := sleep(ctx, c.cfg.Clock, wait); err != nil {
				return err
			}
			continue
		case status >= 500:
			if retries >= c.cfg.MaxRetries {
				return err
			}
			wait = backoff(retries, c.cfg.BackoffBase, c.cfg.BackoffMax, c.rand)
			retries++
		default:
			return err
		}
		level.Debug(c.cfg.Logger).Log("msg", "retrying CertView call", "endpoint", endpoint, "page", page, "status", status, "err", err, "wait", wait)
		c.cfg.Hooks.wait(WaitEvent{Endpoint: endpoint, Page: page, Reason: "retry", Duration: wait})
		if err := sleep(ctx, c.cfg.Clock, wait); err != nil {
			return err
		}
	}
}

func isStream(err error) bool {
	var s *errStream
	return errors.As(err, &s)
}

// throttleWait is X-RateLimit-ToWait-Sec, else Retry-After, else backoff with jitter.
// A wait from a header is bounded by the limiter's wait cap (info has been clamped
// already; Retry-After is clamped here).
func (c *Client) throttleWait(lim *limiter, page int, info RateLimitInfo, h http.Header, attempt int) time.Duration {
	if info.ToWaitSec >= 0 {
		d, _ := secondsDuration(info.ToWaitSec, lim.waitCap())
		return d
	}
	if d, ok := retryAfter(h, c.cfg.Clock.Now()); ok {
		return lim.clampWait(page, "Retry-After", d)
	}
	return backoff(attempt, c.cfg.BackoffBase, c.cfg.BackoffMax, c.rand)
}

// roundTrip makes one request. For a 2xx it runs read on the body; otherwise it returns
// an *APIError carrying the start of the body.
func (c *Client) roundTrip(ctx context.Context, endpoint string, page int, path string, body []byte, tok string, read func(io.Reader) error) (int, RateLimitInfo, http.Header, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+path, bytes.NewReader(body))
	if err != nil {
		return 0, noRateLimit, nil, fmt.Errorf("certview: %s request: %w", endpoint, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.cfg.UserAgent)
	req.Header.Set("Authorization", "Bearer "+tok)
	start := c.cfg.Clock.Now()
	resp, err := c.http.Do(req)
	if err != nil {
		var ne net.Error
		err = &TransportError{msg: c.redact(err.Error()), timeout: errors.As(err, &ne) && ne.Timeout()}
		c.cfg.Hooks.request(RequestEvent{Endpoint: endpoint, Page: page, Duration: c.cfg.Clock.Since(start), RateLimit: noRateLimit, Err: err})
		return 0, noRateLimit, nil, err
	}
	defer resp.Body.Close()
	info, problems := ParseRateLimit(resp.Header)
	for _, p := range problems {
		level.Warn(c.cfg.Logger).Log("msg", "ignoring a malformed rate-limit header", "endpoint", endpoint, "page", page, "err", c.headerProblem(resp.Header, p))
	}
	info = c.limiters[endpoint].clamp(info, page)
	c.limiters[endpoint].update(info)
	c.noteDeprecation(endpoint, pathVersion(path), path, resp.Header)
	var result error
	switch {
	case resp.StatusCode == http.StatusNoContent:
		result = read(nil)
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		result = read(resp.Body)
	default:
		result = &APIError{Endpoint: endpoint, Page: page, Status: resp.StatusCode, Body: c.snippet(resp.Body)}
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	c.cfg.Hooks.request(RequestEvent{Endpoint: endpoint, Page: page, Status: resp.StatusCode, Duration: c.cfg.Clock.Since(start), RateLimit: info})
	return resp.StatusCode, info, resp.Header, result
}

// pathVersion is the version segment of an API path: "v2.1" of /certview/v2.1/certificates.
func pathVersion(path string) string {
	parts := strings.SplitN(strings.TrimPrefix(path, "/"), "/", 3)
	if len(parts) < 2 {
		return ""
	}
	return parts[1]
}

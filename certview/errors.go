package certview

import (
	"errors"
	"fmt"
	"time"
)

// Endpoint names, used in errors, hooks and rate limiting (limits are per API).
const (
	EndpointAuth         = "auth"
	EndpointCertificates = "certificates"
	EndpointInstances    = "instances"
	EndpointAssets       = "assets"
)

// APIError is a response the client does not retry: a 4xx other than 401, 409 and 429,
// or a 5xx after the retries ran out. Body holds at most the first 200 bytes of the
// response, with any secret the client knows replaced.
type APIError struct {
	Endpoint string
	Page     int
	Status   int
	Body     string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("certview: %s page %d: HTTP %d: %q", e.Endpoint, e.Page, e.Status, e.Body)
}

// AuthError says the gateway refused the credentials or the token. It never carries them.
type AuthError struct {
	Endpoint string // "auth", or the data endpoint whose call kept answering 401
	Status   int
	Reason   string
}

func (e *AuthError) Error() string {
	return fmt.Sprintf("certview: authentication failed at %s (HTTP %d): %s", e.Endpoint, e.Status, e.Reason)
}

// ThrottledError says the API kept throttling (409, 429 or 503) past the retry bound.
type ThrottledError struct {
	Endpoint string
	Page     int
	Status   int
	Attempts int
}

func (e *ThrottledError) Error() string {
	return fmt.Sprintf("certview: %s page %d: still throttled (HTTP %d) after %d attempts", e.Endpoint, e.Page, e.Status, e.Attempts)
}

// PageError wraps a failure to fetch or decode one page: a network error, a truncated
// or malformed body, after the retries ran out.
type PageError struct {
	Endpoint string
	Page     int
	Attempts int
	Err      error
}

func (e *PageError) Error() string {
	return fmt.Sprintf("certview: %s page %d (after %d attempts): %v", e.Endpoint, e.Page, e.Attempts, e.Err)
}

func (e *PageError) Unwrap() error { return e.Err }

// PageLimitError says a page broke a bound and was refused: its body was larger than
// Limit bytes (Config.MaxPageBytes, counted after decompression), or it held more than
// Limit records, the page size asked for. A page over its byte limit is first read
// again in smaller pages (see listPages); when one of those is still too large, Size
// and First say which: the Size records from record First of the page on.
type PageLimitError struct {
	Endpoint string
	Page     int    // at the configured page size
	Unit     string // "bytes" or "records"
	Limit    int64
	Size     int // 0, or the smaller page size that still broke the limit
	First    int // with Size: the position in Page of the smaller page's first record
}

func (e *PageLimitError) Error() string {
	if e.Unit == "records" {
		return fmt.Sprintf("certview: %s page %d: the answer holds more than the %d records asked for", e.Endpoint, e.Page, e.Limit)
	}
	if e.Size > 0 {
		return fmt.Sprintf("certview: %s page %d: even read again in pages of %d records, the answer for its records %d to %d is larger than its limit of %d %s",
			e.Endpoint, e.Page, e.Size, e.First, e.First+e.Size-1, e.Limit, e.Unit)
	}
	return fmt.Sprintf("certview: %s page %d: the answer is larger than its limit of %d %s", e.Endpoint, e.Page, e.Limit, e.Unit)
}

// RepeatedPageError says that an answer repeated what the listing had already read, as
// an API that ignores pageNumber does: the listing stops instead of paging on through
// the same records until Config.MaxPages. Identical: the answer was the previous page
// again, byte for byte; otherwise it was the second full page in a row that held only
// records already listed.
type RepeatedPageError struct {
	Endpoint  string
	Page      int // at the configured page size
	Records   int // records in the answer
	Identical bool
}

func (e *RepeatedPageError) Error() string {
	if e.Identical {
		return fmt.Sprintf("certview: %s page %d: the answer repeats the previous page byte for byte (%d records); the API appears to ignore pageNumber",
			e.Endpoint, e.Page, e.Records)
	}
	return fmt.Sprintf("certview: %s page %d: a second full page in a row holds only records already listed (%d records); the API appears to ignore pageNumber",
		e.Endpoint, e.Page, e.Records)
}

// ErrTooManyPages stops a listing that pages past Config.MaxPages.
var ErrTooManyPages = errors.New("certview: listing exceeded the maximum page count")

// RequestEvent describes one HTTP request, for metrics.
type RequestEvent struct {
	Endpoint  string
	Page      int // -1 for auth
	Status    int // 0 when no response arrived
	Duration  time.Duration
	RateLimit RateLimitInfo
	Err       error // transport error, when Status is 0
}

// WaitEvent describes a pause before a request: the client's own budget, a throttling
// answer, or a retry backoff. Duration is never negative, and a wait a header asked for
// is at most MaxHeaderWait.
type WaitEvent struct {
	Endpoint string
	Page     int
	Reason   string // "rate_limit", "concurrency", "throttled", "retry"
	Duration time.Duration
}

// SkipEvent describes a record that could not be decoded and was skipped. The events of
// a page are reported once it has been read whole, so a page read again after a broken
// stream reports its records once. The log has one summary line per page.
type SkipEvent struct {
	Endpoint string
	Page     int
	Index    int // position in the page
	Err      error
}

// CoerceEvent describes the records of one page that decoded only after values of an
// unexpected type were coerced (a number sent as a string, one value where a list was
// expected) or, in fields the exporter does not use, dropped. It is reported once the
// page has been read whole.
type CoerceEvent struct {
	Endpoint   string
	Page       int
	Records    int    // records kept by coercion
	Values     int    // values coerced or dropped in them
	FirstIndex int    // position in the page of the first such record
	First      string // path of its first coerced value, such as "keySize" or "assets[0].hostInstances[0].port"
}

// VersionEvent says which version of an API answered a listing.
type VersionEvent struct {
	Endpoint string
	Version  string
}

// DeprecationEvent says that a response carried Deprecation or Sunset headers.
type DeprecationEvent struct {
	Endpoint string
	Version  string
	Deprecation
}

// Hooks observe the client. Any of them may be nil. They run on the caller's goroutine
// and must not block.
type Hooks struct {
	Request     func(RequestEvent)
	Wait        func(WaitEvent)
	Skip        func(SkipEvent)
	Coerce      func(CoerceEvent)
	Version     func(VersionEvent)
	Deprecation func(DeprecationEvent)
}

func (h Hooks) version(e VersionEvent) {
	if h.Version != nil {
		h.Version(e)
	}
}

func (h Hooks) deprecation(e DeprecationEvent) {
	if h.Deprecation != nil {
		h.Deprecation(e)
	}
}

func (h Hooks) request(e RequestEvent) {
	if h.Request != nil {
		h.Request(e)
	}
}

// wait reports a wait. A negative duration is reported as 0: callers add it to counters.
func (h Hooks) wait(e WaitEvent) {
	if e.Duration < 0 {
		e.Duration = 0
	}
	if h.Wait != nil {
		h.Wait(e)
	}
}

func (h Hooks) skip(e SkipEvent) {
	if h.Skip != nil {
		h.Skip(e)
	}
}

func (h Hooks) coerce(e CoerceEvent) {
	if h.Coerce != nil {
		h.Coerce(e)
	}
}

// JoinHooks makes one Hooks that calls each of hs in turn, for clients observed by
// several parties (the exporter's metrics and its poll loop's stall watchdog).
func JoinHooks(hs ...Hooks) Hooks {
	var j Hooks
	for _, h := range hs {
		j.Request = chain(j.Request, h.Request)
		j.Wait = chain(j.Wait, h.Wait)
		j.Skip = chain(j.Skip, h.Skip)
		j.Coerce = chain(j.Coerce, h.Coerce)
		j.Version = chain(j.Version, h.Version)
		j.Deprecation = chain(j.Deprecation, h.Deprecation)
	}
	return j
}

// chain calls a, then b; either may be nil.
func chain[E any](a, b func(E)) func(E) {
	switch {
	case a == nil:
		return b
	case b == nil:
		return a
	}
	return func(e E) { a(e); b(e) }
}

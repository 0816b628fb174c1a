// Package certviewtest is an in-process fake of the Qualys CertView API, in the manner of
// net/http/httptest. It serves a deterministic synthetic inventory with the vendor's
// paging, JWT authentication, sliding-window rate limits with their headers and 429s,
// and injectable faults. Tests use it behind an httptest server; the exporter's --demo
// mode serves it on loopback.
package certviewtest

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"
)

// Options configure a Simulator. Zero values take the defaults noted.
type Options struct {
	Inventory Inventory

	Username     string // default "demo"
	Password     string // default "demo-password"
	ClientID     string // default "demo-client"
	ClientSecret string // default "demo-client-secret"
	TokenTTL     time.Duration

	RateLimit   int           // calls per window per API; default 300
	RateWindow  time.Duration // default 1h
	Concurrency int           // default 2
	// ThrottleStatus answers a call over the limit: 429 (default) or 409.
	ThrottleStatus int
	// HeaderStyle spells the rate-limit headers: "" (the vendor's mixed case),
	// "lower" (all lower case) or "legacy" (X-ConcurrencyLimit-Limit).
	HeaderStyle string

	Clock clockwork.Clock
}

// FaultKind names an injectable fault.
type FaultKind string

// The faults.
const (
	// FaultStatus answers Status with Body and Header.
	FaultStatus FaultKind = "status"
	// FaultHTML answers 502 (or Status) with an HTML error page.
	FaultHTML FaultKind = "html"
	// FaultMalformed answers 200 with a body that is not valid JSON.
	FaultMalformed FaultKind = "malformed"
	// FaultTruncated answers 200 and closes the connection halfway through the body.
	FaultTruncated FaultKind = "truncated"
	// FaultReset closes the connection without an answer.
	FaultReset FaultKind = "reset"
	// FaultSlow holds the answer until Release is closed or the client gives up.
	FaultSlow FaultKind = "slow"
	// FaultSlowBody sends the start of the body, then holds the rest like FaultSlow.
	FaultSlowBody FaultKind = "slow_body"
	// FaultExpireTokens expires every issued token before the call is checked.
	FaultExpireTokens FaultKind = "expire_tokens"
	// FaultBadRecord serves the page with one record replaced by one of the wrong type.
	FaultBadRecord FaultKind = "bad_record"
	// FaultShift shifts the listing by Shift records from this call on: positive
	// repeats records already served, negative skips records.
	FaultShift FaultKind = "shift"
	// FaultIgnorePageNumber answers page 0 (of the page size asked for), whatever
	// pageNumber the call asked for. With Times Always the listing never advances.
	FaultIgnorePageNumber FaultKind = "ignore_page_number"
	// FaultOversized pads the record at position Index of the listing (0 is the first
	// record of page 0, counted in the records the call's filter selects) with a string
	// field of Pad bytes that no client reads, on calls whose page holds that record;
	// calls whose page does not hold it neither match nor use up the fault. Give it
	// Page -1: a client that reads the page again in smaller pages asks for other page
	// numbers.
	FaultOversized FaultKind = "oversized_record"
)

// Always, as Fault.Times, fires the fault on every matching call until ClearFaults.
const Always = -1

// PadField is the name of the field FaultOversized adds to a record.
const PadField = "simulatorPadding"

// Fault is one injected fault. It fires on calls that match Endpoint ("" any data
// endpoint; "auth", "certificates", "instances", "assets") and Page (-1 any page),
// Times times (0 means once).
type Fault struct {
	Endpoint string
	Page     int
	Kind     FaultKind
	Status   int
	Header   map[string]string
	Body     string
	Shift    int
	Index    int // FaultOversized: the record's position in the listing
	Pad      int // FaultOversized: bytes of padding
	Times    int // 0: once; Always: until ClearFaults
	// Skip, when set, serves this many matching requests normally before the fault
	// strikes.
	Skip    int
	Release <-chan struct{}
	// Arrived, when set, is closed once the first held request (FaultSlow,
	// FaultSlowBody) has begun to wait.
	Arrived chan struct{}
}

// queued is an injected fault in the queue.
type queued struct {
	Fault
	arrived sync.Once
}

// Simulator is the fake API, an http.Handler.
type Simulator struct {
	opts Options
	inv  *Inventory

	mu           sync.Mutex
	tokens       map[string]time.Time
	issued       int
	requests     map[string]int // HTTP requests per endpoint, faults included
	windows      map[string][]time.Time
	throttled    map[string]int
	running      map[string]int
	faults       []*queued
	shift        map[string]int
	paths        map[string]int         // HTTP requests per URL path
	retired      map[string]int         // certificates version -> the status its path answers
	notices      map[string]retirement  // certificates version -> Deprecation and Sunset headers
	filterFaults map[string]FilterFault // filter field -> how the API mistreats it
}

// retirement is what a deprecated version's answers announce.
type retirement struct{ deprecation, sunset time.Time }

// New makes a simulator.
func New(opts Options) *Simulator {
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&opts.Username, "demo")
	def(&opts.Password, "demo-password")
	def(&opts.ClientID, "demo-client")
	def(&opts.ClientSecret, "demo-client-secret")
	if opts.TokenTTL == 0 {
		opts.TokenTTL = 4 * time.Hour
	}
	if opts.RateLimit == 0 {
		opts.RateLimit = 300
	}
	if opts.RateWindow == 0 {
		opts.RateWindow = time.Hour
	}
	if opts.Concurrency == 0 {
		opts.Concurrency = 2
	}
	if opts.ThrottleStatus == 0 {
		opts.ThrottleStatus = http.StatusTooManyRequests
	}
	if opts.Clock == nil {
		opts.Clock = clockwork.NewRealClock()
	}
	if opts.Inventory.Now.IsZero() {
		opts.Inventory.Now = opts.Clock.Now()
	}
	inv := opts.Inventory
	inv.churn = newChurnState()
	return &Simulator{
		opts: opts, inv: &inv,
		tokens:       map[string]time.Time{},
		requests:     map[string]int{},
		windows:      map[string][]time.Time{},
		throttled:    map[string]int{},
		running:      map[string]int{},
		shift:        map[string]int{},
		paths:        map[string]int{},
		retired:      map[string]int{},
		notices:      map[string]retirement{},
		filterFaults: map[string]FilterFault{},
	}
}

// Retire makes a certificates API version's path answer status (404 or 410, as after
// the vendor's end of life) from now on; status 0 brings it back.
func (s *Simulator) Retire(version string, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if status == 0 {
		delete(s.retired, version)
		return
	}
	s.retired[version] = status
}

// Deprecate makes a certificates API version's answers carry the Deprecation header
// (RFC 9745, @unix seconds) and, when sunset is not zero, the Sunset header (RFC 8594).
func (s *Simulator) Deprecate(version string, deprecation, sunset time.Time) {
	s.mu.Lock()
	s.notices[version] = retirement{deprecation, sunset}
	s.mu.Unlock()
}

// FilterFault is how the simulated API mistreats a filter field.
type FilterFault string

// The filter faults.
const (
	// FilterWorks applies the field's terms (no fault).
	FilterWorks FilterFault = ""
	// FilterIgnored drops the field's terms silently: the answer holds records the
	// filter would have left out, as some APIs have done.
	FilterIgnored FilterFault = "ignored"
	// FilterRefused answers 400 to any filter naming the field.
	FilterRefused FilterFault = "refused"
)

// SetFilterFault makes the API mistreat filter terms on a field (such as
// instance.scannedDate) from now on; FilterWorks ends it.
func (s *Simulator) SetFilterFault(field string, f FilterFault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f == FilterWorks {
		delete(s.filterFaults, field)
		return
	}
	s.filterFaults[field] = f
}

// applyFilterFaults refuses or drops the terms on mistreated fields.
func (s *Simulator) applyFilterFaults(f *filter) (*filter, error) {
	if f == nil {
		return nil, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	kept := *f
	kept.Filters = nil
	for _, t := range f.Filters {
		switch s.filterFaults[t.Field] {
		case FilterRefused:
			return nil, fmt.Errorf("filter: field %q is not supported with operator %q", t.Field, t.Operator)
		case FilterIgnored:
			continue
		}
		kept.Filters = append(kept.Filters, t)
	}
	if len(kept.Filters) == 0 {
		return nil, nil
	}
	return &kept, nil
}

// PathRequests returns the HTTP requests received for a URL path, such as
// /certview/v2/certificates.
func (s *Simulator) PathRequests(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.paths[path]
}

// Server is a simulator behind a started httptest server.
type Server struct {
	*httptest.Server
	Sim *Simulator
}

// NewServer starts a simulator on a loopback httptest server. Close it when done.
func NewServer(opts Options) *Server {
	sim := New(opts)
	return &Server{Server: httptest.NewServer(sim), Sim: sim}
}

// Inventory returns the inventory served.
func (s *Simulator) Inventory() *Inventory { return s.inv }

// Options returns the options in effect, defaults applied.
func (s *Simulator) Options() Options { return s.opts }

// Inject queues a fault.
func (s *Simulator) Inject(f Fault) {
	fp := &queued{Fault: f}
	if fp.Times == 0 {
		fp.Times = 1
	}
	s.mu.Lock()
	s.faults = append(s.faults, fp)
	s.mu.Unlock()
}

// ClearFaults drops every queued fault.
func (s *Simulator) ClearFaults() {
	s.mu.Lock()
	s.faults = nil
	s.mu.Unlock()
}

// Requests returns the HTTP requests received for an endpoint, faults included.
func (s *Simulator) Requests(endpoint string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests[endpoint]
}

// SetRateLimit changes the budget of every API: calls per rolling window.
func (s *Simulator) SetRateLimit(calls int, window time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.opts.RateLimit, s.opts.RateWindow = calls, window
}

// Throttled counts the calls of an endpoint's API answered with the throttle status
// because its rate or concurrency limit was spent.
func (s *Simulator) Throttled(endpoint string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.throttled[endpoint]
}

// ExpireTokens makes every issued token invalid.
func (s *Simulator) ExpireTokens() {
	s.mu.Lock()
	s.tokens = map[string]time.Time{}
	s.mu.Unlock()
}

// Tokens returns every token issued and still known.
func (s *Simulator) Tokens() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.tokens))
	for t := range s.tokens {
		out = append(out, t)
	}
	return out
}

// TokensIssued returns how many tokens /auth and /auth/oauth have issued.
func (s *Simulator) TokensIssued() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.issued
}

// takeFault finds the first queued fault other than FaultOversized that matches a
// call for page and uses it up once.
func (s *Simulator) takeFault(endpoint string, page int) *queued {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, f := range s.faults {
		if (f.Endpoint == "" && endpoint != "auth") || f.Endpoint == endpoint {
			if f.Page >= 0 && f.Page != page && endpoint != "auth" {
				continue
			}
			if f.Kind == FaultOversized {
				continue // see takePads
			}
			if f.Skip > 0 {
				f.Skip--
				return nil
			}
			if f.Times == Always {
				return f
			}
			f.Times--
			if f.Times <= 0 {
				s.faults = append(s.faults[:i], s.faults[i+1:]...)
			}
			return f
		}
	}
	return nil
}

// takePads finds every FaultOversized that matches a call for page of size records,
// whose record the page holds, and uses each up once.
func (s *Simulator) takePads(endpoint string, page, size int) []Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	start := max(page*size-s.shift[endpoint], 0)
	var out []Fault
	kept := s.faults[:0]
	for _, f := range s.faults {
		match := f.Kind == FaultOversized && (f.Endpoint == "" || f.Endpoint == endpoint) &&
			(f.Page < 0 || f.Page == page) && f.Index >= start && f.Index < start+size
		switch {
		case match && f.Skip > 0:
			f.Skip--
		case match:
			out = append(out, f.Fault)
			if f.Times != Always {
				if f.Times--; f.Times <= 0 {
					continue
				}
			}
		}
		kept = append(kept, f)
	}
	s.faults = kept
	return out
}

// ServeHTTP implements http.Handler.
func (s *Simulator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	endpoint, version, certhash := route(r.URL.Path)
	s.mu.Lock()
	s.requests[endpoint]++
	s.paths[r.URL.Path]++
	gone := 0
	notice, deprecated := retirement{}, false
	if endpoint == "certificates" {
		gone = s.retired[version]
		notice, deprecated = s.notices[version]
	}
	s.mu.Unlock()
	if endpoint == "" {
		writeError(w, http.StatusNotFound, "no such endpoint: "+r.URL.Path)
		return
	}
	if gone != 0 {
		writeError(w, gone, "this API version has reached its end of life: "+r.URL.Path)
		return
	}
	if deprecated {
		w.Header().Set("Deprecation", "@"+strconv.FormatInt(notice.deprecation.Unix(), 10))
		if !notice.sunset.IsZero() {
			w.Header().Set("Sunset", notice.sunset.UTC().Format(http.TimeFormat))
		}
	}
	if r.Method != http.MethodPost {
		writeError(w, http.StatusMethodNotAllowed, "use POST")
		return
	}
	if endpoint == "auth" {
		if f := s.takeFault("auth", -1); f != nil && s.serveFault(w, r, f, nil) {
			return
		}
		s.serveAuth(w, r)
		return
	}
	var req pageRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "request body is not valid JSON: "+err.Error())
		return
	}
	if req.PageSize == nil {
		ten := 10
		req.PageSize = &ten
	}
	if *req.PageSize < 1 || *req.PageSize > 200 {
		writeError(w, http.StatusBadRequest, "pageSize must be between 1 and 200")
		return
	}
	if req.PageNumber < 0 {
		writeError(w, http.StatusBadRequest, "pageNumber must not be negative")
		return
	}
	fault := s.takeFault(endpoint, req.PageNumber)
	if fault != nil && fault.Kind == FaultIgnorePageNumber {
		req.PageNumber = 0
		fault = nil
	}
	if fault != nil && fault.Kind == FaultExpireTokens {
		s.ExpireTokens()
		fault = nil
	}
	if !s.validToken(r.Header.Get("Authorization")) {
		writeError(w, http.StatusUnauthorized, "invalid or expired token")
		return
	}
	if fault != nil && fault.Kind == FaultShift {
		s.mu.Lock()
		s.shift[endpoint] += fault.Shift
		s.mu.Unlock()
		fault = nil
	}
	if fault != nil && s.serveFault(w, r, fault, nil) {
		return
	}
	done, ok := s.admit(w, endpoint)
	if !ok {
		return
	}
	defer done()
	start := max(req.PageNumber**req.PageSize-s.shiftOf(endpoint), 0)
	pads := s.takePads(endpoint, req.PageNumber, *req.PageSize)
	body, status, msg := s.page(endpoint, version, certhash, &req)
	if status != http.StatusOK {
		writeError(w, status, msg)
		return
	}
	for _, p := range pads {
		body = padRecord(body, p.Index-start, p.Pad)
	}
	if fault != nil {
		s.serveFault(w, r, fault, body)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(body)
}

func (s *Simulator) shiftOf(endpoint string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.shift[endpoint]
}

// padRecord adds PadField, a string of pad bytes, to the page's record at position i.
func padRecord(page []byte, i, pad int) []byte {
	var recs []json.RawMessage
	if json.Unmarshal(page, &recs) != nil || i < 0 || i >= len(recs) {
		return page
	}
	rec := bytes.TrimSpace(recs[i])
	if len(rec) < 2 || rec[0] != '{' {
		return page
	}
	padded := make([]byte, 0, len(rec)+pad+len(PadField)+8)
	padded = append(padded, `{"`+PadField+`":"`...)
	padded = append(padded, bytes.Repeat([]byte("x"), pad)...)
	padded = append(padded, '"')
	if rest := bytes.TrimSpace(rec[1:]); len(rest) > 0 && rest[0] != '}' {
		padded = append(padded, ',')
	}
	padded = append(padded, rec[1:]...)
	recs[i] = padded
	return joinArray(rawRecords(recs))
}

func rawRecords(recs []json.RawMessage) [][]byte {
	out := make([][]byte, len(recs))
	for i, r := range recs {
		out[i] = r
	}
	return out
}

// route maps a path to an endpoint name, the certificates version and a certhash.
func route(path string) (endpoint, version, certhash string) {
	switch {
	case path == "/auth" || path == "/auth/oauth":
		return "auth", "", ""
	case path == "/certview/v2/instances":
		return "instances", "v2", ""
	case strings.HasPrefix(path, "/certview/v1/certificates/") && strings.HasSuffix(path, "/assets"):
		h := strings.TrimSuffix(strings.TrimPrefix(path, "/certview/v1/certificates/"), "/assets")
		if h == "" || strings.Contains(h, "/") {
			return "", "", ""
		}
		return "assets", "v1", h
	}
	for _, v := range []string{"v2", "v2.1", "v2.2"} {
		if path == "/certview/"+v+"/certificates" {
			return "certificates", v, ""
		}
	}
	return "", "", ""
}

func writeError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"errorCode": status, "message": msg})
}

func (s *Simulator) serveAuth(w http.ResponseWriter, r *http.Request) {
	var who string
	if r.URL.Path == "/auth/oauth" {
		if r.Header.Get("clientId") != s.opts.ClientID || r.Header.Get("clientSecret") != s.opts.ClientSecret {
			writeError(w, http.StatusUnauthorized, "Invalid client credentials")
			return
		}
		who = s.opts.ClientID
	} else {
		if err := r.ParseForm(); err != nil {
			writeError(w, http.StatusBadRequest, "body is not form-encoded")
			return
		}
		if r.PostForm.Get("token") != "true" {
			writeError(w, http.StatusBadRequest, "token=true is required")
			return
		}
		if r.PostForm.Get("username") != s.opts.Username || r.PostForm.Get("password") != s.opts.Password {
			writeError(w, http.StatusUnauthorized, "Invalid username or password")
			return
		}
		who = s.opts.Username
	}
	now := s.opts.Clock.Now()
	exp := now.Add(s.opts.TokenTTL)
	s.mu.Lock()
	s.issued++
	n := s.issued
	s.mu.Unlock()
	enc := base64.RawURLEncoding
	claims, _ := json.Marshal(map[string]any{"sub": who, "iat": now.Unix(), "exp": exp.Unix(), "jti": n})
	tok := enc.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`)) + "." + enc.EncodeToString(claims) + "." +
		enc.EncodeToString([]byte(hash(s.inv.Seed, "token:"+who, n)[:32]))
	s.mu.Lock()
	s.tokens[tok] = exp
	s.mu.Unlock()
	w.Header().Set("Content-Type", "text/plain;charset=UTF-8")
	w.WriteHeader(http.StatusCreated)
	_, _ = w.Write([]byte(tok))
}

func (s *Simulator) validToken(header string) bool {
	tok, ok := strings.CutPrefix(header, "Bearer ")
	if !ok {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	exp, ok := s.tokens[tok]
	return ok && s.opts.Clock.Now().Before(exp)
}

// header names in the three spellings.
func (s *Simulator) headerNames() (limit, window, remaining, toWait, concLimit, concRunning string) {
	limit, window, remaining, toWait = "X-RateLimit-Limit", "X-RateLimit-Window-Sec", "X-RateLimit-Remaining", "X-RateLimit-ToWait-Sec"
	concLimit, concRunning = "X-Concurrency-Limit-Limit", "X-Concurrency-Limit-Running"
	switch s.opts.HeaderStyle {
	case "legacy":
		concLimit = "X-ConcurrencyLimit-Limit"
	case "lower":
		lower := func(p ...*string) {
			for _, v := range p {
				*v = strings.ToLower(*v)
			}
		}
		lower(&limit, &window, &remaining, &toWait, &concLimit, &concRunning)
	}
	return
}

// admit applies the sliding-window rate limit and the concurrency limit of the
// endpoint's API and sets the rate-limit headers. It answers the throttle status itself
// when a limit is exceeded.
func (s *Simulator) admit(w http.ResponseWriter, endpoint string) (func(), bool) {
	now := s.opts.Clock.Now()
	s.mu.Lock()
	win := s.windows[endpoint]
	cut := 0
	for cut < len(win) && !win[cut].Add(s.opts.RateWindow).After(now) {
		cut++
	}
	win = win[cut:]
	hLimit, hWindow, hRemaining, hToWait, hConc, hRunning := s.headerNames()
	h := w.Header()
	set := func(k string, v int) { h[k] = []string{strconv.Itoa(v)} }
	set(hLimit, s.opts.RateLimit)
	set(hWindow, int(s.opts.RateWindow/time.Second))
	set(hConc, s.opts.Concurrency)
	throttled := false
	if len(win) >= s.opts.RateLimit {
		wait := win[0].Add(s.opts.RateWindow).Sub(now)
		set(hRemaining, 0)
		set(hToWait, int((wait+time.Second-1)/time.Second))
		set(hRunning, s.running[endpoint])
		throttled = true
	} else if s.running[endpoint] >= s.opts.Concurrency {
		set(hRemaining, s.opts.RateLimit-len(win))
		set(hRunning, s.running[endpoint])
		throttled = true
	}
	if throttled {
		s.windows[endpoint] = win
		s.throttled[endpoint]++
		s.mu.Unlock()
		writeError(w, s.opts.ThrottleStatus, "API rate or concurrency limit exceeded")
		return nil, false
	}
	win = append(win, now)
	s.windows[endpoint] = win
	s.running[endpoint]++
	set(hRemaining, s.opts.RateLimit-len(win))
	set(hRunning, s.running[endpoint])
	s.mu.Unlock()
	return func() {
		s.mu.Lock()
		s.running[endpoint]--
		s.mu.Unlock()
	}, true
}

// serveFault writes the fault. body is the page for faults that need it (nil before
// the page is made). It reports whether it answered.
func (s *Simulator) serveFault(w http.ResponseWriter, r *http.Request, f *queued, body []byte) bool {
	needsPage := f.Kind == FaultTruncated || f.Kind == FaultSlowBody || f.Kind == FaultBadRecord || f.Kind == FaultSlow
	if body == nil && needsPage {
		return false
	}
	hold := func() bool {
		if f.Arrived != nil {
			f.arrived.Do(func() { close(f.Arrived) })
		}
		select {
		case <-f.Release:
			return true
		case <-r.Context().Done():
			return false
		}
	}
	switch f.Kind {
	case FaultStatus:
		for k, v := range f.Header {
			w.Header()[k] = []string{v}
		}
		status := f.Status
		if status == 0 {
			status = http.StatusInternalServerError
		}
		w.WriteHeader(status)
		_, _ = w.Write([]byte(f.Body))
	case FaultHTML:
		status := f.Status
		if status == 0 {
			status = http.StatusBadGateway
		}
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(status)
		_, _ = w.Write([]byte("<html><head><title>502 Bad Gateway</title></head><body><h1>Bad Gateway</h1></body></html>"))
	case FaultMalformed:
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`[{"id": 1, "certhash": "abc",, }`))
	case FaultReset:
		hijackClose(w)
	case FaultTruncated:
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		_, _ = w.Write(body[:len(body)/2])
		if fl, ok := w.(http.Flusher); ok {
			fl.Flush()
		}
		hijackClose(w)
	case FaultSlow:
		if !hold() {
			return true
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	case FaultSlowBody:
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body[:len(body)/2])
		if fl, ok := w.(http.Flusher); ok {
			fl.Flush()
		}
		if !hold() {
			return true
		}
		_, _ = w.Write(body[len(body)/2:])
	case FaultBadRecord:
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(replaceFirstRecord(body))
	default:
		return false
	}
	return true
}

// replaceFirstRecord swaps the page's first record for one with a field of the wrong type.
func replaceFirstRecord(page []byte) []byte {
	var recs []json.RawMessage
	if json.Unmarshal(page, &recs) != nil || len(recs) == 0 {
		return page
	}
	recs[0] = json.RawMessage(`{"id": "not-a-number", "certhash": 42, "keySize": "big"}`)
	out, _ := json.Marshal(recs)
	return out
}

func hijackClose(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic(http.ErrAbortHandler)
	}
	conn, buf, err := hj.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	_ = buf.Flush()
	_ = conn.Close()
}

// pageRequest is the union of the three listing bodies.
type pageRequest struct {
	Filter        json.RawMessage `json:"filter"`
	FilterRequest json.RawMessage `json:"filterRequest"`
	PageNumber    int             `json:"pageNumber"`
	PageSize      *int            `json:"pageSize"`
	Includes      []string        `json:"includes"`
	ExcludeFields string          `json:"excludeFields"`
	AssetType     string          `json:"assetType"`
}

// page builds the JSON of one page.
func (s *Simulator) page(endpoint, version, certhash string, req *pageRequest) ([]byte, int, string) {
	size := *req.PageSize
	s.mu.Lock()
	shift := s.shift[endpoint]
	s.mu.Unlock()
	start := req.PageNumber*size - shift
	if start < 0 {
		start = 0
	}
	var recs [][]byte
	switch endpoint {
	case "certificates":
		f, err := parseFilter(req.Filter, certificateFields(version))
		if err == nil {
			f, err = s.applyFilterFaults(f)
		}
		if err != nil {
			return nil, http.StatusBadRequest, err.Error()
		}
		pubKey := version != "v2"
		tags := slices.Contains(req.Includes, "ASSET_TAGS")
		var keep func(int) bool
		if f != nil {
			keep = func(k int) bool { return f.match(s.inv.certificateGetter(k)) }
		}
		recs = collect(s.inv.CertificateCount(), start, size, nil, keep, s.inv.certificateWindows(f),
			func(k int) []byte { return excludeFields(s.inv.rawCertificate(k, pubKey, tags), req.ExcludeFields) })
	case "instances":
		f, err := parseFilter(req.FilterRequest, instanceFields)
		if err == nil {
			f, err = s.applyFilterFaults(f)
		}
		if err != nil {
			return nil, http.StatusBadRequest, err.Error()
		}
		assetType := req.AssetType
		if assetType == "" {
			assetType = "MANAGED"
		}
		samples := len(s.inv.sampleInstances())
		_, _, removedGen := s.inv.generated()
		removed := make([]int, len(removedGen))
		for i, j := range removedGen {
			removed[i] = j + samples
		}
		var keep func(int) bool
		if f != nil || assetType != "ALL" {
			keep = func(k int) bool {
				return !isIn(removed, k) && assetTypeMatches(s.inv, k, assetType) && f.match(s.inv.instanceGetter(k))
			}
		}
		recs = collect(s.inv.InstanceCount(), start, size, removed, keep, s.inv.instanceWindows(f), s.inv.rawInstance)
	case "assets":
		if (req.PageNumber+1)*size > 10000 {
			return nil, http.StatusBadRequest, "pageNumber and pageSize must stay within the first 10000 records"
		}
		all := s.assetsOf(certhash)
		if all == nil {
			return []byte("[]"), http.StatusOK, ""
		}
		for k := start; k < start+size && k < all.count; k++ {
			recs = append(recs, all.record(k))
		}
	}
	return joinArray(recs), http.StatusOK, ""
}

// collect returns up to size records from the start-th match on. With no filter it
// indexes directly (stepping over the removed listing indices, sorted), so paging a
// large inventory costs only the page. With a filter it tests the records of windows
// (listing index ranges, in order, that hold every record the filter can match; nil:
// all), so that a listing by id ranges costs about its range, not the inventory.
func collect(total, start, size int, removed []int, keep func(int) bool, windows [][2]int, raw func(int) []byte) [][]byte {
	var out [][]byte
	if keep == nil {
		for k := nthAlive(start, removed); k < total && len(out) < size; k++ {
			if !isIn(removed, k) {
				out = append(out, raw(k))
			}
		}
		return out
	}
	if windows == nil {
		windows = [][2]int{{0, total}}
	}
	seen := 0
	for _, w := range windows {
		for k := max(w[0], 0); k < min(w[1], total) && len(out) < size; k++ {
			if !keep(k) {
				continue
			}
			if seen >= start {
				out = append(out, raw(k))
			}
			seen++
		}
	}
	return out
}

// isIn says whether sorted holds k.
func isIn(sorted []int, k int) bool {
	i := sort.SearchInts(sorted, k)
	return i < len(sorted) && sorted[i] == k
}

// assetTypeMatches: every 25th generated instance is on an external asset, which the
// instances listing hides unless assetType is ALL (its default is MANAGED).
func assetTypeMatches(inv *Inventory, k int, assetType string) bool {
	external := false
	if g := k - len(inv.sampleInstances()); g >= 0 && g%25 == 24 {
		external = true
	}
	switch assetType {
	case "ALL":
		return true
	case "MANAGED":
		return !external
	default:
		return external
	}
}

// ExternalInstance says whether listing record k sits on an external asset (hidden by
// the instances listing unless assetType is ALL).
func (inv *Inventory) ExternalInstance(k int) bool { return !assetTypeMatches(inv, k, "MANAGED") }

func joinArray(recs [][]byte) []byte {
	n := 2
	for _, r := range recs {
		n += len(r) + 1
	}
	out := make([]byte, 0, n)
	out = append(out, '[')
	for i, r := range recs {
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, r...)
	}
	return append(out, ']')
}

// excludeFields drops the top-level certificate fields named as certificate.X.
func excludeFields(rec []byte, fields string) []byte {
	if fields == "" {
		return rec
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(rec, &m) != nil {
		return rec
	}
	for _, f := range strings.Split(fields, ",") {
		delete(m, strings.TrimPrefix(strings.TrimSpace(f), "certificate."))
	}
	out, _ := json.Marshal(m)
	return out
}

// assetList is the v1 assets listing of one certificate.
type assetList struct {
	count  int
	record func(k int) []byte
}

func (s *Simulator) assetsOf(certhash string) *assetList {
	inv := s.inv
	switch certhash {
	case "192a86240c5ec5d87dd108f17e2543e78439101f193c99c53193f60d115b885d":
		if inv.VendorSamples {
			recs := sampleRecords("assets_v1.json")
			return &assetList{len(recs), func(k int) []byte { return recs[k] }}
		}
	case "6613xxx30cf5ddcccfdxxxxx44f9b332a9ae0b4304xxxxx646f7bc7xxxxx5bd":
		if inv.VendorSamples {
			recs := sampleRecords("assets_v1_was.json")
			return &assetList{len(recs), func(k int) []byte { return recs[k] }}
		}
	}
	for ci := 0; ci < inv.Certificates; ci++ {
		if hash(inv.Seed, "cert", ci) != certhash {
			continue
		}
		own := inv.instancesOf(ci)
		extra := 0
		if ci == 0 {
			extra = inv.BigCertAssets
		}
		return &assetList{len(own) + extra, func(k int) []byte {
			a := map[string]any{"netbiosName": "", "operatingSystem": "Linux", "certificateCount": 1,
				"created": inv.Now.Add(-90 * 24 * time.Hour).UnixMilli(), "updated": inv.Now.UnixMilli()}
			if k < len(own) {
				in := inv.genInstance(own[k])
				a["assetId"], a["name"] = in.Asset.UUID, in.Asset.Name
				a["assetInterfaces"] = []InterfaceRecord{{Hostname: in.Asset.Name, Address: in.Asset.PrimaryIP}}
			} else {
				a["assetId"], a["name"] = uuidOf(inv.Seed, "bigasset", k), fmt.Sprintf("bulk-%d.example.com", k)
				a["assetInterfaces"] = []InterfaceRecord{}
			}
			b, _ := json.Marshal(a)
			return b
		}}
	}
	return nil
}

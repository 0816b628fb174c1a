package certview

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/go-kit/log/level"
)

// ListStats describes one listing.
type ListStats struct {
	Pages      int  // calls that got a page, answers over the byte limit read again in smaller pages included
	Records    int  // records handed to the caller
	Duplicates int  // records dropped because their id was seen on an earlier page
	Skipped    int  // records that failed to decode
	Coerced    int  // records kept by coercing or dropping values of an unexpected type
	Truncated  bool // the listing stopped at the endpoint's record window
}

// Add sums another listing's figures into s (for a poll made of several listings).
func (s *ListStats) Add(o ListStats) {
	s.Pages += o.Pages
	s.Records += o.Records
	s.Duplicates += o.Duplicates
	s.Skipped += o.Skipped
	s.Coerced += o.Coerced
	s.Truncated = s.Truncated || o.Truncated
}

// record is the constraint for decodable records.
type record[T any] interface {
	*T
	normalize() error
	key() uint64
}

// pager describes one listing endpoint.
type pager struct {
	endpoint   string
	path       string
	body       func(page, size int) ([]byte, error)
	maxRecords int // 0: no window
}

// Reading a page over its byte limit again in smaller pages (see listPages).
const (
	// minSplitSize is the smallest page size a page is split into. Each split costs
	// calls, and the byte limit of a smaller page is smaller too, so going further buys
	// little: with it a page of 200 costs at most 1+2+4+8 = 15 calls, whether it ends
	// read or failed (a page of S at most 2S/minSplitSize-1).
	minSplitSize = 25
	// maxSplitPages is how many pages of one listing may be read again in smaller
	// pages; the next one over its limit fails the listing. With minSplitSize it bounds
	// the extra calls of a listing at 4×14 = 56.
	maxSplitPages = 4
)

// repeatMinRecords is the smallest page the repeated-page rules judge (see lister.note):
// in a page of a few records, a few records inserted ahead of the cursor would repeat
// the whole page. Smaller page sizes rely on Config.MaxPages alone.
const repeatMinRecords = 10

// listPages pages through p from page 0 and hands each page's new records to fn (once
// per page, or not at all when a page brings none). It stops at a page holding fewer
// records than the page size, an empty page or a 204, so N records cost
// floor(N/pageSize)+1 calls.
//
// A page whose body is over its byte limit (a few huge records) is read again in
// smaller pages before the listing fails: page N of size S holds the same records as
// pages 2N and 2N+1 of size S/2 (or, for a size S with smallest prime factor f, pages
// fN to fN+f-1 of size S/f), and a smaller page has a smaller limit (see
// Client.pageByteLimit). Those that are still too large are split again, down to
// minSplitSize; one still too large then fails the listing with a PageLimitError that
// names the page and the records. After them the listing goes on at the configured size
// from page N+1. At most maxSplitPages pages of a listing are split.
//
// An API that ignores pageNumber answers page 0 again and again; the listing would
// spend the rate-limit budget until MaxPages. Such a listing fails with a
// RepeatedPageError; see lister.note for the rules.
func listPages[T any, P record[T]](ctx context.Context, c *Client, p pager, fn func([]T) error) (ListStats, error) {
	l := &lister[T, P]{ctx: ctx, c: c, p: p, size: c.cfg.PageSize, seen: map[uint64]struct{}{}}
	size := l.size
	for page := 0; ; page++ {
		if page >= c.cfg.MaxPages {
			return l.st, fmt.Errorf("%w: %s stopped at page %d (max pages %d)", ErrTooManyPages, p.endpoint, page, c.cfg.MaxPages)
		}
		if p.maxRecords > 0 && (page+1)*size > p.maxRecords {
			l.st.Truncated = true
			level.Warn(c.cfg.Logger).Log("msg", "listing reached the endpoint's record window; later records are not fetched",
				"endpoint", p.endpoint, "window", p.maxRecords)
			return l.st, nil
		}
		fresh, short, err := l.read(page, 0, size)
		if isByteLimit(err) {
			fresh, short, err = l.split(page, err)
		}
		if err != nil {
			return l.st, err
		}
		if len(fresh) > 0 {
			l.st.Records += len(fresh)
			if err := fn(fresh); err != nil {
				return l.st, err
			}
		}
		if short {
			return l.st, nil
		}
	}
}

// lister is the state of one listing.
type lister[T any, P record[T]] struct {
	ctx  context.Context
	c    *Client
	p    pager
	size int // the configured page size
	st   ListStats
	seen map[uint64]struct{}

	prevSum  [sha256.Size]byte // the previous full page's body, hashed
	prevFull bool              // prevSum is set: the previous answer was a full page
	stale    int               // full pages in a row without a new record
	splits   int               // pages read again in smaller pages
}

// isByteLimit says whether err is a page over its byte limit.
func isByteLimit(err error) bool {
	var limitErr *PageLimitError
	return errors.As(err, &limitErr) && limitErr.Unit == "bytes"
}

// read fetches size records from record first of page on (page counted at the
// configured size; size divides first and the configured size) and returns those not
// seen before, and whether the answer was short, which ends the listing. Events, logs
// and errors name page, and positions within it.
func (l *lister[T, P]) read(page, first, size int) (fresh []T, short bool, err error) {
	c, p := l.c, l.p
	number := (page*l.size + first) / size
	body, err := p.body(number, size)
	if err != nil {
		return nil, false, fmt.Errorf("certview: %s page %d: encoding request: %w", p.endpoint, page, err)
	}
	limit := c.pageByteLimit(size)
	var recs []T
	var raw int
	var sum [sha256.Size]byte
	// The records skipped by the attempt that read the page; an attempt that fails
	// (and may be retried) reports none.
	var skipped []SkipEvent
	var coerced CoerceEvent
	err = c.call(l.ctx, p.endpoint, page, p.path, body, func(r io.Reader) error {
		recs, raw, skipped = recs[:0], 0, skipped[:0]
		coerced = CoerceEvent{Endpoint: p.endpoint, Page: page}
		if r == nil {
			return nil
		}
		br := &boundedReader{r: r, left: limit}
		h := sha256.New()
		var derr error
		recs, raw, derr = decodeHashed[T, P](br, size, func(idx int, err error) {
			skipped = append(skipped, SkipEvent{Endpoint: p.endpoint, Page: page, Index: first + idx, Err: err})
		}, func(idx, values int, firstField string) {
			if coerced.Records == 0 {
				coerced.FirstIndex, coerced.First = first+idx, firstField
			}
			coerced.Records++
			coerced.Values += values
		}, h)
		h.Sum(sum[:0])
		switch {
		case br.exceeded:
			e := &PageLimitError{Endpoint: p.endpoint, Page: page, Unit: "bytes", Limit: limit}
			if size != l.size {
				e.Size, e.First = size, first
			}
			return e
		case errors.Is(derr, errTooManyRecords):
			return &PageLimitError{Endpoint: p.endpoint, Page: page, Unit: "records", Limit: int64(size)}
		}
		return derr
	})
	if err != nil {
		var apiErr *APIError
		var pageErr *PageError
		var limitErr *PageLimitError
		if !errors.As(err, &apiErr) && !errors.As(err, &pageErr) && !errors.As(err, &limitErr) && !errors.Is(err, l.ctx.Err()) {
			var authErr *AuthError
			var thrErr *ThrottledError
			if !errors.As(err, &authErr) && !errors.As(err, &thrErr) {
				err = &PageError{Endpoint: p.endpoint, Page: page, Attempts: 1, Err: err}
			}
		}
		return nil, false, err
	}
	l.st.Pages++
	c.reportSkipped(&l.st, skipped)
	c.reportCoerced(&l.st, coerced)
	dups := 0
	fresh = recs[:0]
	for i := range recs {
		k := P(&recs[i]).key()
		if _, dup := l.seen[k]; dup {
			dups++
			continue
		}
		l.seen[k] = struct{}{}
		fresh = append(fresh, recs[i])
	}
	l.st.Duplicates += dups
	if err := l.note(page, size, raw, len(fresh), dups, sum); err != nil {
		return nil, false, err
	}
	return fresh, raw < size, nil
}

// note applies the repeated-page rules to a page just read. No sort order is documented
// for v2, so records shift between pages while a listing runs, and a page that repeats
// a few records of the one before is normal (they are dropped as duplicates). For a
// full page to hold no new record at all, a page's worth of records must have moved
// from ahead of the cursor to behind it between two calls; for two full pages in a row,
// two pages' worth. An API that ignores pageNumber does that on every call. So:
//
//   - a full page whose body is, byte for byte, the previous page's fails the listing
//     at once (one wasted call): shifting by exactly a page, order kept, is not a thing
//     a live listing does;
//   - a full page without a new record (every record a duplicate or undecodable, at
//     least one a duplicate) is let through once, as the rare bulk reordering it may
//     be; a second one in a row fails the listing (two wasted calls).
//
// Pages under repeatMinRecords are not judged.
func (l *lister[T, P]) note(page, size, raw, fresh, dups int, sum [sha256.Size]byte) error {
	full := raw == size && size >= repeatMinRecords
	identical := full && l.prevFull && sum == l.prevSum
	l.prevSum, l.prevFull = sum, full
	if identical {
		return &RepeatedPageError{Endpoint: l.p.endpoint, Page: page, Records: raw, Identical: true}
	}
	if !full || fresh > 0 || dups == 0 {
		l.stale = 0
		return nil
	}
	if l.stale++; l.stale >= 2 {
		return &RepeatedPageError{Endpoint: l.p.endpoint, Page: page, Records: raw}
	}
	level.Warn(l.c.cfg.Logger).Log("msg", "a full page held only records already listed; one more fails the listing",
		"endpoint", l.p.endpoint, "page", page, "records", raw)
	return nil
}

// split reads page (at the configured size), whose answer was over its byte limit
// (tooLarge), again in smaller pages, as listPages describes, and returns their new
// records together, so that the caller sees one page. It logs one line per page.
func (l *lister[T, P]) split(page int, tooLarge error) ([]T, bool, error) {
	c, p := l.c, l.p
	if l.splits >= maxSplitPages {
		level.Warn(c.cfg.Logger).Log("msg", "a page is over its byte limit and this listing has read as many pages again in smaller pages as it may",
			"endpoint", p.endpoint, "page", page, "page_size", l.size, "split_pages", l.splits)
		return nil, false, tooLarge
	}
	l.splits++
	l.st.Pages++ // the answer over the limit was a call
	pagesBefore := l.st.Pages
	var sizes []string
	var all []T
	var walk func(first, size int, tooLarge error) (bool, error)
	walk = func(first, size int, tooLarge error) (bool, error) {
		f := splitFactor(size)
		if f == 0 {
			return false, tooLarge
		}
		sub := size / f
		if s := strconv.Itoa(sub); !slices.Contains(sizes, s) {
			sizes = append(sizes, s)
		}
		for k := 0; k < f; k++ {
			fresh, short, err := l.read(page, first+k*sub, sub)
			if isByteLimit(err) {
				l.st.Pages++
				short, err = walk(first+k*sub, sub, err)
			} else {
				all = append(all, fresh...)
			}
			if err != nil || short {
				return short, err
			}
		}
		return false, nil
	}
	short, err := walk(0, l.size, tooLarge)
	kv := []any{"endpoint", p.endpoint, "page", page, "page_size", l.size, "smaller_sizes", strings.Join(sizes, ","),
		"calls", 1 + l.st.Pages - pagesBefore}
	if err != nil {
		level.Warn(c.cfg.Logger).Log(append([]any{"msg", "a page over its byte limit was read again in smaller pages and is still too large", "err", err}, kv...)...)
		return nil, false, err
	}
	level.Warn(c.cfg.Logger).Log(append([]any{"msg", "a page over its byte limit was read again in smaller pages"}, kv...)...)
	return all, short, nil
}

// splitFactor is the number of pages a page of size records is split into: its smallest
// prime factor, so that the smaller pages line up with it, or 0 when that would make
// pages under minSplitSize.
func splitFactor(size int) int {
	for f := 2; f*f <= size; f++ {
		if size%f == 0 {
			if size/f < minSplitSize {
				return 0
			}
			return f
		}
	}
	return 0 // a prime: only pages of one record line up with it
}

// reportSkipped counts a page's skipped records, hands each to the Skip hook and logs
// one line for the page: how many, and the first one's index and error.
func (c *Client) reportSkipped(st *ListStats, skipped []SkipEvent) {
	if len(skipped) == 0 {
		return
	}
	st.Skipped += len(skipped)
	for _, e := range skipped {
		c.cfg.Hooks.skip(e)
	}
	first := skipped[0]
	level.Warn(c.cfg.Logger).Log("msg", "skipped records that do not decode", "endpoint", first.Endpoint, "page", first.Page,
		"skipped", len(skipped), "first_index", first.Index, "first_err", first.Err)
}

// reportCoerced counts a page's records that were kept by coercing values, hands the
// page's figures to the Coerce hook and logs them, at debug, on one line.
func (c *Client) reportCoerced(st *ListStats, e CoerceEvent) {
	if e.Records == 0 {
		return
	}
	st.Coerced += e.Records
	c.cfg.Hooks.coerce(e)
	level.Debug(c.cfg.Logger).Log("msg", "records decoded after coercing values of an unexpected type", "endpoint", e.Endpoint,
		"page", e.Page, "records", e.Records, "values", e.Values, "first_index", e.FirstIndex, "first_field", e.First)
}

// errTooManyRecords says a page held more elements than asked for.
var errTooManyRecords = errors.New("the page holds more records than asked for")

// errBodyLimit says a body ran past its byte limit.
var errBodyLimit = errors.New("the body is larger than its limit")

// boundedReader reads at most left bytes of r; reading past them fails with
// errBodyLimit and sets exceeded. It reads at most one byte beyond the bound, to tell a
// body of exactly the limit from a larger one.
type boundedReader struct {
	r        io.Reader
	left     int64
	exceeded bool
}

func (b *boundedReader) Read(p []byte) (int, error) {
	if b.exceeded {
		return 0, errBodyLimit
	}
	if int64(len(p)) > b.left+1 {
		p = p[:b.left+1]
	}
	n, err := b.r.Read(p)
	if int64(n) > b.left {
		b.exceeded = true
		return int(b.left), errBodyLimit
	}
	b.left -= int64(n)
	return n, err
}

// decodePage streams one page: a JSON array of records. A record of the wrong shape is
// reported to skip and left out; a broken stream fails the page. raw counts every
// element, skipped or not, so a bad record does not make a page look short. A page of
// more than maxRecords elements (when maxRecords > 0) fails with errTooManyRecords as
// soon as the first extra element begins.
func decodePage[T any, P record[T]](r io.Reader, maxRecords int, skip func(idx int, err error)) (recs []T, raw int, err error) {
	return decodeRecords[T, P](r, maxRecords, skip, nil)
}

// decodeRecords is decodePage that also reports each record kept only after coercion
// (see coerceRecord) to coerced, with the number of values coerced or dropped and the
// path of the first.
func decodeRecords[T any, P record[T]](r io.Reader, maxRecords int, skip func(idx int, err error),
	coerced func(idx, values int, first string)) (recs []T, raw int, err error) {
	return decodeHashed[T, P](r, maxRecords, skip, coerced, nil)
}

// decodeHashed is decodeRecords that also writes each element's bytes (with the comma
// and spaces before it) to sum, when not nil: two answers with the same elements hash
// the same, however the transport split them and whatever follows the array.
func decodeHashed[T any, P record[T]](r io.Reader, maxRecords int, skip func(idx int, err error),
	coerced func(idx, values int, first string), sum hash.Hash) (recs []T, raw int, err error) {
	tee := &recordTee{r: r}
	dec := json.NewDecoder(tee)
	tok, err := dec.Token()
	if err == io.EOF {
		return nil, 0, nil // an empty body is an empty page
	}
	if err != nil {
		return nil, 0, &errStream{fmt.Errorf("body is not JSON: %w", err)}
	}
	if d, ok := tok.(json.Delim); !ok || d != '[' {
		return nil, 0, fmt.Errorf("body is not a JSON array (starts with %v)", tok)
	}
	for dec.More() {
		if maxRecords > 0 && raw >= maxRecords {
			return nil, raw, errTooManyRecords
		}
		at := dec.InputOffset()
		tee.from(at)
		recs = append(recs, *new(T))
		rec := &recs[len(recs)-1]
		err := dec.Decode(rec)
		if err != nil && dec.InputOffset() == at {
			// The decoder did not move: the stream itself is broken here.
			return nil, raw, &errStream{fmt.Errorf("record %d: %w", raw, err)}
		}
		if sum != nil {
			sum.Write(tee.span(at, dec.InputOffset()))
		}
		if err != nil && isRecordError(err) {
			// The record is whole JSON of an unexpected shape: read it again, liberally.
			body := bytes.TrimLeft(tee.span(at, dec.InputOffset()), ", \t\r\n")
			n, first, cerr := coerceRecord(body, rec)
			err = cerr
			if cerr == nil && n > 0 && coerced != nil {
				coerced(raw, n, first)
			}
		}
		if err == nil {
			err = P(rec).normalize()
		}
		if err != nil {
			if !isRecordError(err) {
				return nil, raw, &errStream{fmt.Errorf("record %d: %w", raw, err)}
			}
			recs = recs[:len(recs)-1]
			skip(raw, err)
		}
		raw++
	}
	if _, err := dec.Token(); err != nil {
		return nil, raw, &errStream{fmt.Errorf("after record %d: %w", raw, err)}
	}
	return recs, raw, nil
}

// certificatesBody is the request body of the certificates listing.
type certificatesBody struct {
	Filter        *Filter  `json:"filter,omitempty"`
	PageNumber    int      `json:"pageNumber"`
	PageSize      int      `json:"pageSize"`
	Includes      []string `json:"includes,omitempty"`
	ExcludeFields string   `json:"excludeFields,omitempty"`
	AssetType     string   `json:"assetType,omitempty"`
}

// instancesBody is the request body of the instances listing.
type instancesBody struct {
	FilterRequest *Filter `json:"filterRequest,omitempty"`
	PageNumber    int     `json:"pageNumber"`
	PageSize      int     `json:"pageSize"`
	AssetType     string  `json:"assetType,omitempty"`
}

// assetsBody is the request body of the v1 assets listing.
type assetsBody struct {
	Filter     string `json:"filter,omitempty"`
	PageNumber int    `json:"pageNumber"`
	PageSize   int    `json:"pageSize"`
}

// ListCertificates pages through the certificates endpoint, handing each page's new
// records to fn. fn must not keep the slice. Under VersionAuto the version is
// negotiated (see NegotiationOrder) and remembered.
func (c *Client) ListCertificates(ctx context.Context, fn func([]Certificate) error) (ListStats, error) {
	return c.listCertificates(ctx, c.cfg.CertificateFilter, fn)
}

// ListCertificatesWhere is ListCertificates narrowed by terms, ANDed with the
// configured certificate filter (see Narrow).
func (c *Client) ListCertificatesWhere(ctx context.Context, terms []FilterTerm, fn func([]Certificate) error) (ListStats, error) {
	f, err := Narrow(c.cfg.CertificateFilter, terms...)
	if err != nil {
		return ListStats{}, fmt.Errorf("certview: certificate filter: %w", err)
	}
	return c.listCertificates(ctx, f, fn)
}

func (c *Client) listCertificates(ctx context.Context, filter *Filter, fn func([]Certificate) error) (ListStats, error) {
	return c.negotiate(func(version string) (ListStats, error) {
		return listPages[Certificate](ctx, c, pager{
			endpoint: EndpointCertificates,
			path:     "/certview/" + version + "/certificates",
			body: func(page, size int) ([]byte, error) {
				return json.Marshal(certificatesBody{
					Filter:        filter,
					PageNumber:    page,
					PageSize:      size,
					Includes:      c.cfg.Includes,
					ExcludeFields: strings.Join(c.cfg.ExcludeFields, ","),
					AssetType:     c.cfg.AssetType,
				})
			},
		}, fn)
	})
}

// ListInstances pages through /certview/v2/instances, handing each page's new records
// to fn. fn must not keep the slice.
func (c *Client) ListInstances(ctx context.Context, fn func([]Instance) error) (ListStats, error) {
	return c.listInstances(ctx, c.cfg.InstanceFilter, fn)
}

// ListInstancesWhere is ListInstances narrowed by terms, ANDed with the configured
// instance filter (see Narrow).
func (c *Client) ListInstancesWhere(ctx context.Context, terms []FilterTerm, fn func([]Instance) error) (ListStats, error) {
	f, err := Narrow(c.cfg.InstanceFilter, terms...)
	if err != nil {
		return ListStats{}, fmt.Errorf("certview: instance filter: %w", err)
	}
	return c.listInstances(ctx, f, fn)
}

func (c *Client) listInstances(ctx context.Context, filter *Filter, fn func([]Instance) error) (ListStats, error) {
	st, err := listPages[Instance](ctx, c, pager{
		endpoint: EndpointInstances,
		path:     "/certview/" + InstancesVersion + "/instances",
		body: func(page, size int) ([]byte, error) {
			return json.Marshal(instancesBody{
				FilterRequest: filter,
				PageNumber:    page,
				PageSize:      size,
				AssetType:     c.cfg.AssetType,
			})
		},
	}, fn)
	if err == nil {
		c.reportVersion(EndpointInstances, InstancesVersion)
	}
	return st, err
}

// Narrowable says whether Narrow can add terms to the configured filters; when it
// cannot, the error names the filter and why.
func (c *Client) Narrowable() error {
	if _, err := Narrow(c.cfg.CertificateFilter); err != nil {
		return fmt.Errorf("certificate filter: %w", err)
	}
	if _, err := Narrow(c.cfg.InstanceFilter); err != nil {
		return fmt.Errorf("instance filter: %w", err)
	}
	return nil
}

// ListCertificateAssets pages through the v1 assets of one certificate, within the
// endpoint's 10,000-record window (ListStats.Truncated says when the window was hit).
// filter is in the v1 query syntax, or empty.
func (c *Client) ListCertificateAssets(ctx context.Context, certhash, filter string, fn func([]Asset) error) (ListStats, error) {
	if certhash == "" || strings.ContainsAny(certhash, "/?#") {
		return ListStats{}, fmt.Errorf("certview: assets: invalid certhash %q", certhash)
	}
	return listPages[Asset](ctx, c, pager{
		endpoint:   EndpointAssets,
		path:       "/certview/v1/certificates/" + url.PathEscape(certhash) + "/assets",
		maxRecords: AssetsWindow,
		body: func(page, size int) ([]byte, error) {
			return json.Marshal(assetsBody{Filter: filter, PageNumber: page, PageSize: size})
		},
	}, fn)
}

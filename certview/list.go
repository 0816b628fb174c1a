package certview

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"

	"github.com/go-kit/log/level"
)

// ListStats describes one listing.
type ListStats struct {
	Pages      int  // pages fetched (successful calls)
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
	body       func(page int) ([]byte, error)
	maxRecords int // 0: no window
}

// listPages pages through p from page 0 and hands each page's new records to fn. It
// stops at a page holding fewer records than the page size, an empty page or a 204, so
// N records cost floor(N/pageSize)+1 calls.
func listPages[T any, P record[T]](ctx context.Context, c *Client, p pager, fn func([]T) error) (ListStats, error) {
	var st ListStats
	seen := map[uint64]struct{}{}
	size := c.cfg.PageSize
	limit := c.cfg.pageByteLimit()
	for page := 0; ; page++ {
		if page >= c.cfg.MaxPages {
			return st, fmt.Errorf("%w: %s stopped at page %d (max pages %d)", ErrTooManyPages, p.endpoint, page, c.cfg.MaxPages)
		}
		if p.maxRecords > 0 && (page+1)*size > p.maxRecords {
			st.Truncated = true
			level.Warn(c.cfg.Logger).Log("msg", "listing reached the endpoint's record window; later records are not fetched",
				"endpoint", p.endpoint, "window", p.maxRecords)
			return st, nil
		}
		body, err := p.body(page)
		if err != nil {
			return st, fmt.Errorf("certview: %s page %d: encoding request: %w", p.endpoint, page, err)
		}
		var recs []T
		var raw int
		// The records skipped by the attempt that read the page; an attempt that fails
		// (and may be retried) reports none.
		var skipped []SkipEvent
		var coerced CoerceEvent
		err = c.call(ctx, p.endpoint, page, p.path, body, func(r io.Reader) error {
			recs, raw, skipped = recs[:0], 0, skipped[:0]
			coerced = CoerceEvent{Endpoint: p.endpoint, Page: page}
			if r == nil {
				return nil
			}
			br := &boundedReader{r: r, left: limit}
			var derr error
			recs, raw, derr = decodeRecords[T, P](br, size, func(idx int, err error) {
				skipped = append(skipped, SkipEvent{Endpoint: p.endpoint, Page: page, Index: idx, Err: err})
			}, func(idx, values int, first string) {
				if coerced.Records == 0 {
					coerced.FirstIndex, coerced.First = idx, first
				}
				coerced.Records++
				coerced.Values += values
			})
			switch {
			case br.exceeded:
				return &PageLimitError{Endpoint: p.endpoint, Page: page, Unit: "bytes", Limit: limit}
			case errors.Is(derr, errTooManyRecords):
				return &PageLimitError{Endpoint: p.endpoint, Page: page, Unit: "records", Limit: int64(size)}
			}
			return derr
		})
		if err != nil {
			var apiErr *APIError
			var pageErr *PageError
			var limitErr *PageLimitError
			if !errors.As(err, &apiErr) && !errors.As(err, &pageErr) && !errors.As(err, &limitErr) && !errors.Is(err, ctx.Err()) {
				var authErr *AuthError
				var thrErr *ThrottledError
				if !errors.As(err, &authErr) && !errors.As(err, &thrErr) {
					err = &PageError{Endpoint: p.endpoint, Page: page, Attempts: 1, Err: err}
				}
			}
			return st, err
		}
		st.Pages++
		c.reportSkipped(&st, skipped)
		c.reportCoerced(&st, coerced)
		fresh := recs[:0]
		for i := range recs {
			k := P(&recs[i]).key()
			if _, dup := seen[k]; dup {
				st.Duplicates++
				continue
			}
			seen[k] = struct{}{}
			fresh = append(fresh, recs[i])
		}
		if len(fresh) > 0 {
			st.Records += len(fresh)
			if err := fn(fresh); err != nil {
				return st, err
			}
		}
		if raw < size {
			return st, nil
		}
	}
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
			body: func(page int) ([]byte, error) {
				return json.Marshal(certificatesBody{
					Filter:        filter,
					PageNumber:    page,
					PageSize:      c.cfg.PageSize,
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
		body: func(page int) ([]byte, error) {
			return json.Marshal(instancesBody{
				FilterRequest: filter,
				PageNumber:    page,
				PageSize:      c.cfg.PageSize,
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
		body: func(page int) ([]byte, error) {
			return json.Marshal(assetsBody{Filter: filter, PageNumber: page, PageSize: c.cfg.PageSize})
		},
	}, fn)
}

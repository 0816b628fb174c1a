package certview

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/certview-exporter/certview_exporter/certview/certviewtest"
	"github.com/go-kit/log"
)

// lockedBuffer is a log sink for a client whose listing runs on another goroutine.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func withLog(buf *lockedBuffer, tweak func(*Config)) func(*Config) {
	return func(c *Config) {
		c.Logger = log.NewLogfmtLogger(buf)
		if tweak != nil {
			tweak(c)
		}
	}
}

// An API that ignores pageNumber answers page 0 on every call. The listing stops at
// the first repeat, page 1 (one call wasted), with a RepeatedPageError naming the
// endpoint and the page, instead of paging on until MaxPages.
func TestIgnoredPageNumberStopsTheListing(t *testing.T) {
	for _, endpoint := range []string{EndpointCertificates, EndpointInstances} {
		t.Run(endpoint, func(t *testing.T) {
			// MaxPages 50 only keeps a listing without the check short.
			r := newRig(t, inventory(1000, 1000), func(c *Config) { c.MaxPages = 50 })
			r.srv.Sim.Inject(certviewtest.Fault{Endpoint: endpoint, Page: -1, Kind: certviewtest.FaultIgnorePageNumber, Times: certviewtest.Always})
			var st ListStats
			var n int
			var err error
			if endpoint == EndpointCertificates {
				var certs []Certificate
				st, certs, err = r.listCertificates()
				n = len(certs)
			} else {
				var ins []Instance
				st, ins, err = r.listInstances()
				n = len(ins)
			}
			var rep *RepeatedPageError
			if !errors.As(err, &rep) || rep.Endpoint != endpoint || rep.Page != 1 || !rep.Identical || rep.Records != 200 {
				t.Fatalf("err = %v (%#v), want a RepeatedPageError of %s page 1, identical", err, rep, endpoint)
			}
			for _, want := range []string{endpoint, "page 1", "repeats the previous page", "pageNumber"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
			if calls := r.srv.Sim.Requests(endpoint); calls != 2 {
				t.Fatalf("%d calls, want 2: page 0 and its first repeat", calls)
			}
			if st.Pages != 2 || n != 200 || st.Records != 200 {
				t.Fatalf("stats %+v with %d records; want page 0's 200 records in 2 pages", st, n)
			}
		})
	}
}

// A full page of records all listed already, but not byte for byte the previous page:
// one is let through (records shift while a listing runs); a second in a row stops the
// listing there, two calls wasted.
func TestFullPagesOfOnlyListedRecords(t *testing.T) {
	shift := func(r *rig, page, by int) {
		r.srv.Sim.Inject(certviewtest.Fault{Endpoint: "certificates", Page: page, Kind: certviewtest.FaultShift, Shift: by})
	}
	t.Run("one is let through", func(t *testing.T) {
		r := newRig(t, inventory(1000, 0), func(c *Config) { c.MaxPages = 50 })
		shift(r, 1, 150) // page 1: records 50 to 249, 150 of them listed already
		shift(r, 2, 210) // page 2: records 40 to 239, all listed already
		// page 3 on: records 240 on.
		st, certs, err := r.listCertificates()
		if err != nil {
			t.Fatal(err)
		}
		if len(certs) != 1000 || st.Records != 1000 || st.Duplicates != 150+200+10 {
			t.Fatalf("stats %+v with %d records; want 1000 records and 360 duplicates", st, len(certs))
		}
	})
	t.Run("two in a row stop", func(t *testing.T) {
		r := newRig(t, inventory(1000, 0), func(c *Config) { c.MaxPages = 50 })
		shift(r, 1, 150)
		shift(r, 2, 210)
		shift(r, 3, 220) // page 3: records 20 to 219, all listed already
		st, _, err := r.listCertificates()
		var rep *RepeatedPageError
		if !errors.As(err, &rep) || rep.Endpoint != EndpointCertificates || rep.Page != 3 || rep.Identical {
			t.Fatalf("err = %v, want a RepeatedPageError of certificates page 3, not identical", err)
		}
		for _, want := range []string{"certificates page 3", "second full page in a row", "pageNumber"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not say %q", err, want)
			}
		}
		if calls := r.srv.Sim.Requests("certificates"); calls != 4 || st.Pages != 4 {
			t.Fatalf("%d calls (stats %+v), want 4", calls, st)
		}
	})
}

// The byte limits of pages of 200, 100 and 50 records, when Config.MaxPageBytes is not set.
const (
	limit200 = 200*PageBytesPerRecord + PageBytesSlack
	limit100 = 100*PageBytesPerRecord + PageBytesSlack
	limit50  = 50*PageBytesPerRecord + PageBytesSlack
	limit25  = 25*PageBytesPerRecord + PageBytesSlack
)

// pad makes the simulator pad the certificate at listing position index with n bytes on
// every call whose page holds it.
func pad(r *rig, index, n int) {
	r.srv.Sim.Inject(certviewtest.Fault{Endpoint: "certificates", Page: -1, Kind: certviewtest.FaultOversized,
		Index: index, Pad: n, Times: certviewtest.Always})
}

// Page 1 (records 200 to 399) carries a padded record in each quarter: over its limit
// at 200 records, and at 100, but not at 50. The client reads it again as pages 2 and 3
// of 100, each of them again as two pages of 50, and goes on at 200 from page 2. Every
// record arrives once; each call counts in ListStats.Pages; a short page of 50 ends the
// listing; one warning names the page and the sizes.
func TestOversizedPageIsReadAgainInSmallerPages(t *testing.T) {
	// Each padded record takes a page of 200 past its limit with three others, and one
	// of 100 with one other; a page of 50 holds it with room to spare.
	const padding = 3_880_000
	if 4*padding < limit200 || 2*padding < limit100 || padding > limit50-100_000 {
		t.Fatal("the padding does not make the pages this test needs")
	}
	for _, tc := range []struct {
		n     int
		calls int
	}{
		// 0 at 200; 1 at 200 (too large), 2 at 100 (too large), 4 and 5 at 50,
		// 3 at 100 (too large), 6 and 7 at 50 (30 records: the end).
		{380, 8},
		// The same, with 7 full, then 2 and 3 at 200 (50 records: the end).
		{650, 10},
	} {
		t.Run(fmt.Sprint(tc.n), func(t *testing.T) {
			var logs lockedBuffer
			r := newRig(t, inventory(tc.n, 0), withLog(&logs, nil))
			for _, i := range []int{205, 255, 305, 355} {
				pad(r, i, padding)
			}
			st, certs, err := r.listCertificates()
			if err != nil {
				t.Fatal(err)
			}
			if calls := r.srv.Sim.Requests("certificates"); calls != tc.calls || st.Pages != tc.calls {
				t.Fatalf("%d calls (stats %+v), want %d", calls, st, tc.calls)
			}
			seen := map[string]bool{}
			for _, c := range certs {
				if seen[c.CertHash] {
					t.Fatalf("certhash %s twice", c.CertHash)
				}
				seen[c.CertHash] = true
			}
			if len(certs) != tc.n || st.Records != tc.n || st.Duplicates != 0 {
				t.Fatalf("stats %+v with %d records, want %d records once each", st, len(certs), tc.n)
			}
			out := logs.String()
			if got := strings.Count(out, "smaller pages"); got != 1 {
				t.Fatalf("%d log lines about smaller pages, want 1:\n%s", got, out)
			}
			for _, want := range []string{"level=warn", "endpoint=certificates", "page=1", "page_size=200", "smaller_sizes=100,50", "calls=7"} {
				if !strings.Contains(out, want) {
					t.Errorf("the log does not say %s:\n%s", want, out)
				}
			}
		})
	}
}

// One record over the limit of a page of 25 (the smallest split): the client reads
// page 1 again at 100, 50 and 25 records, stops at the page of 25 that holds it, and
// fails with a PageLimitError naming page 1, the size and the records.
func TestRecordOverTheSmallestPageLimitFails(t *testing.T) {
	r := newRig(t, inventory(450, 0), nil)
	pad(r, 230, limit200) // record 30 of page 1: alone past the limit of any page
	st, certs, err := r.listCertificates()
	var pl *PageLimitError
	if !errors.As(err, &pl) || pl.Endpoint != EndpointCertificates || pl.Page != 1 || pl.Unit != "bytes" ||
		pl.Size != 25 || pl.First != 25 || pl.Limit != limit25 {
		t.Fatalf("err = %v (%+v), want a PageLimitError of certificates page 1, records 25 to 49 in a page of 25", err, pl)
	}
	for _, want := range []string{"certificates page 1", "pages of 25 records", "records 25 to 49", fmt.Sprint(limit25)} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	// 0; 1 at 200, 2 at 100, 4 at 50, 8 at 25 (fine), 9 at 25: too large.
	if calls := r.srv.Sim.Requests("certificates"); calls != 6 {
		t.Fatalf("%d calls, want 6", calls)
	}
	if len(certs) != 200 || st.Records != 200 {
		t.Fatalf("stats %+v with %d records; want page 0's 200 (a page that fails hands over none)", st, len(certs))
	}
}

// At most maxSplitPages pages of a listing are read again in smaller pages: the next
// page over its limit fails the listing. Config.MaxPageBytes is one limit for any page
// size.
func TestSplitPagesAreBounded(t *testing.T) {
	const limit = 1_500_000
	r := newRig(t, inventory(1300, 0), func(c *Config) { c.MaxPageBytes = limit })
	for page := 0; page < 6; page++ {
		// Two records of 1 MB a page, one in each half: the halves fit the limit.
		pad(r, page*200+5, 1_000_000)
		pad(r, page*200+105, 1_000_000)
	}
	st, certs, err := r.listCertificates()
	var pl *PageLimitError
	if !errors.As(err, &pl) || pl.Page != maxSplitPages || pl.Size != 0 || pl.Limit != limit {
		t.Fatalf("err = %v, want a PageLimitError of page %d at the configured size", err, maxSplitPages)
	}
	// Three calls for each page read again in halves, then the one over the bound.
	if calls := r.srv.Sim.Requests("certificates"); calls != 3*maxSplitPages+1 || st.Pages != 3*maxSplitPages {
		t.Fatalf("%d calls (stats %+v), want %d", calls, st, 3*maxSplitPages+1)
	}
	if len(certs) != 200*maxSplitPages || st.Records != len(certs) {
		t.Fatalf("stats %+v with %d records", st, len(certs))
	}
}

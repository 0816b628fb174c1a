package certview

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/certview-exporter/certview_exporter/certview/certviewtest"
)

func inventory(certs, instances int) certviewtest.Options {
	return certviewtest.Options{Inventory: certviewtest.Inventory{Seed: 7, Certificates: certs, Instances: instances}}
}

// N records cost exactly floor(N/200)+1 calls, and every record arrives once.
func TestListingCallCounts(t *testing.T) {
	for _, n := range []int{0, 1, 199, 200, 201, 450} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			r := newRig(t, inventory(n, n), nil)
			st, certs, err := r.listCertificates()
			if err != nil {
				t.Fatal(err)
			}
			want := n/200 + 1
			if got := r.srv.Sim.Requests("certificates"); got != want {
				t.Errorf("certificates: %d calls, want %d", got, want)
			}
			if len(certs) != n || st.Records != n || st.Pages != want {
				t.Errorf("certificates: %d records (stats %+v), want %d", len(certs), st, n)
			}
			seen := map[string]bool{}
			for _, c := range certs {
				if seen[c.CertHash] {
					t.Fatalf("certhash %s twice", c.CertHash)
				}
				seen[c.CertHash] = true
			}
			_, ins, err := r.listInstances()
			if err != nil {
				t.Fatal(err)
			}
			if got := r.srv.Sim.Requests("instances"); got != want {
				t.Errorf("instances: %d calls, want %d", got, want)
			}
			if len(ins) != n {
				t.Errorf("instances: %d records, want %d (assetType ALL must show external assets)", len(ins), n)
			}
			if got := r.srv.Sim.Requests("auth"); got != 1 {
				t.Errorf("auth: %d calls, want 1", got)
			}
		})
	}
}

func TestListingStopsAt204(t *testing.T) {
	r := newRig(t, inventory(400, 0), nil)
	r.srv.Sim.Inject(certviewtest.Fault{Endpoint: "certificates", Page: 1, Kind: certviewtest.FaultStatus, Status: http.StatusNoContent})
	st, certs, err := r.listCertificates()
	if err != nil {
		t.Fatal(err)
	}
	if len(certs) != 200 || st.Pages != 2 || r.srv.Sim.Requests("certificates") != 2 {
		t.Fatalf("got %d records in %d pages (%d calls), want 200 in 2", len(certs), st.Pages, r.srv.Sim.Requests("certificates"))
	}
}

func TestListingSendsConfiguredBody(t *testing.T) {
	r := newRig(t, inventory(60, 60), func(c *Config) {
		c.CertificatesVersion = "v2.1"
		c.CertificateFilter = &Filter{Filters: []FilterTerm{{Field: "certificate.publicKeyAlgorithm", Operator: "EQUALS", Value: "EC"}}, Operation: "AND"}
		c.InstanceFilter = &Filter{Filters: []FilterTerm{{Field: "instance.grade", Operator: "IN", Value: "F,T,M"}}}
		c.ExcludeFields = []string{"certificate.dn"}
	})
	_, certs, err := r.listCertificates()
	if err != nil {
		t.Fatal(err)
	}
	// The spread puts EC keys at indexes 6, 7, 8 and 11 of every 20.
	if len(certs) != 12 {
		t.Fatalf("EC filter: %d certificates, want 12", len(certs))
	}
	for _, c := range certs {
		if c.PublicKeyAlgorithm != "EC" || c.DN != "" {
			t.Fatalf("certificate %s: key %q dn %q; want EC and dn excluded", c.CertHash, c.PublicKeyAlgorithm, c.DN)
		}
	}
	_, ins, err := r.listInstances()
	if err != nil {
		t.Fatal(err)
	}
	if len(ins) != 9 {
		t.Fatalf("grade filter: %d instances, want 9", len(ins))
	}
	for _, in := range ins {
		if g := in.EffectiveGrade(); g != "F" && g != "T" && g != "M" {
			t.Fatalf("instance %d has grade %q", in.ID, g)
		}
	}
}

func TestUnsupportedFilterIsA400(t *testing.T) {
	r := newRig(t, inventory(5, 0), func(c *Config) {
		c.CertificateFilter = &Filter{Filters: []FilterTerm{{Field: "certificate.nope", Operator: "EQUALS", Value: "x"}}}
	})
	_, _, err := r.listCertificates()
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.Status != 400 || !strings.Contains(apiErr.Body, "certificate.nope") {
		t.Fatalf("err = %v, want a 400 APIError naming the field", err)
	}
}

func TestDuplicatesAcrossShiftingPagesAreDropped(t *testing.T) {
	r := newRig(t, inventory(450, 0), nil)
	// From page 1 on the listing moves 5 records down: page 1 repeats 5 of page 0.
	r.srv.Sim.Inject(certviewtest.Fault{Endpoint: "certificates", Page: 1, Kind: certviewtest.FaultShift, Shift: 5})
	st, certs, err := r.listCertificates()
	if err != nil {
		t.Fatal(err)
	}
	if st.Duplicates != 5 || len(certs) != 450 || st.Records != 450 {
		t.Fatalf("stats %+v, %d records; want 5 duplicates and 450 records", st, len(certs))
	}
}

func TestRunawayPagingStops(t *testing.T) {
	r := newRig(t, inventory(1000, 0), func(c *Config) { c.MaxPages = 2 })
	st, _, err := r.listCertificates()
	if !errors.Is(err, ErrTooManyPages) {
		t.Fatalf("err = %v, want ErrTooManyPages", err)
	}
	if st.Pages != 2 || r.srv.Sim.Requests("certificates") != 2 {
		t.Fatalf("fetched %d pages, want 2", st.Pages)
	}
}

func TestBadRecordIsSkippedAndCounted(t *testing.T) {
	for _, n := range []int{5, 200} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			r := newRig(t, inventory(n, 0), nil)
			r.srv.Sim.Inject(certviewtest.Fault{Endpoint: "certificates", Page: 0, Kind: certviewtest.FaultBadRecord})
			st, certs, err := r.listCertificates()
			if err != nil {
				t.Fatal(err)
			}
			if st.Skipped != 1 || len(certs) != n-1 {
				t.Fatalf("stats %+v with %d records; want 1 skipped and %d records", st, len(certs), n-1)
			}
			// The bad record still counts toward the page size: a full page goes on.
			if want := n/200 + 1; r.srv.Sim.Requests("certificates") != want {
				t.Fatalf("%d calls, want %d", r.srv.Sim.Requests("certificates"), want)
			}
			if len(r.skips) != 1 || r.skips[0].Page != 0 || r.skips[0].Index != 0 || r.skips[0].Err == nil {
				t.Fatalf("skip events %+v", r.skips)
			}
		})
	}
}

func TestStreamFaultsAreRetried(t *testing.T) {
	for _, kind := range []certviewtest.FaultKind{certviewtest.FaultMalformed, certviewtest.FaultTruncated, certviewtest.FaultReset, certviewtest.FaultHTML} {
		t.Run(string(kind), func(t *testing.T) {
			r := newRig(t, inventory(250, 0), nil)
			r.srv.Sim.Inject(certviewtest.Fault{Endpoint: "certificates", Page: 1, Kind: kind})
			_, certs, err := r.listCertificates()
			if err != nil {
				t.Fatal(err)
			}
			if len(certs) != 250 || r.srv.Sim.Requests("certificates") != 3 {
				t.Fatalf("%d records in %d calls; want 250 in 3", len(certs), r.srv.Sim.Requests("certificates"))
			}
			if w := r.waitEvents(); len(w) != 1 || w[0].Reason != "retry" || w[0].Page != 1 {
				t.Fatalf("waits %+v, want one retry of page 1", w)
			}
		})
	}
}

func TestServerErrorsAreRetriedWithinBound(t *testing.T) {
	r := newRig(t, inventory(10, 0), nil)
	r.srv.Sim.Inject(certviewtest.Fault{Endpoint: "certificates", Page: 0, Kind: certviewtest.FaultStatus, Status: 500, Body: "boom", Times: 100})
	_, _, err := r.listCertificates()
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.Status != 500 || apiErr.Endpoint != "certificates" || apiErr.Body != "boom" {
		t.Fatalf("err = %v, want the 500 as an APIError", err)
	}
	if got := r.srv.Sim.Requests("certificates"); got != DefaultMaxRetries+1 {
		t.Fatalf("%d calls, want %d", got, DefaultMaxRetries+1)
	}
	// Backoff doubles: each wait lies in [base*2^k/2, base*2^k].
	for k, w := range r.waitEvents() {
		lo := DefaultBackoffBase << k / 2
		if w.Duration < lo || w.Duration > 2*lo {
			t.Errorf("retry %d waited %s, want %s..%s", k, w.Duration, lo, 2*lo)
		}
	}
}

func TestClientErrorsAreNotRetried(t *testing.T) {
	for _, status := range []int{400, 403, 404} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			// An explicit version: under auto a 404 would step down to an older one.
			r := newRig(t, inventory(10, 0), func(c *Config) { c.CertificatesVersion = "v2" })
			long := strings.Repeat("x", 500)
			r.srv.Sim.Inject(certviewtest.Fault{Endpoint: "certificates", Page: 0, Kind: certviewtest.FaultStatus, Status: status, Body: long})
			_, _, err := r.listCertificates()
			var apiErr *APIError
			if !errors.As(err, &apiErr) || apiErr.Status != status || apiErr.Page != 0 || apiErr.Endpoint != "certificates" {
				t.Fatalf("err = %v, want APIError %d", err, status)
			}
			if len(apiErr.Body) != 200 {
				t.Fatalf("body snippet is %d bytes, want the first 200", len(apiErr.Body))
			}
			if got := r.srv.Sim.Requests("certificates"); got != 1 {
				t.Fatalf("%d calls, want 1 (no retry)", got)
			}
			msg := err.Error()
			if !strings.Contains(msg, "certificates") || !strings.Contains(msg, fmt.Sprint(status)) || !strings.Contains(msg, "page 0") {
				t.Fatalf("error %q must name the endpoint, page and status", msg)
			}
		})
	}
}

func TestAssetsWindow(t *testing.T) {
	opts := inventory(3, 3)
	opts.Inventory.BigCertAssets = 10500
	r := newRig(t, opts, nil)
	hash := r.srv.Sim.Inventory().Certificate(0).CertHash
	var n int
	var st ListStats
	err := r.run(func(ctx context.Context) error {
		var err error
		st, err = r.c.ListCertificateAssets(ctx, hash, "", func(p []Asset) error { n += len(p); return nil })
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if !st.Truncated || n != AssetsWindow || r.srv.Sim.Requests("assets") != AssetsWindow/200 {
		t.Fatalf("stats %+v, %d assets in %d calls; want a truncated 10000 in 50", st, n, r.srv.Sim.Requests("assets"))
	}
	if _, err := r.c.ListCertificateAssets(context.Background(), "a/b", "", nil); err == nil {
		t.Fatal("a certhash with a slash was accepted")
	}
}

func TestContextCancelsAWait(t *testing.T) {
	r := newRig(t, inventory(10, 0), nil)
	r.srv.Sim.Inject(certviewtest.Fault{Endpoint: "certificates", Page: 0, Kind: certviewtest.FaultStatus, Status: 429,
		Header: map[string]string{"X-RateLimit-ToWait-Sec": "3600"}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := r.c.ListCertificates(ctx, func([]Certificate) error { return nil })
		done <- err
	}()
	<-r.waitCh
	if err := r.clock.BlockUntilContext(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

func TestCallerErrorStopsListing(t *testing.T) {
	r := newRig(t, inventory(450, 0), nil)
	stop := errors.New("enough")
	_, err := r.c.ListCertificates(context.Background(), func([]Certificate) error { return stop })
	if !errors.Is(err, stop) || r.srv.Sim.Requests("certificates") != 1 {
		t.Fatalf("err = %v after %d calls, want the caller's error after 1", err, r.srv.Sim.Requests("certificates"))
	}
}

// A response that stalls (before the headers, or halfway through the body) runs into the
// client's timeout and the page is fetched again.
func TestSlowResponsesTimeOutAndAreRetried(t *testing.T) {
	for _, kind := range []certviewtest.FaultKind{certviewtest.FaultSlow, certviewtest.FaultSlowBody} {
		t.Run(string(kind), func(t *testing.T) {
			// The timeout must be far above a healthy page's time under make test's load
			// (-race, packages in parallel): at 300 ms a healthy page timed out too.
			r := newRig(t, inventory(250, 0), func(c *Config) { c.Timeout = 2 * time.Second })
			never := make(chan struct{})
			r.srv.Sim.Inject(certviewtest.Fault{Endpoint: "certificates", Page: 1, Kind: kind, Release: never})
			_, certs, err := r.listCertificates()
			if err != nil {
				t.Fatal(err)
			}
			if len(certs) != 250 || r.srv.Sim.Requests("certificates") != 3 {
				t.Fatalf("%d records in %d calls; want 250 in 3", len(certs), r.srv.Sim.Requests("certificates"))
			}
			if w := r.waitEvents(); len(w) != 1 || w[0].Reason != "retry" {
				t.Fatalf("waits %+v, want one retry", w)
			}
		})
	}
}

// NoRetries makes exactly one call of a page that answers 500 (0 would take the default).
func TestNoRetriesMakesOneCall(t *testing.T) {
	r := newRig(t, inventory(10, 0), func(c *Config) { c.MaxRetries = NoRetries })
	r.srv.Sim.Inject(certviewtest.Fault{Endpoint: "certificates", Page: 0, Kind: certviewtest.FaultStatus, Status: 500, Body: "boom", Times: 100})
	_, _, err := r.listCertificates()
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.Status != 500 {
		t.Fatalf("err = %v, want the 500", err)
	}
	if got := r.srv.Sim.Requests("certificates"); got != 1 {
		t.Fatalf("%d calls with NoRetries, want 1", got)
	}
	if w := r.waitEvents(); len(w) != 0 {
		t.Fatalf("waits %+v, want none", w)
	}
}

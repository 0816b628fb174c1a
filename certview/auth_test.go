package certview

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/certview-exporter/certview_exporter/certview/certviewtest"
)

func TestTokenIsCachedAndRenewedOn401(t *testing.T) {
	r := newRig(t, inventory(10, 10), nil)
	if _, _, err := r.listCertificates(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.listInstances(); err != nil {
		t.Fatal(err)
	}
	if got := r.srv.Sim.TokensIssued(); got != 1 {
		t.Fatalf("%d tokens issued for two listings, want 1 (cached)", got)
	}
	r.srv.Sim.ExpireTokens()
	_, certs, err := r.listCertificates()
	if err != nil || len(certs) != 10 {
		t.Fatalf("after expiry: %d records, err %v", len(certs), err)
	}
	if got := r.srv.Sim.TokensIssued(); got != 2 {
		t.Fatalf("%d tokens issued, want 2 (one renewal after the 401)", got)
	}
	if s := r.statuses(); !slices.Contains(s, http.StatusUnauthorized) {
		t.Fatalf("statuses %v: the expired token should have drawn a 401", s)
	}
}

func TestTokenRenewedBeforeExpiry(t *testing.T) {
	r := newRig(t, inventory(10, 0), func(c *Config) { c.TokenRenewMargin = 10 * time.Minute })
	if _, _, err := r.listCertificates(); err != nil {
		t.Fatal(err)
	}
	// Just inside the margin: the client renews before the server would refuse.
	r.clock.Advance(4*time.Hour - 9*time.Minute)
	if _, _, err := r.listCertificates(); err != nil {
		t.Fatal(err)
	}
	if got := r.srv.Sim.TokensIssued(); got != 2 {
		t.Fatalf("%d tokens issued, want 2", got)
	}
	if s := r.statuses(); slices.Contains(s, http.StatusUnauthorized) {
		t.Fatalf("statuses %v: renewal ahead of expiry must avoid the 401", s)
	}
	// Outside the margin the cached token is used.
	r.clock.Advance(time.Hour)
	if _, _, err := r.listCertificates(); err != nil {
		t.Fatal(err)
	}
	if got := r.srv.Sim.TokensIssued(); got != 2 {
		t.Fatalf("%d tokens issued, want still 2", got)
	}
}

func TestConcurrentCallersShareOneRenewal(t *testing.T) {
	gate := make(chan struct{})
	entered := make(chan struct{}, 10)
	sim := certviewtest.New(certviewtest.Options{Inventory: certviewtest.Inventory{Seed: 1, Certificates: 20}})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path == "/auth" {
			entered <- struct{}{}
			<-gate
		}
		sim.ServeHTTP(w, req)
	}))
	defer srv.Close()
	c, err := New(Config{BaseURL: srv.URL, Credentials: Credentials{Username: "demo", Password: "demo-password"},
		RateLimit: RateLimit{Concurrency: 8}})
	if err != nil {
		t.Fatal(err)
	}
	const callers = 8
	listConcurrently(t, c, callers, func() {
		<-entered // one caller is inside /auth; the others queue behind it
		close(gate)
	})
	if got := sim.TokensIssued(); got != 1 {
		t.Fatalf("%d /auth calls for %d concurrent callers, want 1", got, callers)
	}

	// Concurrent 401s on one token lead to a single renewal too.
	sim.ExpireTokens()
	listConcurrently(t, c, callers, func() { <-entered })
	if got := sim.TokensIssued(); got != 2 {
		t.Fatalf("%d tokens after concurrent 401s, want 2", got)
	}
}

func TestRenewedTokenRefusedTooFails(t *testing.T) {
	r := newRig(t, inventory(10, 0), nil)
	r.srv.Sim.Inject(certviewtest.Fault{Endpoint: "certificates", Page: 0, Kind: certviewtest.FaultExpireTokens, Times: 5})
	_, _, err := r.listCertificates()
	var authErr *AuthError
	if !errors.As(err, &authErr) || authErr.Endpoint != "certificates" || authErr.Status != 401 {
		t.Fatalf("err = %v, want an AuthError from certificates", err)
	}
	if got := r.srv.Sim.Requests("certificates"); got != 2 {
		t.Fatalf("%d calls, want 2 (renew once, retry once)", got)
	}
}

func TestBadCredentialsAreATypedErrorWithoutSecrets(t *testing.T) {
	const password = "hunter2-very-secret"
	r := newRig(t, inventory(1, 0), func(c *Config) { c.Credentials.Password = password })
	_, _, err := r.listCertificates()
	var authErr *AuthError
	if !errors.As(err, &authErr) || authErr.Endpoint != "auth" || authErr.Status != 401 {
		t.Fatalf("err = %v, want an AuthError from /auth", err)
	}
	if strings.Contains(err.Error(), password) || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("error %q must say the credentials were refused without echoing them", err)
	}
	if r.srv.Sim.Requests("certificates") != 0 || r.srv.Sim.Requests("auth") != 1 {
		t.Fatal("a refused /auth must not be retried nor followed by data calls")
	}
}

func TestOAuthClientCredentials(t *testing.T) {
	r := newRig(t, inventory(3, 0), func(c *Config) {
		c.Credentials = Credentials{ClientID: "demo-client", ClientSecret: "demo-client-secret"}
	})
	_, certs, err := r.listCertificates()
	if err != nil || len(certs) != 3 {
		t.Fatalf("%d records, err %v", len(certs), err)
	}
	r2 := newRig(t, inventory(3, 0), func(c *Config) {
		c.Credentials = Credentials{ClientID: "demo-client", ClientSecret: "wrong"}
	})
	if _, _, err := r2.listCertificates(); !errors.As(err, new(*AuthError)) {
		t.Fatalf("wrong client secret: err = %v, want AuthError", err)
	}
}

func TestAuthServerErrorIsRetried(t *testing.T) {
	r := newRig(t, inventory(3, 0), nil)
	r.srv.Sim.Inject(certviewtest.Fault{Endpoint: "auth", Kind: certviewtest.FaultStatus, Status: 503})
	if _, _, err := r.listCertificates(); err != nil {
		t.Fatal(err)
	}
	if got := r.srv.Sim.Requests("auth"); got != 2 {
		t.Fatalf("%d auth calls, want 2", got)
	}
}

func TestTokenExpiryFromJWT(t *testing.T) {
	r := newRig(t, certviewtest.Options{TokenTTL: time.Hour, Inventory: certviewtest.Inventory{Certificates: 2}},
		func(c *Config) { c.TokenRenewMargin = time.Minute })
	if _, err := r.c.Token(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := r.c.expires.Sub(epoch); got != time.Hour {
		t.Fatalf("token expiry %s after issue, want the JWT's 1h", got)
	}
	// An opaque token lives the documented 4 hours.
	if got := r.c.tokenExpiry("opaque").Sub(epoch); got != TokenLifetime {
		t.Fatalf("opaque token expiry %s, want %s", got, TokenLifetime)
	}
}

// listConcurrently lists certificates from n goroutines at once, runs meanwhile while
// they are under way, and fails the test on any error.
func listConcurrently(t *testing.T, c *Client, n int, meanwhile func()) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := c.ListCertificates(context.Background(), func([]Certificate) error { return nil })
			errs <- err
		}()
	}
	meanwhile()
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

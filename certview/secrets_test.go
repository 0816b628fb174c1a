package certview

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/certview-exporter/certview_exporter/certview/certviewtest"
	"github.com/go-kit/log"
)

// No error string, log line or formatted config carries the password, the client
// secret or the token, whatever the server echoes back.
func TestNoSecretInErrorsOrLogs(t *testing.T) {
	const password, secret = "pw-Zebra-9931", "cs-Walrus-4417"
	var logs bytes.Buffer
	opts := inventory(10, 0)
	opts.Password, opts.ClientSecret = password, secret
	var errs []error
	var tokens []string
	for _, cred := range []Credentials{{Username: "demo", Password: password}, {ClientID: "demo-client", ClientSecret: secret}} {
		r := newRig(t, opts, func(c *Config) {
			c.Logger = log.NewLogfmtLogger(&logs)
			c.MaxRetries = 1
			c.Credentials = cred
		})
		tok, err := r.c.Token(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		tokens = append(tokens, tok)
		// The server echoes what this client sent; the padding puts the secret and the
		// token across the 200-byte cut of the error body.
		sent := cred.Password + cred.ClientSecret
		echo := fmt.Sprintf("%s you sent password=%s token=%s", strings.Repeat(".", 150), sent, tok)
		for _, f := range []certviewtest.Fault{
			{Kind: certviewtest.FaultStatus, Status: http.StatusBadRequest, Body: echo},
			{Kind: certviewtest.FaultStatus, Status: http.StatusForbidden, Body: "Bearer " + tok},
			{Kind: certviewtest.FaultStatus, Status: http.StatusInternalServerError, Body: echo, Times: 2},
			{Kind: certviewtest.FaultReset, Times: 2},
			{Kind: certviewtest.FaultStatus, Status: 429, Times: 10, Header: map[string]string{"X-RateLimit-ToWait-Sec": "1", "X-RateLimit-Remaining": tok}},
		} {
			f.Page = -1
			r.srv.Sim.Inject(f)
			_, _, err := r.listCertificates()
			if err == nil {
				t.Fatalf("fault %s %d: no error", f.Kind, f.Status)
			}
			errs = append(errs, err)
		}
	}
	// Refused credentials, both kinds.
	for _, cred := range []Credentials{{Username: "demo", Password: password + "x"}, {ClientID: "demo-client", ClientSecret: secret + "x"}} {
		r2 := newRig(t, opts, func(c *Config) { c.Credentials = cred; c.Logger = log.NewLogfmtLogger(&logs) })
		_, _, err := r2.listCertificates()
		if !errors.As(err, new(*AuthError)) {
			t.Fatalf("err = %v, want AuthError", err)
		}
		errs = append(errs, err)
		errs = append(errs, fmt.Errorf("%v %+v %#v %s", r2.c.cfg, r2.c.cfg, r2.c.cfg.Credentials, r2.c.cfg.Credentials))
	}
	for _, err := range errs {
		msg := err.Error()
		for _, s := range leakMarkers(password, secret, tokens) {
			if strings.Contains(msg, s) {
				t.Errorf("error %q leaks a secret", msg)
			}
		}
	}
	for _, s := range leakMarkers(password, secret, tokens) {
		if strings.Contains(logs.String(), s) {
			t.Errorf("logs leak a secret:\n%s", logs.String())
		}
	}
	if !strings.Contains(errs[0].Error(), "you sent password=[REDACTED]") {
		t.Errorf("the echoed body should be kept, redacted: %v", errs[0])
	}
}

// leakMarkers are the strings whose presence is a leak: each secret whole, and each
// token's signature (its first segment is a public header, the same for every token).
func leakMarkers(password, secret string, tokens []string) []string {
	out := []string{password, secret}
	for _, tok := range tokens {
		out = append(out, tok, tok[strings.LastIndex(tok, ".")+1:])
	}
	return out
}

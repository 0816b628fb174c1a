package certview

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/go-kit/log"
	"github.com/jonboulle/clockwork"
)

// spellings are the ways a server could echo a secret: raw, URL-query and form encoded
// (as the client sent it), path encoded, with lower-case hex, JSON and HTML escaped,
// upper-cased, and base64.
func spellings(secret string) []string {
	lower := func(s string) string {
		return regexp.MustCompile(`%[0-9A-F]{2}`).ReplaceAllStringFunc(s, strings.ToLower)
	}
	j, _ := json.Marshal(secret)
	return []string{secret, url.QueryEscape(secret), url.PathEscape(secret), lower(url.QueryEscape(secret)),
		lower(url.PathEscape(secret)), strings.Trim(string(j), `"`), html.EscapeString(secret),
		strings.ToUpper(secret), base64.StdEncoding.EncodeToString([]byte(secret)),
		base64.RawURLEncoding.EncodeToString([]byte(secret))}
}

// An /auth answer of 400 or 500 that echoes the submitted form, in any spelling, puts
// no spelling of the password in the error or the log.
func TestAuthAnswerEchoingTheFormIsRedacted(t *testing.T) {
	const password = `p@ss+word <"&'> €/x`
	for _, status := range []int{400, 500} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			form, _ := io.ReadAll(r.Body)
			w.WriteHeader(status)
			fmt.Fprintf(w, "bad request: %s | %s", form, strings.Join(spellings(password), " | "))
		}))
		var logs bytes.Buffer
		c, err := New(Config{BaseURL: srv.URL, Credentials: Credentials{Username: "demo", Password: password},
			Clock: clockwork.NewFakeClockAt(epoch), Logger: log.NewLogfmtLogger(&logs), MaxRetries: 1, BackoffBase: 1, BackoffMax: 1}) // a 1 ns backoff rounds down to no wait
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Token(context.Background())
		srv.Close()
		if err == nil {
			t.Fatalf("HTTP %d: no error", status)
		}
		if !strings.Contains(err.Error(), "password=[REDACTED]") {
			t.Errorf("HTTP %d: the echoed form should be kept, redacted: %v", status, err)
		}
		for _, s := range append(spellings(password), "p%40ss", "p@ss", "ss+wo", "ss%2Bwo") {
			for what, text := range map[string]string{"error": err.Error(), "log": logs.String()} {
				if strings.Contains(text, s) {
					t.Errorf("HTTP %d: the %s holds %q: %s", status, what, s, text)
				}
			}
		}
	}
}

// Printing a type that holds a secret, with any verb, never shows it.
func TestSecretHoldersNeverPrintTheirSecrets(t *testing.T) {
	const password, secret = "pw-Zebra-9931", "cs-Walrus-4417"
	r := newRig(t, inventory(1, 0), nil)
	if _, err := r.c.Token(context.Background()); err != nil {
		t.Fatal(err)
	}
	r.c.cfg.Credentials.Password = password // as if configured; the token is the simulator's
	tok := r.c.token
	creds := Credentials{Username: "demo", Password: password, ClientID: "id", ClientSecret: secret}
	cfg := Config{BaseURL: "https://x", Credentials: creds}
	markers := []string{password, secret, tok, tok[strings.LastIndex(tok, ".")+1:]}
	for _, m := range append([]string(nil), markers...) {
		markers = append(markers, hex.EncodeToString([]byte(m)), strings.ToUpper(hex.EncodeToString([]byte(m))))
	}
	for name, v := range map[string]any{"Credentials": creds, "*Credentials": &creds, "Config": cfg, "*Config": &cfg, "*Client": r.c} {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%T", "%10.3v"} {
			out := fmt.Sprintf(verb, v)
			for _, m := range markers {
				if strings.Contains(out, m) {
					t.Errorf("%s printed with %s shows a secret: %s", name, verb, out)
				}
			}
		}
	}
	if got := fmt.Sprint(creds); !strings.Contains(got, `"id"`) {
		t.Errorf("credentials print as %q; the client id should show", got)
	}
}

// A base URL carrying userinfo is refused without printing the userinfo, whatever else
// is wrong with it.
func TestBaseURLUserinfoIsNeverPrinted(t *testing.T) {
	for _, raw := range []string{
		"https://user:s3cretPW@host:badport",
		"https://user:s3cretPW@host:badport/path",
		"https://user:s3cretPW@host/",
		"https://user:s3cr%zzetPW@host/",
		"https://user:s3c/retPW@host/",
		"https://user:s3c#retPW@host/",
		"ftp://user:s3cretPW@host",
		"user:s3cretPW@host",
		" https://user:s3cretPW@[::1",
	} {
		cfg := Config{BaseURL: raw, Credentials: Credentials{Username: "u", Password: "p"}}
		_, err := New(cfg)
		if err == nil {
			t.Errorf("%s: accepted", raw)
			continue
		}
		verr := cfg.Validate()
		for _, e := range []error{err, verr} {
			if e == nil {
				t.Errorf("%s: Validate accepted it", raw)
				continue
			}
			for _, part := range []string{"s3cretPW", "s3cr", "retPW", "%zz"} {
				if strings.Contains(e.Error(), part) {
					t.Errorf("%s: error %q shows the userinfo", raw, e)
				}
			}
		}
	}
}

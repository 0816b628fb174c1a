package web

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestCheckTelemetryPath(t *testing.T) {
	for _, ok := range []string{"/", "/metrics", "/a/b", "/metrics.txt", "/-metrics", "/x~y:z@w", "/" + strings.Repeat("a", 255)} {
		if err := CheckTelemetryPath(ok); err != nil {
			t.Errorf("%q refused: %v", ok, err)
		}
	}
	for bad, why := range map[string]string{
		"":                              "empty",
		"metrics":                       "does not start with /",
		"/-/ready":                      "under /-/",
		"/-/healthy":                    "under /-/",
		"/-/reload":                     "under /-/",
		"/-/metrics":                    "under /-/",
		"/a b":                          `holds " "`,
		"/a\tb":                         `holds "\t"`,
		"/a%20b":                        `holds "%"`,
		"/{x}":                          `holds "{"`,
		"/m?x=1":                        `holds "?"`,
		"/m#f":                          `holds "#"`,
		"/metrics/":                     "not a clean path",
		"//metrics":                     "not a clean path",
		"/a/../metrics":                 "not a clean path",
		"/./metrics":                    "not a clean path",
		"GET /metrics":                  "does not start with /",
		"/" + strings.Repeat("a", 256):  "more than 256",
		"/m\x00":                        `holds "\x00"`,
		"/m\u00e9":                      `holds "\xc3"`,
		"example.com/metrics":           "does not start with /",
		"/metrics\n":                    `holds "\n"`,
		"/" + strings.Repeat("a/", 200): "more than 256",
	} {
		err := CheckTelemetryPath(bad)
		if err == nil || !strings.Contains(err.Error(), why) {
			t.Errorf("%q: %v, want an error saying %q", bad, err, why)
		}
	}
}

// New refuses what the router would panic on, and serves what it takes.
func TestNewChecksTheTelemetryPath(t *testing.T) {
	opts := Options{Metrics: http.NotFoundHandler(), Ready: func() bool { return true }}
	for _, p := range []string{"/-/ready", "metrics", "", "/a b"} {
		opts.TelemetryPath = p
		if _, err := New(opts); err == nil {
			t.Errorf("New took %q", p)
		}
	}
	opts.TelemetryPath = "/custom/metrics"
	if _, err := New(opts); err != nil {
		t.Fatal(err)
	}
	// At "/", the metrics are served at the root and at any path the other routes
	// leave, as before the path was checked; health stays its own.
	served := 0
	opts.TelemetryPath = "/"
	opts.Metrics = http.HandlerFunc(func(http.ResponseWriter, *http.Request) { served++ })
	srv, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/", "/anything", "/-/healthy"} {
		srv.HTTP.Handler.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", path, nil))
	}
	if served != 2 {
		t.Fatalf("the metrics handler served %d of /, /anything and /-/healthy, want the first two", served)
	}
}

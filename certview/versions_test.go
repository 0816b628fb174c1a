package certview

import (
	"bytes"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/certview-exporter/certview_exporter/certview/certviewtest"
	"github.com/go-kit/log"
)

const (
	pathV2  = "/certview/v2/certificates"
	pathV21 = "/certview/v2.1/certificates"
	pathV22 = "/certview/v2.2/certificates"
)

// versionRig is a rig that records the version and deprecation hooks and the log.
type versionRig struct {
	*rig
	mu           sync.Mutex
	versions     []VersionEvent
	deprecations []DeprecationEvent
	log          bytes.Buffer
}

func newVersionRig(t *testing.T, certs int, tweak func(*Config)) *versionRig {
	t.Helper()
	vr := &versionRig{}
	vr.rig = newRig(t, certviewtest.Options{Inventory: certviewtest.Inventory{Seed: 3, Certificates: certs, Instances: certs}}, func(c *Config) {
		c.Logger = log.NewLogfmtLogger(log.NewSyncWriter(&vr.log))
		c.Hooks.Version = func(e VersionEvent) { vr.mu.Lock(); vr.versions = append(vr.versions, e); vr.mu.Unlock() }
		c.Hooks.Deprecation = func(e DeprecationEvent) {
			vr.mu.Lock()
			vr.deprecations = append(vr.deprecations, e)
			vr.mu.Unlock()
		}
		if tweak != nil {
			tweak(c)
		}
	})
	return vr
}

func (vr *versionRig) asked() map[string]int {
	sim := vr.srv.Sim
	return map[string]int{"v2.2": sim.PathRequests(pathV22), "v2.1": sim.PathRequests(pathV21), "v2": sim.PathRequests(pathV2)}
}

func (vr *versionRig) mustList(t *testing.T, want int) []Certificate {
	t.Helper()
	_, certs, err := vr.listCertificates()
	if err != nil {
		t.Fatalf("listing: %v", err)
	}
	if len(certs) != want {
		t.Fatalf("listed %d certificates, want %d", len(certs), want)
	}
	return certs
}

func sameCounts(t *testing.T, what string, got, want map[string]int) {
	t.Helper()
	for v, n := range want {
		if got[v] != n {
			t.Errorf("%s: %s asked %d times, want %d (all: %v)", what, v, got[v], n, got)
		}
	}
}

func TestAutoVersionUsesTheNewestThatAnswers(t *testing.T) {
	const certs = 450 // three pages
	cases := []struct {
		name    string
		retired map[string]int
		want    string
		first   map[string]int // requests per version after the first listing
	}{
		{"v2 retired", map[string]int{"v2": 404}, "v2.2", map[string]int{"v2.2": 3, "v2.1": 0, "v2": 0}},
		{"v2 and v2.1 retired", map[string]int{"v2": 404, "v2.1": 410}, "v2.2", map[string]int{"v2.2": 3, "v2.1": 0, "v2": 0}},
		{"v2.2 not yet published", map[string]int{"v2.2": 404}, "v2.1", map[string]int{"v2.2": 1, "v2.1": 3, "v2": 0}},
		{"only v2 answers", map[string]int{"v2.2": 404, "v2.1": 410}, "v2", map[string]int{"v2.2": 1, "v2.1": 1, "v2": 3}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			vr := newVersionRig(t, certs, nil)
			for v, status := range tc.retired {
				vr.srv.Sim.Retire(v, status)
			}
			got := vr.mustList(t, certs)
			if vr.c.CertificatesVersion() != tc.want {
				t.Fatalf("version in use %q, want %q", vr.c.CertificatesVersion(), tc.want)
			}
			if (got[0].PublicKeyAlgorithm != "") != (tc.want != "v2") {
				t.Errorf("publicKeyAlgorithm %q from %s", got[0].PublicKeyAlgorithm, tc.want)
			}
			sameCounts(t, "first listing", vr.asked(), tc.first)
			// The choice is remembered: a second listing asks no retired path again.
			vr.mustList(t, certs)
			second := map[string]int{}
			for v, n := range tc.first {
				second[v] = n
				if v == tc.want {
					second[v] = 2 * n
				}
			}
			sameCounts(t, "second listing", vr.asked(), second)
			vr.mu.Lock()
			last := vr.versions[len(vr.versions)-1]
			vr.mu.Unlock()
			if last != (VersionEvent{Endpoint: EndpointCertificates, Version: tc.want}) {
				t.Errorf("version hook %+v, want certificates %s", last, tc.want)
			}
		})
	}
}

func TestAutoVersionRenegotiatesAfterALater404(t *testing.T) {
	vr := newVersionRig(t, 50, nil)
	vr.srv.Sim.Retire("v2.2", http.StatusNotFound)
	vr.mustList(t, 50)
	sameCounts(t, "negotiated", vr.asked(), map[string]int{"v2.2": 1, "v2.1": 1, "v2": 0})

	// The vendor retires v2.1 too: the next listing asks it once, then negotiates
	// again, asking each other version once.
	vr.srv.Sim.Retire("v2.1", http.StatusNotFound)
	vr.mustList(t, 50)
	if v := vr.c.CertificatesVersion(); v != "v2" {
		t.Fatalf("version in use %q after renegotiation, want v2", v)
	}
	sameCounts(t, "renegotiated", vr.asked(), map[string]int{"v2.2": 2, "v2.1": 2, "v2": 1})
	vr.mustList(t, 50)
	sameCounts(t, "settled", vr.asked(), map[string]int{"v2.2": 2, "v2.1": 2, "v2": 2})
	if !strings.Contains(vr.log.String(), `msg="certificates API version did not answer; trying an older one" version=v2.1 status=404`) {
		t.Errorf("no log line for the step down:\n%s", vr.log.String())
	}
}

func TestAutoVersionWithEveryVersionRetired(t *testing.T) {
	vr := newVersionRig(t, 10, nil)
	for _, v := range NegotiationOrder {
		vr.srv.Sim.Retire(v, http.StatusGone)
	}
	_, _, err := vr.listCertificates()
	var ve *VersionError
	if !errors.As(err, &ve) || !ve.Auto {
		t.Fatalf("error %v, want a VersionError", err)
	}
	if want := "no certificates API version answered (tried v2.2, v2.1, v2; the last answered HTTP 410: certview: certificates page 0"; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not say %q", err, want)
	}
	sameCounts(t, "all retired", vr.asked(), map[string]int{"v2.2": 1, "v2.1": 1, "v2": 1})
}

func TestExplicitVersionIsUsedAlone(t *testing.T) {
	vr := newVersionRig(t, 10, func(c *Config) { c.CertificatesVersion = "v2" })
	vr.mustList(t, 10)
	sameCounts(t, "explicit v2", vr.asked(), map[string]int{"v2.2": 0, "v2.1": 0, "v2": 1})

	vr.srv.Sim.Retire("v2", http.StatusNotFound)
	_, _, err := vr.listCertificates()
	var ve *VersionError
	if !errors.As(err, &ve) || ve.Auto {
		t.Fatalf("error %v, want a VersionError for the configured version", err)
	}
	for _, want := range []string{"certificates API v2 answered HTTP 404", "certificates_api_version to auto"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	sameCounts(t, "explicit v2 retired", vr.asked(), map[string]int{"v2.2": 0, "v2.1": 0, "v2": 2})
}

func TestDeprecationHeadersAreReportedAndLoggedOnce(t *testing.T) {
	since := time.Date(2025, 12, 1, 0, 0, 0, 0, time.UTC)
	sunset := time.Date(2026, 12, 31, 0, 0, 0, 0, time.UTC)
	vr := newVersionRig(t, 450, func(c *Config) { c.CertificatesVersion = "v2" })
	vr.srv.Sim.Deprecate("v2", since, sunset)
	vr.mustList(t, 450)
	vr.mustList(t, 450)
	vr.mu.Lock()
	events := append([]DeprecationEvent(nil), vr.deprecations...)
	vr.mu.Unlock()
	if len(events) != 6 {
		t.Fatalf("%d deprecation events, want one per call (6)", len(events))
	}
	want := DeprecationEvent{Endpoint: EndpointCertificates, Version: "v2", Deprecation: Deprecation{Deprecated: true, Since: since, Sunset: sunset}}
	if events[0] != want {
		t.Errorf("event %+v, want %+v", events[0], want)
	}
	if n := strings.Count(vr.log.String(), "announced that this API version is deprecated"); n != 1 {
		t.Errorf("deprecation logged %d times, want once:\n%s", n, vr.log.String())
	}
	if !strings.Contains(vr.log.String(), "sunset=2026-12-31T00:00:00Z") {
		t.Errorf("the warning does not give the sunset date:\n%s", vr.log.String())
	}
}

func TestParseDeprecation(t *testing.T) {
	cases := []struct {
		dep, sunset string
		want        Deprecation
		problems    int
	}{
		{"", "", Deprecation{}, 0},
		{"@1764547200", "", Deprecation{Deprecated: true, Since: time.Unix(1764547200, 0).UTC()}, 0},
		{"true", "", Deprecation{Deprecated: true}, 0},
		{"Mon, 01 Dec 2025 00:00:00 GMT", "Thu, 31 Dec 2026 00:00:00 GMT",
			Deprecation{Deprecated: true, Since: time.Date(2025, 12, 1, 0, 0, 0, 0, time.UTC), Sunset: time.Date(2026, 12, 31, 0, 0, 0, 0, time.UTC)}, 0},
		{"", "Thu, 31 Dec 2026 00:00:00 GMT", Deprecation{Deprecated: true, Sunset: time.Date(2026, 12, 31, 0, 0, 0, 0, time.UTC)}, 0},
		{"@soon", "tomorrow", Deprecation{}, 2},
		{"yesterday", "", Deprecation{}, 1},
	}
	for _, tc := range cases {
		h := http.Header{}
		if tc.dep != "" {
			h.Set("Deprecation", tc.dep)
		}
		if tc.sunset != "" {
			h.Set("Sunset", tc.sunset)
		}
		got, problems := ParseDeprecation(h)
		if got != tc.want || len(problems) != tc.problems {
			t.Errorf("Deprecation %q Sunset %q: got %+v with %d problems (%v), want %+v with %d", tc.dep, tc.sunset, got, len(problems), problems, tc.want, tc.problems)
		}
		for _, p := range problems {
			if !strings.Contains(p.Error(), "header ") {
				t.Errorf("problem %q does not name the header", p)
			}
		}
	}
}

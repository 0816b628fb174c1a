package collector

import (
	"net/http/httptest"
	"regexp"
	"strconv"
	"testing"

	"github.com/certview-exporter/certview_exporter/certview/certviewtest"
	"github.com/certview-exporter/certview_exporter/collector/config"
	"github.com/certview-exporter/certview_exporter/collector/telemetry"
	"github.com/prometheus/client_golang/prometheus"
)

// An API that pads every record (a 2,000-byte DN, name, serial and asset name, 125 SANs,
// 40 tags an asset) is polled whole; what the snapshot keeps is cut to the bounds, and
// /metrics counts the cuts by field, one a record, and serves no value past its bound.
func TestOversizedRecordsAreCutAndCounted(t *testing.T) {
	const certs, instances = 40, 80
	srv := certviewtest.NewServer(certviewtest.Options{Inventory: certviewtest.Inventory{Seed: 3, Certificates: certs, Instances: instances,
		Oversized: 2000}, RateLimit: 100000})
	t.Cleanup(srv.Close)
	cfg := serviceConfig(t, srv.URL, "1h")
	cfg.Owners.Labels = []config.OwnerLabel{{Name: "team", TagRegex: "^Tag3(.*)$"}}
	cfg.Complete()
	tel := telemetry.New()
	reg := prometheus.NewRegistry()
	reg.MustRegister(tel.Collectors()...)
	svc, _ := runService(t, cfg, ServiceOptions{Telemetry: tel, Gatherer: reg})
	rec := httptest.NewRecorder()
	svc.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body := rec.Body.String()
	counter := func(field string) int {
		m := regexp.MustCompile(`(?m)^qualys_certview_api_values_cut_total\{field="` + field + `"\} (\d+)$`).FindStringSubmatch(body)
		if m == nil {
			t.Fatalf("no cut counter for %s", field)
		}
		n, _ := strconv.Atoi(m[1])
		return n
	}
	for field, want := range map[string]int{"dn": certs, "common_name": certs, "serial_number": certs,
		"subject_alternative_names": certs, "asset_name": instances, "ip": instances} {
		if got := counter(field); got != want {
			t.Errorf("%s cut %d times, want %d (one a record)", field, got, want)
		}
	}
	if counter("tags") < certs {
		t.Errorf("tags cut %d times, want at least one a certificate", counter("tags"))
	}
	// No label value served is longer than the widest bound (256 bytes).
	for _, m := range regexp.MustCompile(`="([^"]*)"`).FindAllStringSubmatch(body, -1) {
		if len(m[1]) > 256 {
			t.Fatalf("a label value of %d bytes is served: %.80s...", len(m[1]), m[1])
		}
	}
}

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
	body := polledMetrics(t, certviewtest.Inventory{Seed: 3, Certificates: certs, Instances: instances, Oversized: 2000},
		func(cfg *config.Config) {
			cfg.Owners.Labels = []config.OwnerLabel{{Name: "team", TagRegex: "^Tag3(.*)$"}}
		})
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

// An API that grades every instance "Z" (a grade CertView does not document) and sends
// category scores of -1 and 1000: /metrics serves the instances as grade "other" (one
// value, not one series family per invented grade), serves no score outside 0 to 100,
// and counts each value in qualys_certview_api_values_out_of_range_total by field.
func TestOffScaleValuesAreMappedAndCounted(t *testing.T) {
	body := polledMetrics(t, certviewtest.Inventory{Seed: 4, Certificates: 40, Instances: 120, OffScale: true},
		func(cfg *config.Config) { cfg.Metrics.InstanceScoreCategories = true })
	grades := map[string]int{}
	for _, m := range regexp.MustCompile(`(?m)^qualys_certview_instance_grade_rank\{[^}]*grade="([^"]*)"`).FindAllStringSubmatch(body, -1) {
		grades[m[1]]++
	}
	graded := grades["other"]
	if graded == 0 || len(grades) > 2 || grades["other"]+grades["none"] != 120 {
		t.Fatalf("grade ranks by grade %v, want every graded instance as other and the rest none", grades)
	}
	scores := regexp.MustCompile(`(?m)^qualys_certview_instance_score\{[^}]*\} (\S+)$`).FindAllStringSubmatch(body, -1)
	for _, m := range scores {
		if v, err := strconv.ParseFloat(m[1], 64); err != nil || v < 0 || v > 100 {
			t.Fatalf("a score of %s is served", m[1])
		}
	}
	if len(scores) != 2*graded { // protocol support and key exchange, in range
		t.Errorf("%d scores served, want the %d in range", len(scores), 2*graded)
	}
	for field, want := range map[string]int{"grade": 2 * graded, "score": 2 * graded} { // grade and trust-ignored grade; two scores
		m := regexp.MustCompile(`(?m)^qualys_certview_api_values_out_of_range_total\{field="` + field + `"\} (\d+)$`).FindStringSubmatch(body)
		if m == nil || m[1] != strconv.Itoa(want) {
			t.Errorf("out_of_range_total{field=%q}: %v, want %d", field, m, want)
		}
	}
}

// polledMetrics polls inv through the service, configured by configure, with the
// exporter's own metrics, and returns its /metrics.
func polledMetrics(t *testing.T, inv certviewtest.Inventory, configure func(*config.Config)) string {
	t.Helper()
	srv := certviewtest.NewServer(certviewtest.Options{Inventory: inv, RateLimit: 100000})
	t.Cleanup(srv.Close)
	cfg := serviceConfig(t, srv.URL, "1h")
	configure(cfg)
	cfg.Complete()
	tel := telemetry.New()
	reg := prometheus.NewRegistry()
	reg.MustRegister(tel.Collectors()...)
	svc, _ := runService(t, cfg, ServiceOptions{Telemetry: tel, Gatherer: reg})
	rec := httptest.NewRecorder()
	svc.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	return rec.Body.String()
}

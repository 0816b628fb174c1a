package poll

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/certview-exporter/certview_exporter/certview/certviewtest"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestTelemetryCountsRequests(t *testing.T) {
	r := newRig(t, certviewtest.Inventory{Seed: 1, Certificates: 450, Instances: 10}, nil)
	if err := r.loop.Poll(context.Background()); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(r.tel.Collectors()...)
	want := `
# HELP qualys_certview_api_requests_total HTTP requests the exporter made to the CertView API, by endpoint and status code (0: no response). Counted live by the exporter.
# TYPE qualys_certview_api_requests_total counter
qualys_certview_api_requests_total{code="200",endpoint="certificates"} 3
qualys_certview_api_requests_total{code="200",endpoint="instances"} 1
qualys_certview_api_requests_total{code="201",endpoint="auth"} 1
# HELP qualys_certview_api_rate_limit_remaining Calls left in the current rate-limit window per API, from the last X-RateLimit-Remaining header the API sent. Cached from the last response.
# TYPE qualys_certview_api_rate_limit_remaining gauge
qualys_certview_api_rate_limit_remaining{endpoint="certificates"} 99997
qualys_certview_api_rate_limit_remaining{endpoint="instances"} 99999
# HELP qualys_certview_api_rate_limit_limit Calls allowed per rate-limit window per API: the last X-RateLimit-Limit header, or the configured rate_limit.calls until one arrives. Cached from the last response.
# TYPE qualys_certview_api_rate_limit_limit gauge
qualys_certview_api_rate_limit_limit{endpoint="certificates"} 100000
qualys_certview_api_rate_limit_limit{endpoint="instances"} 100000
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "qualys_certview_api_requests_total", "qualys_certview_api_rate_limit_remaining", "qualys_certview_api_rate_limit_limit"); err != nil {
		t.Fatal(err)
	}
}

func TestTelemetryShowsTheAPIVersionAndItsDeprecation(t *testing.T) {
	r := newRig(t, certviewtest.Inventory{Seed: 1, Certificates: 20, Instances: 10}, nil)
	r.srv.Sim.Retire("v2.2", 404)
	r.srv.Sim.Deprecate("v2.1", time.Date(2025, 12, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 12, 31, 0, 0, 0, 0, time.UTC))
	if err := r.loop.Poll(context.Background()); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(r.tel.Collectors()...)
	want := `
# HELP qualys_certview_api_version_info The CertView API version in use per endpoint (1): the configured one, or the newest that answered under certificates_api_version auto. Set by the last successful listing.
# TYPE qualys_certview_api_version_info gauge
qualys_certview_api_version_info{endpoint="certificates",version="v2.1"} 1
qualys_certview_api_version_info{endpoint="instances",version="v2"} 1
# HELP qualys_certview_api_deprecated 1 when the CertView API answered an API version's calls with a Deprecation or Sunset header (RFC 9745, RFC 8594). Cached from the last response.
# TYPE qualys_certview_api_deprecated gauge
qualys_certview_api_deprecated{endpoint="certificates",version="v2.1"} 1
# HELP qualys_certview_api_sunset_timestamp_seconds When the CertView API said an API version stops answering (its Sunset header), as a Unix timestamp. Cached from the last response.
# TYPE qualys_certview_api_sunset_timestamp_seconds gauge
qualys_certview_api_sunset_timestamp_seconds{endpoint="certificates",version="v2.1"} 1.7986752e+09
`
	names := []string{"qualys_certview_api_version_info", "qualys_certview_api_deprecated", "qualys_certview_api_sunset_timestamp_seconds"}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), names...); err != nil {
		t.Fatal(err)
	}
	// The vendor retires v2.1: the next poll negotiates down, and the version series moves.
	r.srv.Sim.Retire("v2.1", 410)
	if err := r.loop.Poll(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP qualys_certview_api_version_info The CertView API version in use per endpoint (1): the configured one, or the newest that answered under certificates_api_version auto. Set by the last successful listing.
# TYPE qualys_certview_api_version_info gauge
qualys_certview_api_version_info{endpoint="certificates",version="v2"} 1
qualys_certview_api_version_info{endpoint="instances",version="v2"} 1
`), names[0]); err != nil {
		t.Fatal(err)
	}
}

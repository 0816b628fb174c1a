//go:build e2e

package main

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/certview-exporter/certview_exporter/certview/certviewtest"
	dto "github.com/prometheus/client_model/go"
)

// decision is one certificate alert as the shipped rules must raise it: per certificate
// and owner, with its renewal state (issuer alerts carry no owner).
type decision struct {
	alert, certhash, state, team, environment string
}

func (d decision) String() string {
	return fmt.Sprintf("%s{certhash=%.12s…,renewal_state=%s,team=%q,environment=%q}", d.alert, d.certhash, d.state, d.team, d.environment)
}

// certificateAlerts are the alerts decided per certificate.
var certificateAlerts = map[string]bool{
	string(certviewtest.AlertExpiringSoon): true, string(certviewtest.AlertExpiringCritical): true,
	string(certviewtest.AlertExpired): true, string(certviewtest.AlertIssuerSoon): true,
	string(certviewtest.AlertIssuerCritical): true,
}

// expiryVerdict is what one scrape of the exporter says must fire, decided here in Go
// from the per-certificate series, apart from the rules' PromQL, and what a plain 30-day
// rule would raise on the same inventory.
type expiryVerdict struct {
	want map[decision]bool
	// A plain "expires within 30 days" rule: on every certificate of the inventory, and
	// on the served ones only (this exporter's rules before they knew renewals, lifetimes
	// and issuers); each counted per certificate.
	plainAll, plainServed int
	certificates          int // certificates that need action
}

// decideExpiry applies the thresholds README's "Expiry alerts" states: a certificate is
// due with less than a third of its lifetime (validTo - validFrom) and at most 30 days
// left, critical in its last tenth and at most 7 days, expired below 0; it counts when
// an instance serves it, or, as an issuer, when served certificates name it (then the
// issuer alert, without owner, instead of its own). renewal_state is renewed_not_deployed
// when the exporter names a successor.
func decideExpiry(mfs map[string]*dto.MetricFamily) expiryVerdict {
	byHash := func(name string) map[string]float64 {
		out := map[string]float64{}
		for _, m := range mfs[name].GetMetric() {
			out[labels(m)["certhash"]] = value(m)
		}
		return out
	}
	days := byHash("qualys_certview_certificate_expiry_days")
	notBefore := byHash("qualys_certview_certificate_not_before_timestamp_seconds")
	notAfter := byHash("qualys_certview_certificate_not_after_timestamp_seconds")
	instances := byHash("qualys_certview_certificate_instances")
	leaves := byHash("qualys_certview_issuer_served_leaves")
	successor := byHash("qualys_certview_certificate_successor_info")
	// The owners of a certificate: those of the instances serving it (the owner labels of
	// qualys_certview_instance_info), each combination once; none when the snapshot lists
	// no instance serving it.
	owners := map[string][][2]string{}
	for _, m := range mfs["qualys_certview_instance_info"].GetMetric() {
		l := labels(m)
		o := [2]string{l["team"], l["environment"]}
		if !slices.Contains(owners[l["certhash"]], o) {
			owners[l["certhash"]] = append(owners[l["certhash"]], o)
		}
	}
	v := expiryVerdict{want: map[decision]bool{}}
	for h, left := range days {
		if left >= 30 {
			continue
		}
		v.plainAll++
		issuer, served := leaves[h] > 0, instances[h] > 0
		if served {
			v.plainServed++
		}
		if !issuer && !served {
			continue
		}
		due, critical := 30.0, 7.0
		if nb, ok := notBefore[h]; ok && nb > 0 {
			lifetime := (notAfter[h] - nb) / 86400
			due, critical = math.Min(lifetime/3, 30), math.Min(lifetime/10, 7)
		}
		if left >= due {
			continue
		}
		v.certificates++
		state := "not_renewed"
		if _, ok := successor[h]; ok {
			state = "renewed_not_deployed"
		}
		if issuer {
			name := certviewtest.AlertIssuerSoon
			if left < critical {
				name = certviewtest.AlertIssuerCritical
			}
			v.want[decision{alert: string(name), certhash: h, state: state}] = true
			continue
		}
		name := certviewtest.AlertExpiringSoon
		switch {
		case left < 0:
			name = certviewtest.AlertExpired
		case left < critical:
			name = certviewtest.AlertExpiringCritical
		}
		own := owners[h]
		if len(own) == 0 {
			own = [][2]string{{"", ""}}
		}
		for _, o := range own {
			v.want[decision{alert: string(name), certhash: h, state: state, team: o[0], environment: o[1]}] = true
		}
	}
	return v
}

// firedDecisions are the certificate alerts in Alertmanager.
func firedDecisions(alerts []amAlert) map[decision]bool {
	out := map[decision]bool{}
	for _, a := range alerts {
		l := a.Labels
		if certificateAlerts[l["alertname"]] {
			out[decision{alert: l["alertname"], certhash: l["certhash"], state: l["renewal_state"], team: l["team"], environment: l["environment"]}] = true
		}
	}
	return out
}

// countCertificateAlerts counts the certificate alerts in Alertmanager.
func countCertificateAlerts(alerts []amAlert) int {
	n := 0
	for _, a := range alerts {
		if certificateAlerts[a.Labels["alertname"]] {
			n++
		}
	}
	return n
}

// decisionDiff lists, sorted, what fired without being due and what is due and did not fire.
func decisionDiff(want, got map[decision]bool) string {
	var lines []string
	for d := range got {
		if !want[d] {
			lines = append(lines, "fired, not due: "+d.String())
		}
	}
	for d := range want {
		if !got[d] {
			lines = append(lines, "due, not fired: "+d.String())
		}
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// checkRenewalFamilies holds every certificate of the demo's renewal families to what its
// case says, from the simulator's own account (not from the rules or the oracle above):
// the alert it raises, with its renewal state, or none.
func checkRenewalFamilies(t *testing.T, cases []certviewtest.RenewalCase, alerts []amAlert) {
	t.Helper()
	if len(cases) == 0 {
		t.Fatal("the demo inventory has no renewal families")
	}
	fired := map[string][]amAlert{}
	for _, a := range alerts {
		if certificateAlerts[a.Labels["alertname"]] {
			fired[a.Labels["certhash"]] = append(fired[a.Labels["certhash"]], a)
		}
	}
	kinds := map[string]bool{}
	for _, c := range cases {
		got := fired[c.CertHash]
		if c.Alert == certviewtest.NoAlert {
			if len(got) > 0 {
				t.Errorf("%s (%s) needs no action, yet %s fired", c.CommonName, c.Family, got[0].Labels["alertname"])
			}
			continue
		}
		if len(got) == 0 {
			t.Errorf("%s (%s) needs action: %s did not fire", c.CommonName, c.Family, c.Alert)
			continue
		}
		for _, a := range got {
			if a.Labels["alertname"] != string(c.Alert) || a.Labels["renewal_state"] != c.RenewalState {
				t.Errorf("%s (%s): %s with renewal_state %q, want %s with %q", c.CommonName, c.Family,
					a.Labels["alertname"], a.Labels["renewal_state"], c.Alert, c.RenewalState)
			}
			if c.ServedLeaves > 0 && !strings.Contains(a.Annotations["summary"], fmt.Sprintf("%d served certificates depend on it", c.ServedLeaves)) {
				t.Errorf("%s: the summary does not count its %d served certificates: %s", c.CommonName, c.ServedLeaves, a.Annotations["summary"])
			}
			if c.RenewalState == "renewed_not_deployed" && !strings.Contains(a.Annotations["description"], "its successor, certhash "+c.Successor) {
				t.Errorf("%s: the description does not name the successor %s: %s", c.CommonName, c.Successor, a.Annotations["description"])
			}
		}
		kinds[string(c.Alert)+"/"+c.RenewalState] = true
	}
	for _, k := range []string{"CertViewCertificateExpiringSoon/renewed_not_deployed", "CertViewCertificateExpiringCritical/renewed_not_deployed",
		"CertViewCertificateExpired/renewed_not_deployed", "CertViewCertificateExpiringSoon/not_renewed",
		"CertViewCertificateExpiringCritical/not_renewed", "CertViewIssuerExpiringSoon/not_renewed"} {
		if !kinds[k] {
			t.Errorf("the renewal families raise no %s", k)
		}
	}
}

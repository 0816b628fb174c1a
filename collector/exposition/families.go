package exposition

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/certview-exporter/certview_exporter/collector/snapshot"
)

// family describes a metric family for the writer.
type family struct {
	name, help string
}

// cached is appended to the HELP of every metric rendered from the snapshot.
const cached = " Served from the snapshot cached by the last successful poll; a scrape never calls the API."

// cachedFrom ends the HELP of metrics computed at scrape time from the snapshot.
const cachedFrom = " from the snapshot cached by the last successful poll; a scrape never calls the API."

// Certificate info labels, in order.
var certInfoLabels = []string{"certhash", "common_name", "organization", "issuer", "root_issuer", "issuer_category",
	"signature_algorithm", "key_algorithm", "key_size", "self_signed", "type", "serial_number"}

// Instance info labels, in order.
var instanceInfoLabels = []string{"instance_id", "certhash", "asset_id", "asset_name", "ip", "port", "protocol", "service", "fqdn"}

// ExpiringWindows are the look-ahead windows of qualys_certview_certificates_expiring.
var ExpiringWindows = []int{7, 14, 30, 60, 90}

func fam(name, help string) family { return family{"qualys_certview_" + name, help} }

var (
	famUp           = fam("up", "1 when the last poll of the CertView API succeeded, else 0. Set by the poll loop, not at scrape time.")
	famFailures     = fam("poll_consecutive_failures", "Polls failed in a row since the last success. Set by the poll loop.")
	famInterval     = fam("poll_interval_seconds", "The configured poll interval (poll.interval), for staleness alerts.")
	famLastAttempt  = fam("last_poll_timestamp_seconds", "When the last poll (successful or not) started, as a Unix timestamp. Set by the poll loop.")
	famPollDuration = fam("poll_duration_seconds", "How long the last poll took, successful or not, including rate-limit waits. Set by the poll loop.")
	famLastSuccess  = fam("last_poll_success_timestamp_seconds", "When the last successful poll finished, as a Unix timestamp; the age of the cached snapshot. Set by the poll loop.")
	famSnapshotAge  = fam("snapshot_age_seconds", "Seconds since the cached snapshot was taken, at scrape time; absent before the first snapshot.")

	famCertificates    = fam("certificates", "Certificates in the inventory."+cached)
	famExpired         = fam("certificates_expired", "Certificates whose not-after time has passed, counted at scrape time"+cachedFrom)
	famExpiring        = fam("certificates_expiring", "Certificates not yet expired that expire within the given number of days, counted at scrape time"+cachedFrom)
	famSelfSigned      = fam("certificates_self_signed", "Self-signed certificates."+cached)
	famWeakKey         = fam("certificates_weak_key", "Certificates with a weak key: RSA or DSA below the RSA threshold (default 2048 bits), EC below the EC threshold (default 224 bits)."+cached)
	famWeakSignature   = fam("certificates_weak_signature", "Certificates signed with MD5 or SHA-1."+cached)
	famInstances       = fam("instances", "Server instances by TLS grade (none when ungraded); every grade is always present."+cached)
	famProtocolSupport = fam("instances_protocol_supported", "Server instances that support each protocol version."+cached)

	famExpiryDays           = fam("certificate_expiry_days", "Days from the scrape until the certificate's not-after time; fractional, negative once expired. Computed at scrape time from the not-after time"+cachedFrom)
	famNotAfter             = fam("certificate_not_after_timestamp_seconds", "End of the certificate's validity (validTo), as a Unix timestamp."+cached)
	famNotBefore            = fam("certificate_not_before_timestamp_seconds", "Start of the certificate's validity (validFrom), as a Unix timestamp."+cached)
	famCertificateInfo      = fam("certificate_info", "Certificate metadata; the value is always 1."+cached)
	famGradeRank            = fam("instance_grade_rank", "The TLS grade of a server instance, named by the grade label, as a number, higher is better: A+ 12, A 11, A- 10, B 9, C 8, D 7, E 6, F 3, T 2, M 1, and 0 for none (ungraded) and other (a grade CertView does not document); exactly one series per instance, with the certhash it presents. Filter with > 0 for the worst grades."+cached)
	famScore                = fam("instance_score", "A category score (0-100) of a server instance's TLS grading: certificate, protocol_support, key_exchange or cipher_strength; with the certhash the instance presents. Only with metrics.instance_score_categories."+cached)
	famCertificateInstances = fam("certificate_instances", "Server instances presenting the certificate: CertView's instanceCount, or the instances in the snapshot naming it when more; 0 for a certificate no server presents any more."+cached)
	famExpiryHistogram      = fam("certificates_time_to_expiry_seconds", "Distribution of the certificates' time to expiry (negative once expired), computed at scrape time"+cachedFrom+" It describes the inventory now (a gauge histogram): read its buckets directly, never through rate() or increase(). Expired certificates fall in every bucket.")
	famGradeTrustIgnored    = fam("instance_grade_trust_ignored_rank", "The TLS grade of a server instance with trust set aside (CertView's gradeWithTrustIgnored), ranked as qualys_certview_instance_grade_rank and named by the grade label; present only where it ranks above 0 and differs from the instance's grade, in practice for T: a certificate from a CA the scanner does not trust, such as an internal PKI's."+cached)
	famOwnerInstances       = fam("owner_instances", "Server instances per owner (owners.labels, empty when unowned) and TLS grade (none when ungraded)."+cached)
	famOwnerCertificates    = fam("owner_certificates", "Certificates per owner (owners.labels): a certificate counts once for each owner among the instances serving it; one no instance serves counts as unowned."+cached)
	famSuccessor            = fam("certificate_successor_info", "The certificate's successor: the newest certificate of the same subject (the same DN, else the same subject name and organization) with a later start and a later end of validity and, where both carry subject alternative names, all of this one's. Only for certificates that have one; the value is always 1."+cached)
	famIssuerServedLeaves   = fam("issuer_served_leaves", "Served certificates (instanceCount above 0) that name this certificate, an intermediate or root in the inventory, as their issuer or root issuer by certhash: how many served certificates its expiry breaks. Only for certificates with at least one."+cached)
	famLifetimeOver         = fam("certificates_over_lifetime_cap", "Certificates whose validity (not-after less not-before) exceeds the given number of days: the CA/Browser Forum's caps on public TLS certificates, 200 days from 2026-03-15, 100 from 2027-03-15, 47 from 2029."+cached)
	famOwnerLifetimeOver    = fam("owner_certificates_over_lifetime_cap", "Certificates per owner (owners.labels, counted as in qualys_certview_owner_certificates) whose validity exceeds the given number of days (the CA/Browser Forum's caps)."+cached)
	famShardCertificates    = fam("shard_certificates", "Certificates this shard of the exposition serves (the shard and shards parameters of the scrape), each with its per-certificate series; the health, the counts and the exporter's own metrics are in shard 0.")
	famShardInstances       = fam("shard_instances", "Server instances this shard of the exposition serves: those presenting its certificates.")
	famInstanceInfo         = fam("instance_info", "Server instance metadata: where a certificate is served, and with owners.labels the owner labels of its asset (empty when no tag matches); the value is always 1."+cached)
)

// CertificateInfoLabels and InstanceInfoLabels are the labels the info metrics can carry.
func CertificateInfoLabels() []string { return append([]string(nil), certInfoLabels...) }

// InstanceInfoLabels lists the labels of qualys_certview_instance_info.
func InstanceInfoLabels() []string { return append([]string(nil), instanceInfoLabels...) }

// columns resolves an allow-list against the known labels; the first keys labels (the
// join keys) always stay.
func columns(all, allow []string, keys int) ([]int, error) {
	if allow == nil {
		cols := make([]int, len(all))
		for i := range cols {
			cols[i] = i
		}
		return cols, nil
	}
	want := map[string]bool{}
	for _, l := range all[:keys] {
		want[l] = true
	}
	for _, l := range allow {
		if !slices.Contains(all, l) {
			return nil, fmt.Errorf("unknown label %q (known: %s)", l, strings.Join(all, ", "))
		}
		want[l] = true
	}
	var cols []int
	for i, l := range all {
		if want[l] {
			cols = append(cols, i)
		}
	}
	return cols, nil
}

// certificateColumn writes one label value of qualys_certview_certificate_info.
type certificateColumn struct {
	name  string
	write func(*lineWriter, *snapshot.Certificate)
}

// certificateColumns follow certInfoLabels.
var certificateColumns = []certificateColumn{
	{"certhash", func(l *lineWriter, c *snapshot.Certificate) { l.escaped(c.CertHash) }},
	{"common_name", func(l *lineWriter, c *snapshot.Certificate) { l.escaped(c.CommonName) }},
	{"organization", func(l *lineWriter, c *snapshot.Certificate) { l.escaped(c.Organization) }},
	{"issuer", func(l *lineWriter, c *snapshot.Certificate) { l.escaped(c.Issuer) }},
	{"root_issuer", func(l *lineWriter, c *snapshot.Certificate) { l.escaped(c.RootIssuer) }},
	{"issuer_category", func(l *lineWriter, c *snapshot.Certificate) { l.escaped(c.IssuerCategory) }},
	{"signature_algorithm", func(l *lineWriter, c *snapshot.Certificate) { l.escaped(c.SignatureAlgorithm) }},
	{"key_algorithm", func(l *lineWriter, c *snapshot.Certificate) { l.escaped(c.KeyAlgorithm) }},
	{"key_size", func(l *lineWriter, c *snapshot.Certificate) { l.int(int64(c.KeySize)) }},
	{"self_signed", func(l *lineWriter, c *snapshot.Certificate) { l.buf = strconv.AppendBool(l.buf, c.SelfSigned) }},
	{"type", func(l *lineWriter, c *snapshot.Certificate) { l.escaped(c.Type) }},
	{"serial_number", func(l *lineWriter, c *snapshot.Certificate) { l.escaped(c.SerialNumber) }},
}

// instanceColumn writes one label value of qualys_certview_instance_info.
type instanceColumn struct {
	name  string
	write func(*lineWriter, *snapshot.Instance)
}

// instanceColumns follow instanceInfoLabels.
var instanceColumns = []instanceColumn{
	{"instance_id", func(l *lineWriter, in *snapshot.Instance) { l.int(in.ID) }},
	{"certhash", func(l *lineWriter, in *snapshot.Instance) { l.escaped(in.CertHash) }},
	{"asset_id", func(l *lineWriter, in *snapshot.Instance) { l.int(in.AssetID) }},
	{"asset_name", func(l *lineWriter, in *snapshot.Instance) { l.escaped(in.AssetName) }},
	{"ip", func(l *lineWriter, in *snapshot.Instance) { l.escaped(in.IP) }},
	{"port", func(l *lineWriter, in *snapshot.Instance) { l.int(int64(in.Port)) }},
	{"protocol", func(l *lineWriter, in *snapshot.Instance) { l.escaped(in.Protocol) }},
	{"service", func(l *lineWriter, in *snapshot.Instance) { l.escaped(in.Service) }},
	{"fqdn", func(l *lineWriter, in *snapshot.Instance) { l.escaped(in.FQDN) }},
}

package certviewtest

import (
	"fmt"
)

// The renewal families (Inventory.RenewalFamilies) are the cases an expiry alert must
// decide: a certificate renewed and deployed everywhere, renewed but still served
// somewhere, not renewed; short-lived 47- and 90-day certificates on their renewal
// schedule and late; and an intermediate that expires while served certificates name it
// as their issuer. Each family block is twenty generated certificates, one slot each.
//
// Family blocks are the blocks of twenty generated certificates numbered 1, 11, 21, ...
// up to 91 (the certificates 20 to 39, 220 to 239, ..., 1,820 to 1,839), except the last
// full block: an inventory of 60 certificates or more holds at least one, the demo's
// 2,000 hold ten, and a larger inventory no more, so that at 100,000 certificates the
// share of certificates that need action stays that of a fleet (8 in 20 of a family
// block do). Their instances stay those of the generated inventory (instance j's home
// is certificate j modulo the certificates); which family certificate serves each is the
// slot's choice below. Churn never removes a family block's instances.

// served says which of a family slot's home instances serve it.
type served int

const (
	servedAll   served = iota // every home instance
	servedNone                // none: they serve the slot after it (its successor, or the leaf under the CA)
	servedFirst               // the first home instance only; the others serve the slot after it
)

// Alert names the alert a certificate of the inventory must raise under the shipped
// rules, "" for none.
type Alert string

// The expiry and issuer alerts of deploy/prometheus/alerts.yml.
const (
	NoAlert               Alert = ""
	AlertExpiringSoon     Alert = "CertViewCertificateExpiringSoon"
	AlertExpiringCritical Alert = "CertViewCertificateExpiringCritical"
	AlertExpired          Alert = "CertViewCertificateExpired"
	AlertIssuerSoon       Alert = "CertViewIssuerExpiringSoon"
	AlertIssuerCritical   Alert = "CertViewIssuerExpiringCritical"
)

// familySlot is one certificate of a family block.
type familySlot struct {
	family   string  // the family, the start of the common name
	lifetime int     // days from validFrom to validTo
	daysLeft float64 // days from Now to validTo
	serve    served
	// renews is the slot this one succeeds (same subject, later validity), -1 none.
	renews int
	// underCA says the slot is issued by the block's intermediate (slot familyCA).
	underCA bool
	ca      bool // the block's intermediate CA
	alert   Alert
	state   string // the alert's renewal_state
}

const (
	familyBlockEvery = 10 // one block of twenty in ten
	familyBlocksMax  = 10 // and no more than ten
	familyCA         = 18 // the slot of the block's intermediate
)

// familySlots are a family block's twenty certificates. The thresholds they test are
// those of deploy/prometheus/rules.yml: due with less than a third of the lifetime and
// at most 30 days left; critical in the last tenth and at most 7 days.
var familySlots = [20]familySlot{
	// Renewed two days ago and deployed everywhere: the old one, 10 days from expiry, is
	// served by no instance and raises nothing.
	{family: "renewed-deployed", lifetime: 397, daysLeft: 10, serve: servedNone, renews: -1},
	{family: "renewed-deployed", lifetime: 397, daysLeft: 395, renews: 0},
	// Renewed, and the successor deployed on all but one instance: the old one is due
	// (12 days), critical (2 days) or expired (3 days ago), renewed_not_deployed.
	{family: "renewed-partly-deployed", lifetime: 397, daysLeft: 12, serve: servedFirst, renews: -1,
		alert: AlertExpiringSoon, state: "renewed_not_deployed"},
	{family: "renewed-partly-deployed", lifetime: 397, daysLeft: 394, renews: 2},
	{family: "renewed-partly-deployed-critical", lifetime: 397, daysLeft: 2, serve: servedFirst, renews: -1,
		alert: AlertExpiringCritical, state: "renewed_not_deployed"},
	{family: "renewed-partly-deployed-critical", lifetime: 397, daysLeft: 390, renews: 4},
	{family: "renewed-partly-deployed-expired", lifetime: 397, daysLeft: -3, serve: servedFirst, renews: -1,
		alert: AlertExpired, state: "renewed_not_deployed"},
	{family: "renewed-partly-deployed-expired", lifetime: 397, daysLeft: 380, renews: 6},
	// Not renewed, 20 days from expiry.
	{family: "not-renewed", lifetime: 397, daysLeft: 20, renews: -1, alert: AlertExpiringSoon, state: "not_renewed"},
	// 47-day certificates: 20 days left is before its renewal (15.7 days); renewed on
	// schedule and deployed; late at 10 days; critical at 3 (its last tenth: 4.7 days).
	{family: "lifetime47-on-schedule", lifetime: 47, daysLeft: 20, renews: -1},
	{family: "lifetime47-renewed", lifetime: 47, daysLeft: 15, serve: servedNone, renews: -1},
	{family: "lifetime47-renewed", lifetime: 47, daysLeft: 46, renews: 10},
	{family: "lifetime47-late", lifetime: 47, daysLeft: 10, renews: -1, alert: AlertExpiringSoon, state: "not_renewed"},
	{family: "lifetime47-very-late", lifetime: 47, daysLeft: 3, renews: -1, alert: AlertExpiringCritical, state: "not_renewed"},
	// 90-day certificates: 40 days left (issued by the block's expiring intermediate);
	// renewed on schedule at 28 days left and deployed; late at 20 days.
	{family: "lifetime90-on-schedule", lifetime: 90, daysLeft: 40, renews: -1, underCA: true},
	{family: "lifetime90-renewed", lifetime: 90, daysLeft: 28, serve: servedNone, renews: -1},
	{family: "lifetime90-renewed", lifetime: 90, daysLeft: 88, renews: 15},
	{family: "lifetime90-late", lifetime: 90, daysLeft: 20, renews: -1, alert: AlertExpiringSoon, state: "not_renewed"},
	// An intermediate, five years long, 20 days from expiry, that issued two served
	// certificates (slots 14 and 19): it raises the issuer alert; they raise nothing.
	{family: "Example Issuing CA", lifetime: 1826, daysLeft: 20, serve: servedNone, renews: -1, ca: true,
		alert: AlertIssuerSoon, state: "not_renewed"},
	{family: "issued-by-expiring-ca", lifetime: 397, daysLeft: 200, renews: -1, underCA: true},
}

// familySlotOf returns generated certificate i's family slot, if it is in a family block.
func (inv *Inventory) familySlotOf(i int) (int, bool) {
	if !inv.RenewalFamilies || i < 0 || i >= inv.Certificates {
		return 0, false
	}
	block := i / 20
	if block%familyBlockEvery != 1 || block/familyBlockEvery >= familyBlocksMax || (block+2)*20 > inv.Certificates {
		return 0, false
	}
	return i % 20, true
}

// familyServer returns the family certificate that instance j of home certificate c
// (in a family block, slot k) serves.
func (inv *Inventory) familyServer(j, c, k int) int {
	switch familySlots[k].serve {
	case servedNone:
		return c + 1
	case servedFirst:
		if j >= inv.Certificates {
			return c + 1
		}
	}
	return c
}

// familyInstancesOf lists the generated instances of certificate i's family block that
// serve it (churn never removes them).
func (inv *Inventory) familyInstancesOf(i int) []int {
	var out []int
	start := i - i%20
	for h := start; h < start+20; h++ {
		for j := h; j < inv.Instances; j += inv.Certificates {
			if inv.CertificateIndex(j) == i {
				out = append(out, j)
			}
		}
	}
	return out
}

// familyInstance says whether generated instance j's home is in a family block.
func (inv *Inventory) familyInstance(j int) bool {
	if j >= inv.Instances || inv.Certificates == 0 {
		return false
	}
	_, ok := inv.familySlotOf(j % inv.Certificates)
	return ok
}

// familyName is the common name of family certificate i (slot k): a renewal keeps its
// predecessor's.
func familyName(i, k int) string {
	slot := familySlots[k]
	if slot.renews >= 0 {
		i, k = i-k+slot.renews, slot.renews
	}
	if slot.ca {
		return fmt.Sprintf("%s %d", slot.family, i/20)
	}
	return fmt.Sprintf("%s-%d.%s", slot.family, i/20, domains[i%len(domains)])
}

// applyFamily makes generated certificate i the family slot k's certificate: an
// ordinary key and signature, and its issuer. Its name (commonName) and its validity
// (the slot's days left and lifetime) are genCertificate's.
func (inv *Inventory) applyFamily(rec *CertificateRecord, i, k int) {
	slot := familySlots[k]
	cn := familyName(i, k)
	rec.KeySize, rec.SignatureAlgorithm, rec.PublicKeyAlgorithm = 2048, "SHA256withRSA", "RSA"
	rec.SelfSigned = false
	iss := issuers[0] // DigiCert
	if slot.lifetime <= 90 {
		iss = issuers[1] // Let's Encrypt R11
	}
	rec.Issuer = NameRecord{Organization: iss.org, OrganizationUnit: []string{}, Name: iss.name, Country: "US", CertHash: hash(inv.Seed, "issuer:"+iss.name, 0)}
	rec.RootIssuer = NameRecord{Organization: iss.org, OrganizationUnit: []string{}, Name: iss.root, Country: "US", CertHash: hash(inv.Seed, "root:"+iss.root, 0)}
	rec.IssuerCategory = iss.category
	exampleRoot := NameRecord{Organization: "Example Org", OrganizationUnit: []string{}, Name: "Example Root CA", Country: "US",
		CertHash: hash(inv.Seed, "root:Example Root CA", 0)}
	switch {
	case slot.ca:
		// Only "Leaf" is documented for type; an intermediate's is a guess.
		rec.Type = "Intermediate"
		rec.Subject.OrganizationUnit = []string{"PKI"}
		rec.SubjectAlternativeNames = nil
		rec.DN = fmt.Sprintf("CN=%s, OU=PKI, O=Example Org, C=US", cn)
		rec.Issuer, rec.RootIssuer, rec.IssuerCategory = exampleRoot, exampleRoot, "Example Org"
	case slot.underCA:
		ca := i - k + familyCA
		rec.Issuer = NameRecord{Organization: "Example Org", OrganizationUnit: []string{"PKI"}, Name: familyName(ca, familyCA), Country: "US",
			CertHash: hash(inv.Seed, "cert", ca)}
		rec.RootIssuer, rec.IssuerCategory = exampleRoot, "Example Org"
	}
}

// RenewalCase is a certificate of a family block, and what the shipped rules must
// raise for it while the inventory's Now holds.
type RenewalCase struct {
	CertHash     string
	CommonName   string
	Family       string
	Alert        Alert  // NoAlert: it must raise nothing
	RenewalState string // the alert's renewal_state label
	Successor    string // the certhash of its renewal; "" when not renewed
	Instances    int    // the instances that serve it
	ServedLeaves int    // for the intermediate: the served certificates under it
}

// RenewalCases lists the family blocks' certificates, with what each must raise. An
// inventory without RenewalFamilies has none.
func (inv *Inventory) RenewalCases() []RenewalCase {
	var out []RenewalCase
	for i := 0; i < inv.Certificates; i++ {
		k, ok := inv.familySlotOf(i)
		if !ok {
			continue
		}
		slot := familySlots[k]
		c := RenewalCase{CertHash: hash(inv.Seed, "cert", i), CommonName: familyName(i, k), Family: slot.family,
			Alert: slot.alert, RenewalState: slot.state}
		c.Instances = len(inv.familyInstancesOf(i))
		for s := range familySlots {
			if familySlots[s].renews == k {
				c.Successor = hash(inv.Seed, "cert", i-k+s)
			}
		}
		served := c.Instances > 0
		if slot.ca {
			c.Family = "expiring-intermediate"
			for s := range familySlots {
				if familySlots[s].underCA && len(inv.familyInstancesOf(i-k+s)) > 0 {
					c.ServedLeaves++
				}
			}
			served = c.ServedLeaves > 0
		}
		if !served {
			// Too few instances for the slot's home: nothing serves it.
			c.Alert, c.RenewalState = NoAlert, ""
		}
		out = append(out, c)
	}
	return out
}

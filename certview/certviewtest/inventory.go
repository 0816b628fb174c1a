package certviewtest

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The vendor's sample records, transcribed from the API documents (the documents'
// typos in JSON syntax fixed, values untouched).
//
//go:embed samples/*.json
var samplesFS embed.FS

// Sample returns a vendor sample page by file name (for example "certificates_v2.json").
func Sample(name string) []byte {
	b, err := samplesFS.ReadFile("samples/" + name)
	if err != nil {
		panic(fmt.Sprintf("certviewtest: no sample %q", name))
	}
	return b
}

func sampleRecords(name string) []json.RawMessage {
	if recs, ok := samplesByName.Load(name); ok {
		return recs.([]json.RawMessage)
	}
	var recs []json.RawMessage
	if err := json.Unmarshal(Sample(name), &recs); err != nil {
		panic(fmt.Sprintf("certviewtest: sample %s: %v", name, err))
	}
	samplesByName.Store(name, recs)
	return recs
}

// samplesByName holds each sample file's records once parsed: the records of every
// listing start with them. Callers must not modify them.
var samplesByName sync.Map

// NameRecord is a subject, issuer or root issuer as the API sends it.
type NameRecord struct {
	Organization     string   `json:"organization"`
	OrganizationUnit []string `json:"organizationUnit"`
	Name             string   `json:"name"`
	Country          string   `json:"country"`
	State            string   `json:"state"`
	CertHash         string   `json:"certhash,omitempty"`
	Locality         string   `json:"locality"`
}

// HostInstanceRecord is an instance inside a certificate's asset.
type HostInstanceRecord struct {
	ID       int64  `json:"id"`
	Port     int    `json:"port"`
	FQDN     string `json:"fqdn"`
	Protocol string `json:"protocol"`
	Service  string `json:"service"`
	Grade    string `json:"grade"`
}

// InterfaceRecord is an asset interface.
type InterfaceRecord struct {
	Hostname string `json:"hostname"`
	Address  string `json:"address"`
}

// AssetRecord is an asset inside a certificate record.
type AssetRecord struct {
	ID              int64                `json:"id"`
	UUID            string               `json:"uuid"`
	NetbiosName     string               `json:"netbiosName"`
	Name            string               `json:"name"`
	OperatingSystem string               `json:"operatingSystem"`
	HostInstances   []HostInstanceRecord `json:"hostInstances"`
	AssetInterfaces []InterfaceRecord    `json:"assetInterfaces,omitempty"`
	PrimaryIP       string               `json:"primaryIp"`
	Tags            []TagRecord          `json:"tags,omitempty"` // only with includes ASSET_TAGS
}

// TagRecord is an asset tag, in the v1 sample's shape.
type TagRecord struct {
	Name string `json:"name"`
	UUID string `json:"uuid"`
}

// CertificateRecord is one record of the certificates listing, as the API sends it.
type CertificateRecord struct {
	ID                      int64               `json:"id"`
	CertHash                string              `json:"certhash"`
	KeySize                 int                 `json:"keySize"`
	SerialNumber            string              `json:"serialNumber"`
	ValidToDate             string              `json:"validToDate"`
	ValidTo                 int64               `json:"validTo"`
	ValidFromDate           string              `json:"validFromDate"`
	ValidFrom               int64               `json:"validFrom"`
	SignatureAlgorithm      string              `json:"signatureAlgorithm"`
	PublicKeyAlgorithm      string              `json:"publicKeyAlgorithm,omitempty"`
	ExtendedValidation      bool                `json:"extendedValidation"`
	CreatedDate             string              `json:"createdDate"`
	DN                      string              `json:"dn"`
	Subject                 NameRecord          `json:"subject"`
	UpdateDate              string              `json:"updateDate"`
	LastFound               int64               `json:"lastFound"`
	Imported                bool                `json:"imported"`
	SelfSigned              bool                `json:"selfSigned"`
	Type                    string              `json:"type,omitempty"`
	Issuer                  NameRecord          `json:"issuer"`
	RootIssuer              NameRecord          `json:"rootissuer"`
	IssuerCategory          string              `json:"issuerCategory"`
	InstanceCount           int                 `json:"instanceCount"`
	AssetCount              int                 `json:"assetCount"`
	Sources                 []string            `json:"sources"`
	SubjectAlternativeNames map[string][]string `json:"subjectAlternativeNames,omitempty"`
	Assets                  []AssetRecord       `json:"assets"`
}

// GradeSummaryRecord is an instance's grade summary.
type GradeSummaryRecord struct {
	Grade                 string          `json:"grade"`
	GradeWithTrustIgnored string          `json:"gradeWithTrustIgnored"`
	CertificateScore      int             `json:"certificateScore"`
	ProtocolSupportScore  int             `json:"protocolSupportScore"`
	KeyExchangeScore      int             `json:"keyExchangeScore"`
	CipherStrengthScore   int             `json:"cipherStrengthScore"`
	Warnings              []string        `json:"warnings"`
	Errors                []string        `json:"errors"`
	Notices               []string        `json:"notices"`
	Infos                 []string        `json:"infos"`
	Highlights            []string        `json:"highlights"`
	ProtocolSupportInfo   map[string]bool `json:"protocolSupportInfo"`
}

// InstanceRecord is one record of the instances listing, as the API sends it.
type InstanceRecord struct {
	ID          int64  `json:"id"`
	Port        int    `json:"port"`
	ScannedDate string `json:"scannedDate"`
	Protocol    string `json:"protocol"`
	Service     string `json:"service"`
	Grade       string `json:"grade"`
	Asset       struct {
		ID        int64  `json:"id"`
		UUID      string `json:"uuid"`
		Name      string `json:"name"`
		PrimaryIP string `json:"primaryIp"`
	} `json:"asset"`
	Certificate struct {
		ID       int64  `json:"id"`
		CertHash string `json:"certhash"`
		Name     string `json:"name"`
		// LastFound is epoch milliseconds, or seconds on odd instance ids: the unit in
		// this listing is not documented, and the client must take both.
		LastFound int64 `json:"lastFound"`
	} `json:"certificate"`
	GradeSummary *GradeSummaryRecord `json:"gradeSummary"`
}

// Inventory is a deterministic synthetic CertView inventory: the same seed, counts and
// reference time give the same records. Records are made on demand, so an inventory of
// any size costs no memory.
//
// Generated certificate i has instances i, i+C, i+2C, ... (C certificates). The spread
// cycles every 20 records, so any inventory of 20 or more holds every case: expired and
// soon-to-expire certificates, self-signed ones, weak RSA keys, EC keys, SHA-1 and MD5
// signatures, and every grade including T, M and ungraded.
type Inventory struct {
	Seed         uint64
	Certificates int       // generated certificates
	Instances    int       // generated instances
	Now          time.Time // validity dates are set around it
	// VendorSamples puts the vendor's sample records ahead of the generated ones.
	VendorSamples bool
	// BigCertAssets gives generated certificate 0 this many extra assets in the v1
	// assets listing, to exercise its 10,000-record window.
	BigCertAssets int
	// RenewalFamilies turns one block of twenty generated certificates in ten, ten
	// blocks at most, into the renewal families (families.go): renewed and deployed,
	// renewed and partly deployed, not renewed, 47- and 90-day certificates on schedule
	// and late, and an expiring intermediate with served certificates under it.
	// RenewalCases lists them.
	RenewalFamilies bool
	// Oversized, when above 0, pads every generated record the way a hostile API could:
	// each string field the exporter keeps (the subject's DN, name and organization, the
	// issuers' names, the serial number, algorithms, type and category, the assets' and
	// host instances' names, IPs, fqdns, protocols and services) to this many bytes, unique
	// to the record; a SAN list of Oversized/10 names; and 40 tags an asset, each of up to
	// 512 bytes. Certhashes and ids are left as they are. For the bounds' tests and the
	// measurement of what the exporter keeps.
	Oversized int
	// HugeDN, when above 0, pads the DN of every generated certificate to this many bytes,
	// unique to the certificate, and nothing else.
	HugeDN int
	// OffScale gives every generated graded instance values outside their domain, as a
	// hostile or broken API could send them: grade "Z" (trust ignored too), which CertView
	// does not document, and a certificate score of -1 and a cipher strength score of
	// 1000. For the tests of what the exporter makes of them.
	OffScale bool

	churn *churnState // what Simulator.Churn changed; nil: nothing
}

// Generated ids start above the vendor samples' ids.
const (
	certIDBase     = 1_000_000
	instanceIDBase = 5_000_000
	assetIDBase    = 30_000_000
)

// CertificateCount is the number of certificate records served, samples included.
func (inv *Inventory) CertificateCount() int {
	certs, _, _ := inv.generated()
	return certs + len(inv.sampleCerts())
}

// InstanceCount is the number of instance records served, samples included.
// Instances removed by churn are counted: the listing skips them.
func (inv *Inventory) InstanceCount() int {
	_, instances, _ := inv.generated()
	return instances + len(inv.sampleInstances())
}

func (inv *Inventory) sampleCerts() []json.RawMessage {
	if !inv.VendorSamples {
		return nil
	}
	return sampleRecords("certificates_v2.json")
}

func (inv *Inventory) sampleInstances() []json.RawMessage {
	if !inv.VendorSamples {
		return nil
	}
	return sampleRecords("instances_v2.json")
}

// Certificate returns listing record k (samples first, then generated ones).
func (inv *Inventory) Certificate(k int) CertificateRecord {
	if s := inv.sampleCerts(); k < len(s) {
		var r CertificateRecord
		_ = json.Unmarshal(s[k], &r)
		return r
	}
	return inv.genCertificate(k - len(inv.sampleCerts()))
}

// Instance returns listing record k (samples first, then generated ones).
func (inv *Inventory) Instance(k int) InstanceRecord {
	if s := inv.sampleInstances(); k < len(s) {
		var r InstanceRecord
		_ = json.Unmarshal(s[k], &r)
		return r
	}
	return inv.genInstance(k - len(inv.sampleInstances()))
}

// rawCertificate returns the JSON of listing record k, with the assets' tags when asked
// for; samples are served verbatim.
func (inv *Inventory) rawCertificate(k int, pubKeyAlg, tags bool) []byte {
	if s := inv.sampleCerts(); k < len(s) {
		return s[k]
	}
	r := inv.genCertificate(k - len(inv.sampleCerts()))
	if inv.Oversized > 0 {
		inv.oversizeCertificate(&r)
	}
	if inv.HugeDN > 0 {
		r.DN = inv.pad(r.DN, strconv.FormatInt(r.ID, 10), inv.HugeDN)
	}
	if !pubKeyAlg {
		r.PublicKeyAlgorithm = ""
	}
	if !tags {
		for a := range r.Assets {
			r.Assets[a].Tags = nil
		}
	}
	b, _ := json.Marshal(r)
	return b
}

func (inv *Inventory) rawInstance(k int) []byte {
	if s := inv.sampleInstances(); k < len(s) {
		return s[k]
	}
	r := inv.genInstance(k - len(inv.sampleInstances()))
	if inv.Oversized > 0 {
		inv.oversizeInstance(&r)
	}
	if g := r.GradeSummary; inv.OffScale && g != nil {
		r.Grade, g.Grade, g.GradeWithTrustIgnored = "Z", "Z", "Z"
		g.CertificateScore, g.CipherStrengthScore = -1, 1000
	}
	b, _ := json.Marshal(r)
	return b
}

// pad makes s unique to the record (key) and Oversized bytes long (or n, when n > 0).
func (inv *Inventory) pad(s, key string, n int) string {
	if n <= 0 {
		n = inv.Oversized
	}
	s += "~" + key + "~"
	if len(s) < n {
		s += strings.Repeat("padding-", (n-len(s))/8+1)
	}
	return s[:n]
}

// oversizeCertificate pads a generated certificate (see Inventory.Oversized).
func (inv *Inventory) oversizeCertificate(r *CertificateRecord) {
	key := strconv.FormatInt(r.ID, 10)
	for _, p := range []*string{&r.DN, &r.Subject.Name, &r.Subject.Organization, &r.Issuer.Name, &r.RootIssuer.Name,
		&r.SerialNumber, &r.SignatureAlgorithm, &r.PublicKeyAlgorithm, &r.Type, &r.IssuerCategory} {
		*p = inv.pad(*p, key, 0)
	}
	var sans []string
	for k := range inv.Oversized / 10 {
		sans = append(sans, fmt.Sprintf("s%d-%s.example.com", k, key))
	}
	r.SubjectAlternativeNames = map[string][]string{"DNS Name": sans}
	for a := range r.Assets {
		asset := &r.Assets[a]
		asset.Name = inv.pad(asset.Name, key, 0)
		for h := range asset.HostInstances {
			asset.HostInstances[h].FQDN = inv.pad(asset.HostInstances[h].FQDN, key, 0)
		}
		asset.Tags = asset.Tags[:0]
		for t := range 40 {
			name := inv.pad(fmt.Sprintf("Tag%d", t), key, min(inv.Oversized, 512))
			asset.Tags = append(asset.Tags, TagRecord{Name: name, UUID: key})
		}
	}
}

// oversizeInstance pads a generated instance (see Inventory.Oversized).
func (inv *Inventory) oversizeInstance(r *InstanceRecord) {
	key := strconv.FormatInt(r.ID, 10)
	for _, p := range []*string{&r.Protocol, &r.Service, &r.Asset.Name, &r.Asset.PrimaryIP} {
		*p = inv.pad(*p, key, 0)
	}
}

func (inv *Inventory) rng(kind, i uint64) *rand.Rand {
	return rand.New(rand.NewPCG(inv.Seed, kind<<56|i))
}

func hash(seed uint64, kind string, i int) string {
	sum := sha256.Sum256([]byte(fmt.Sprintf("%d/%s/%d", seed, kind, i)))
	return hex.EncodeToString(sum[:])
}

func uuidOf(seed uint64, kind string, i int) string {
	h := hash(seed, kind, i)
	return h[0:8] + "-" + h[8:12] + "-4" + h[13:16] + "-8" + h[17:20] + "-" + h[20:32]
}

type issuerInfo struct {
	org, name, category, root string
	lifetimeDays              int
}

var issuers = []issuerInfo{
	{"DigiCert Inc", "DigiCert Global G2 TLS RSA SHA256 2020 CA1", "DigiCert Global G2 TLS RSA SHA256 2020 CA1", "DigiCert Global Root G2", 397},
	{"Let's Encrypt", "R11", "Let's Encrypt", "ISRG Root X1", 90},
	{"Let's Encrypt", "E6", "Let's Encrypt", "ISRG Root X2", 90},
	{"Sectigo Limited", "Sectigo RSA Domain Validation Secure Server CA", "Sectigo", "USERTrust RSA Certification Authority", 365},
	{"GlobalSign nv-sa", "GlobalSign GCC R3 DV TLS CA 2020", "GlobalSign", "GlobalSign Root CA - R3", 365},
	{"Acme Corp", "Acme Corp Issuing CA 2", "unapproved", "Acme Corp Root CA", 730},
}

var domains = []string{"example.com", "example.org", "corp.example.net", "shop.example", "api.example.io"}

func timeISO(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000+00:00") }

// CertificateIndex returns the generated certificate index that instance j serves. An
// instance added by churn serves the certificate added with it. The instances that would
// serve a stale certificate serve its neighbour three places on (or 17 back, at the end).
func (inv *Inventory) CertificateIndex(j int) int {
	if j >= inv.Instances {
		return inv.Certificates + j - inv.Instances
	}
	if inv.Certificates == 0 {
		return -1
	}
	c := j % inv.Certificates
	if k, ok := inv.familySlotOf(c); ok {
		return inv.familyServer(j, c, k)
	}
	if inv.Stale(c) {
		if c+3 < inv.Certificates {
			return c + 3
		}
		return c - 17
	}
	return c
}

// Stale says whether generated certificate i is stale: still in the inventory but
// presented by no server (instanceCount 0), as a certificate is once it was replaced
// everywhere. Three in four of the expired and soon-to-expire cases are stale, as at a
// real subscription, where most of those are certificates already replaced; the first
// twenty certificates hold each case served. In a renewal family block, the certificates
// that no instance serves (an old one renewed and deployed, the intermediate) are stale.
func (inv *Inventory) Stale(i int) bool {
	if k, ok := inv.familySlotOf(i); ok {
		return familySlots[k].serve == servedNone
	}
	return i >= 0 && i < inv.Certificates && i%20 < 3 && (i/20)%4 != 0
}

// instancesOf lists the generated instances that serve generated certificate i.
func (inv *Inventory) instancesOf(i int) []int {
	var out []int
	switch {
	case i >= inv.Certificates:
		out = []int{inv.Instances + i - inv.Certificates}
	case inv.Stale(i):
	default:
		if _, ok := inv.familySlotOf(i); ok {
			out = inv.familyInstancesOf(i)
			break
		}
		// Its own instances, and those of a stale certificate that moved to it.
		for _, from := range []int{i, i - 3, i + 17} {
			if from != i && !inv.Stale(from) {
				continue
			}
			for j := from; j < inv.Instances; j += inv.Certificates {
				if inv.CertificateIndex(j) == i {
					out = append(out, j)
				}
			}
		}
		slices.Sort(out)
	}
	return slices.DeleteFunc(out, inv.Removed)
}

// Owner tags of the generated assets.
var (
	teamTags = []string{"Team-Payments", "Team-Identity", "Team-Platform", "Team-Search", ""}
	envTags  = []string{"Production", "Staging", ""}
)

// AssetTags returns the tag names of generated instance j's asset, in the API's order.
// Ownership follows the instance's home certificate (j modulo the certificates; an
// instance added by churn, its own): the team from the home's block of twenty (Payments,
// Identity, Platform, Search, then none), so a served certificate that expires is owned
// by each team in turn and by none; the environment from the home's case (Production,
// Staging, none), and for the second and later instances of a certificate that does not
// expire soon, shifted by one each, so that such a certificate has several owners. Tags
// no owner rule reads come first ("Internet Facing Assets", "Cloud Agent"), and every
// seventh asset has a second team tag, Team-Legacy, after its first.
func (inv *Inventory) AssetTags(j int) []string {
	if inv.Certificates == 0 {
		return nil
	}
	home, round := j%inv.Certificates, j/inv.Certificates
	if j >= inv.Instances {
		home, round = inv.CertificateIndex(j), 0
	}
	var tags []string
	if j%2 == 0 {
		tags = append(tags, "Internet Facing Assets")
	}
	if j%3 == 0 {
		tags = append(tags, "Cloud Agent")
	}
	env := home % 20 % 3
	if home%20 >= 3 {
		env = (env + round) % 3
	}
	if e := envTags[env]; e != "" {
		tags = append(tags, e)
	}
	if t := teamTags[home/20%len(teamTags)]; t != "" {
		tags = append(tags, t)
		if j%7 == 0 {
			tags = append(tags, "Team-Legacy")
		}
	}
	return tags
}

func (inv *Inventory) assetTagRecords(j int) []TagRecord {
	var out []TagRecord
	for _, name := range inv.AssetTags(j) {
		out = append(out, TagRecord{Name: name, UUID: uuidOf(inv.Seed, "tag:"+name, 0)})
	}
	return out
}

// commonName is generated certificate i's subject name.
func (inv *Inventory) commonName(i int) string {
	if k, ok := inv.familySlotOf(i); ok {
		return familyName(i, k)
	}
	return fmt.Sprintf("host-%d.%s", i, domains[i%len(domains)])
}

// genCertificate makes generated certificate i.
func (inv *Inventory) genCertificate(i int) CertificateRecord {
	r := inv.rng(1, uint64(i))
	iss := issuers[r.IntN(len(issuers))]
	cn := inv.commonName(i)
	rec := CertificateRecord{
		ID:                 inv.certID(i),
		CertHash:           hash(inv.Seed, "cert", i),
		SerialNumber:       hash(inv.Seed, "serial", i)[:32],
		KeySize:            2048,
		SignatureAlgorithm: "SHA256withRSA",
		PublicKeyAlgorithm: "RSA",
		Type:               "Leaf",
		DN:                 fmt.Sprintf("CN=%s, O=Example Org, L=San Jose, ST=California, C=US", cn),
		Subject:            NameRecord{Organization: "Example Org", OrganizationUnit: []string{}, Name: cn, Country: "US", State: "California", Locality: "San Jose"},
		Issuer:             NameRecord{Organization: iss.org, OrganizationUnit: []string{}, Name: iss.name, Country: "US", CertHash: hash(inv.Seed, "issuer:"+iss.name, 0)},
		RootIssuer:         NameRecord{Organization: iss.org, OrganizationUnit: []string{}, Name: iss.root, Country: "US", CertHash: hash(inv.Seed, "root:"+iss.root, 0)},
		IssuerCategory:     iss.category,
		Sources:            [][]string{{"VM"}, {"VM", "QAGENT"}, {"QAGENT"}, {"WAS"}}[r.IntN(4)],
		SubjectAlternativeNames: map[string][]string{
			"DNS Name":   {cn, "www." + cn},
			"IP Address": nil,
		},
	}
	// Days from Now to the end of validity; case 0 is expired, 1 and 2 expire soon.
	var days float64
	switch i % 20 {
	case 0:
		days = -1 - r.Float64()*60
	case 1:
		days = 0.5 + r.Float64()*6
	case 2:
		days = 8 + r.Float64()*21
	default:
		days = 31 + r.Float64()*float64(iss.lifetimeDays)
	}
	switch i % 20 {
	case 3: // self-signed
		rec.SelfSigned = true
		rec.Issuer = NameRecord{Organization: "Example Org", OrganizationUnit: []string{}, Name: cn, Country: "US", CertHash: rec.CertHash}
		rec.RootIssuer = rec.Issuer
		rec.IssuerCategory = "self-signed"
		iss.lifetimeDays = 3650
	case 4: // weak RSA key
		rec.KeySize = 1024
	case 5: // SHA-1
		rec.SignatureAlgorithm = "SHA1withRSA"
	case 6, 7: // EC
		rec.KeySize, rec.SignatureAlgorithm, rec.PublicKeyAlgorithm = 256, "SHA256withECDSA", "EC"
	case 8: // EC, strong but large
		rec.KeySize, rec.SignatureAlgorithm, rec.PublicKeyAlgorithm = 384, "SHA384withECDSA", "EC"
	case 9:
		rec.KeySize = 4096
	case 10: // MD5 and a weak key
		rec.KeySize, rec.SignatureAlgorithm = 512, "MD5withRSA"
	case 11: // a weak EC key
		rec.KeySize, rec.SignatureAlgorithm, rec.PublicKeyAlgorithm = 192, "SHA256withECDSA", "EC"
	}
	if k, ok := inv.familySlotOf(i); ok {
		inv.applyFamily(&rec, i, k)
		days, iss.lifetimeDays = familySlots[k].daysLeft, familySlots[k].lifetime
	}
	validTo := inv.Now.Add(time.Duration(days * 24 * float64(time.Hour))).Truncate(time.Second)
	validFrom := validTo.Add(-time.Duration(iss.lifetimeDays) * 24 * time.Hour)
	rec.ValidTo, rec.ValidToDate = validTo.UnixMilli(), timeISO(validTo)
	rec.ValidFrom, rec.ValidFromDate = validFrom.UnixMilli(), timeISO(validFrom)
	rec.CreatedDate = timeISO(validFrom.Add(24 * time.Hour))
	rec.UpdateDate = timeISO(inv.Now.Add(-time.Duration(r.IntN(72)) * time.Hour))
	rec.LastFound = inv.Now.Add(-time.Duration(r.IntN(7*24)) * time.Hour).UnixMilli()
	rec.ExtendedValidation = i%50 == 12
	for _, j := range inv.instancesOf(i) {
		in := inv.genInstance(j)
		rec.Assets = append(rec.Assets, AssetRecord{
			ID: in.Asset.ID, UUID: in.Asset.UUID, Name: in.Asset.Name, OperatingSystem: "Linux",
			PrimaryIP: in.Asset.PrimaryIP, Tags: inv.assetTagRecords(j),
			HostInstances: []HostInstanceRecord{{
				ID: in.ID, Port: in.Port, FQDN: inv.InstanceFQDN(j), Protocol: in.Protocol, Service: in.Service, Grade: in.Grade,
			}},
		})
	}
	rec.InstanceCount, rec.AssetCount = len(rec.Assets), len(rec.Assets)
	if rec.Assets == nil {
		rec.Assets = []AssetRecord{}
	}
	return rec
}

var ports = []struct {
	port    int
	service string
}{{443, "http"}, {443, "http"}, {443, "http"}, {8443, "http"}, {636, "ldap"}, {993, "imap"}, {465, "smtp"}, {3389, "ms-wbt-server"}}

// gradeProfile holds the grade and four scores of a grading case.
type gradeProfile struct {
	grade, trustIgnored             string
	cert, protocol, keyExch, cipher int
	protocols                       map[string]bool
	warnings, errors                []string
}

var (
	modern  = map[string]bool{"SSLv2": false, "SSLv3": false, "TLSv1": false, "TLSv1.1": false, "TLSv1.2": true, "TLSv1.3": true}
	legacy  = map[string]bool{"SSLv2": false, "SSLv3": false, "TLSv1": true, "TLSv1.1": true, "TLSv1.2": true, "TLSv1.3": false}
	ancient = map[string]bool{"SSLv2": false, "SSLv3": true, "TLSv1": true, "TLSv1.1": true, "TLSv1.2": false, "TLSv1.3": false}
)

// gradeCases cycles with the instance index; "" is ungraded (no grade summary).
var gradeCases = []gradeProfile{
	{"F", "F", 100, 20, 30, 20, ancient, nil, []string{"SSLv3 supported. Grade capped to F."}},
	{"T", "A", 0, 100, 90, 90, modern, nil, []string{"Certificate is not trusted."}},
	{"M", "A", 100, 100, 90, 90, modern, []string{"Certificate name does not match the host."}, nil},
	{"", "", 0, 0, 0, 0, nil, nil, nil},
	{"C", "C", 100, 90, 65, 65, legacy, []string{"TLS 1.0 Supported. Grade capped to B."}, []string{"The server supports RC4. Grade capped to B."}},
	{"D", "D", 100, 60, 40, 40, legacy, nil, []string{"Weak key exchange."}},
	{"E", "E", 100, 40, 30, 30, legacy, nil, []string{"Weak ciphers."}},
	{"B", "B", 100, 90, 80, 90, legacy, []string{"TLS 1.1 Supported. Grade capped to B."}, nil},
	{"A-", "A-", 100, 100, 80, 90, modern, nil, nil},
	{"A+", "A+", 100, 100, 100, 100, modern, nil, nil},
}

var commonGrades = []gradeProfile{
	{"A", "A", 100, 100, 90, 90, modern, nil, nil},
	{"A+", "A+", 100, 100, 100, 100, modern, nil, nil},
	{"A", "A", 100, 100, 90, 90, modern, nil, nil},
	{"B", "B", 100, 90, 80, 90, legacy, []string{"TLS 1.0 Supported. Grade capped to B."}, nil},
}

// portAndScan draws an instance's port and first scan time from its generator.
func (inv *Inventory) portAndScan(r *rand.Rand) (struct {
	port    int
	service string
}, time.Time) {
	p := ports[r.IntN(len(ports))]
	return p, inv.Now.Add(-time.Duration(r.IntN(14*24)) * time.Hour)
}

// scannedAt is generated instance j's scannedDate, without making the whole record.
func (inv *Inventory) scannedAt(j int) time.Time {
	if rs, ok := inv.rescanOf(j); ok {
		return rs.at
	}
	_, t := inv.portAndScan(inv.rng(2, uint64(j)))
	return t
}

// InstanceFQDN is the fqdn of generated instance j. Like the API, the simulator lists it
// only in the certificates listing (assets[].hostInstances[].fqdn), never in the
// instances listing.
func (inv *Inventory) InstanceFQDN(j int) string {
	return fmt.Sprintf("www%d.%s", j, domains[j%len(domains)])
}

// genInstance makes generated instance j, as its last rescan left it.
func (inv *Inventory) genInstance(j int) InstanceRecord {
	rs, ok := inv.rescanOf(j)
	return inv.makeInstance(j, rs, ok)
}

// makeInstance makes generated instance j, rescanned by rs when rescanned is true.
func (inv *Inventory) makeInstance(j int, rs rescan, rescanned bool) InstanceRecord {
	r := inv.rng(2, uint64(j))
	var rec InstanceRecord
	rec.ID = instanceIDBase + int64(j)
	p, scanned := inv.portAndScan(r)
	rec.Port, rec.Service, rec.Protocol = p.port, p.service, "tcp"
	rec.ScannedDate = timeISO(scanned)
	rec.Asset.ID = assetIDBase + int64(j)
	rec.Asset.UUID = uuidOf(inv.Seed, "asset", j)
	rec.Asset.Name = fmt.Sprintf("srv-%d.%s", j, domains[j%len(domains)])
	rec.Asset.PrimaryIP = fmt.Sprintf("10.%d.%d.%d", (j>>16)&255, (j>>8)&255, j&255)
	if ci := inv.CertificateIndex(j); ci >= 0 {
		rec.Certificate.ID = inv.certID(ci)
		rec.Certificate.CertHash = hash(inv.Seed, "cert", ci)
		rec.Certificate.Name = inv.commonName(ci)
		lastFound := inv.Now.Add(-time.Duration(r.IntN(7*24)) * time.Hour)
		if j%2 == 1 {
			rec.Certificate.LastFound = lastFound.Unix()
		} else {
			rec.Certificate.LastFound = lastFound.UnixMilli()
		}
	}
	g := commonGrades[r.IntN(len(commonGrades))]
	if k := j % 20; k < len(gradeCases) {
		g = gradeCases[k]
	}
	if rescanned {
		g = gradeCases[rs.profile]
		rec.ScannedDate = timeISO(rs.at)
	}
	rec.Grade = g.grade
	if g.grade != "" {
		rec.GradeSummary = &GradeSummaryRecord{
			Grade: g.grade, GradeWithTrustIgnored: g.trustIgnored,
			CertificateScore: g.cert, ProtocolSupportScore: g.protocol, KeyExchangeScore: g.keyExch, CipherStrengthScore: g.cipher,
			Warnings: nonNil(g.warnings), Errors: nonNil(g.errors), Notices: []string{}, Infos: []string{}, Highlights: []string{},
			ProtocolSupportInfo: g.protocols,
		}
	}
	return rec
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

package certview

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"strconv"
	"strings"
	"time"
)

// Timestamp decodes the API's times: epoch numbers in seconds or milliseconds, numeric
// strings, ISO 8601 strings, or null (the zero time).
type Timestamp struct{ time.Time }

// epochMillisThreshold: a number at or above this is milliseconds. 1e11 seconds is the
// year 5138; 1e11 milliseconds is 1973.
const epochMillisThreshold = 1e11

var isoLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02T15:04:05.000-0700",
	"2006-01-02T15:04:05-0700",
	"2006-01-02T15:04:05Z",
	"2006-01-02 15:04:05",
	"2006-01-02",
}

// MaxEpochTime and MinEpochTime are where epoch values saturate: int64-max and
// int64-min milliseconds, about 292 million years either side of 1970. A time.Time holds
// them, though UnixNano does not (it overflows past 2262 and before 1678): convert with
// UnixSeconds.
var (
	MaxEpochTime = time.UnixMilli(math.MaxInt64).UTC()
	MinEpochTime = time.UnixMilli(math.MinInt64).UTC()
)

// EpochTime converts an epoch number of unknown unit. Values beyond int64 milliseconds,
// infinities included, saturate at MaxEpochTime or MinEpochTime; NaN is the zero time.
func EpochTime(v float64) time.Time {
	switch {
	case math.IsNaN(v):
		return time.Time{}
	case v >= math.MaxInt64: // float64(MaxInt64) is 2^63, itself out of range
		return MaxEpochTime
	case v <= math.MinInt64:
		return MinEpochTime
	case v >= epochMillisThreshold || v <= -epochMillisThreshold:
		return time.UnixMilli(int64(v)).UTC()
	}
	sec, frac := math.Modf(v)
	return time.Unix(int64(sec), int64(frac*1e9)).UTC()
}

// UnixSeconds is t as float Unix seconds, without the overflow of UnixNano: exact to the
// nanosecond where a float64 is, and finite for every time EpochTime returns.
func UnixSeconds(t time.Time) float64 {
	return float64(t.Unix()) + float64(t.Nanosecond())/1e9
}

// parseEpoch reads an epoch number. A number past float64's range saturates (it is
// ±Inf, which EpochTime saturates); NaN and infinities written out are not epochs.
func parseEpoch(s string) (float64, bool) {
	v, err := strconv.ParseFloat(s, 64)
	switch {
	case err == nil:
		return v, !math.IsNaN(v) && !math.IsInf(v, 0)
	case errors.Is(err, strconv.ErrRange):
		return v, true
	}
	return 0, false
}

// UnmarshalJSON implements json.Unmarshaler.
func (t *Timestamp) UnmarshalJSON(b []byte) error {
	if len(b) == 0 || string(b) == "null" {
		t.Time = time.Time{}
		return nil
	}
	if b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		return t.parseString(s)
	}
	v, ok := parseEpoch(string(b))
	if !ok {
		return &fieldError{fmt.Sprintf("time %.40s: not a number or string", b)}
	}
	t.Time = EpochTime(v)
	return nil
}

func (t *Timestamp) parseString(s string) error {
	s = strings.TrimSpace(s)
	if s == "" {
		t.Time = time.Time{}
		return nil
	}
	if v, ok := parseEpoch(s); ok {
		t.Time = EpochTime(v)
		return nil
	}
	for _, layout := range isoLayouts {
		if tt, err := time.Parse(layout, s); err == nil {
			t.Time = tt.UTC()
			return nil
		}
	}
	return &fieldError{fmt.Sprintf("time %.40q: not epoch or ISO 8601", s)}
}

// MarshalJSON writes epoch milliseconds, or null for the zero time.
func (t Timestamp) MarshalJSON() ([]byte, error) {
	if t.IsZero() {
		return []byte("null"), nil
	}
	return strconv.AppendInt(nil, t.UnixMilli(), 10), nil
}

// OptFloat is a number that may be null or missing (Valid false).
type OptFloat struct {
	Value float64
	Valid bool
}

// UnmarshalJSON implements json.Unmarshaler; numeric strings are accepted.
func (f *OptFloat) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*f = OptFloat{}
		return nil
	}
	s := string(bytes.Trim(b, `"`))
	if s == "" {
		*f = OptFloat{}
		return nil
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return &fieldError{fmt.Sprintf("number %.40s: not a number", b)}
	}
	if math.IsNaN(v) || math.IsInf(v, 0) {
		// ParseFloat takes "NaN" and "Inf": no score is either. A NaN score would make
		// every sum or average over the fleet's scores NaN, and MarshalJSON would write
		// invalid JSON.
		return &fieldError{fmt.Sprintf("number %.40s: not a finite number", b)}
	}
	*f = OptFloat{Value: v, Valid: true}
	return nil
}

// MarshalJSON writes the number, or null when not valid.
func (f OptFloat) MarshalJSON() ([]byte, error) {
	if !f.Valid {
		return []byte("null"), nil
	}
	return strconv.AppendFloat(nil, f.Value, 'g', -1, 64), nil
}

// Count decodes a JSON array of anything (or null) as the number of its elements.
type Count int

// UnmarshalJSON implements json.Unmarshaler.
func (c *Count) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*c = 0
		return nil
	}
	var items []json.RawMessage
	if err := json.Unmarshal(b, &items); err != nil {
		return &fieldError{fmt.Sprintf("list %.40s: not an array", b)}
	}
	*c = Count(len(items))
	return nil
}

// StringList decodes an array of strings, a single string, or null.
type StringList []string

// UnmarshalJSON implements json.Unmarshaler.
func (l *StringList) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*l = nil
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*l = StringList{s}
		return nil
	}
	var items []string
	if err := json.Unmarshal(b, &items); err != nil {
		return &fieldError{fmt.Sprintf("string list %.40s: %v", b, err)}
	}
	*l = items
	return nil
}

// Protocol versions reported in an instance's protocol support map.
type Protocol uint8

// Protocols known to the grading, oldest first.
const (
	SSLv2 Protocol = iota
	SSLv3
	TLSv1
	TLSv11
	TLSv12
	TLSv13
	numProtocols
)

var protocolNames = [numProtocols]string{"SSLv2", "SSLv3", "TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"}

// String returns the vendor's name for the protocol.
func (p Protocol) String() string {
	if p < numProtocols {
		return protocolNames[p]
	}
	return "unknown"
}

// AllProtocols lists the known protocols, oldest first.
func AllProtocols() []Protocol {
	out := make([]Protocol, numProtocols)
	for i := range out {
		out[i] = Protocol(i)
	}
	return out
}

// ProtocolSupport is the decoded protocolSupportInfo map, kept as two bit sets so that
// hundreds of thousands of instances stay small: which protocols were reported, and
// which of those are supported.
type ProtocolSupport struct {
	Known     uint8
	Supported uint8
}

// Reported says whether the map held the protocol.
func (p ProtocolSupport) Reported(proto Protocol) bool { return p.Known&(1<<proto) != 0 }

// Supports says whether the protocol was reported as supported.
func (p ProtocolSupport) Supports(proto Protocol) bool { return p.Supported&(1<<proto) != 0 }

// UnmarshalJSON implements json.Unmarshaler. Unknown protocol names are ignored.
func (p *ProtocolSupport) UnmarshalJSON(b []byte) error {
	*p = ProtocolSupport{}
	if string(b) == "null" {
		return nil
	}
	var m map[string]*bool
	if err := json.Unmarshal(b, &m); err != nil {
		return &fieldError{fmt.Sprintf("protocol support %.40s: %v", b, err)}
	}
	for name, v := range m {
		for i, n := range protocolNames {
			if strings.EqualFold(name, n) {
				p.Known |= 1 << i
				if v != nil && *v {
					p.Supported |= 1 << i
				}
			}
		}
	}
	return nil
}

// MarshalJSON writes the map back in the vendor's form.
func (p ProtocolSupport) MarshalJSON() ([]byte, error) {
	m := map[string]bool{}
	for i, n := range protocolNames {
		if p.Known&(1<<i) != 0 {
			m[n] = p.Supported&(1<<i) != 0
		}
	}
	return json.Marshal(m)
}

// fieldError marks a value of the wrong shape inside one record: the record is skipped,
// the page goes on.
type fieldError struct{ msg string }

func (e *fieldError) Error() string { return e.msg }

// Name is a certificate subject, issuer or root issuer.
type Name struct {
	Name             string     `json:"name" certview:"strict"`
	Organization     string     `json:"organization" certview:"strict"`
	OrganizationUnit StringList `json:"organizationUnit"`
	Locality         string     `json:"locality"`
	State            string     `json:"state"`
	Country          string     `json:"country"`
	CertHash         string     `json:"certhash"`
}

// HostInstance is a server instance as listed inside a certificate's asset.
type HostInstance struct {
	ID           int64      `json:"id" certview:"strict"`
	Port         int        `json:"port" certview:"strict"`
	FQDN         string     `json:"fqdn" certview:"strict"`
	Protocol     string     `json:"protocol"`
	Service      string     `json:"service"`
	Grade        string     `json:"grade"`
	SSLProtocols StringList `json:"sslProtocols"`
	VulnCount    int        `json:"vulnCount"`
}

// Interface is a network interface of an asset.
type Interface struct {
	Hostname string `json:"hostname"`
	Address  string `json:"address"`
}

// Tag is an asset tag. CertView's v1 sample writes {"name", "uuid"}; other Qualys APIs
// write {"tagId", "name"}. Both decode, by name.
type Tag struct {
	Name string `json:"name"`
	UUID string `json:"uuid"`
	ID   int64  `json:"tagId"`
}

// Tags decodes an asset's tags tolerantly: the v2 samples do not show the field, so any
// shape other than the documented one must not cost the certificate. It accepts an array
// of tag objects (by name, with either id field) or of plain names, and null. Elements
// that are neither, and a value that is not an array, decode as no tags.
type Tags []Tag

// UnmarshalJSON implements json.Unmarshaler.
func (t *Tags) UnmarshalJSON(b []byte) error {
	*t = nil
	var items []json.RawMessage
	if json.Unmarshal(b, &items) != nil {
		return nil
	}
	for _, raw := range items {
		var obj struct {
			Name string          `json:"name"`
			UUID json.RawMessage `json:"uuid"`
			ID   json.RawMessage `json:"tagId"`
		}
		var name string
		switch {
		case json.Unmarshal(raw, &name) == nil:
			*t = append(*t, Tag{Name: name})
		case json.Unmarshal(raw, &obj) == nil && obj.Name != "":
			tag := Tag{Name: obj.Name}
			_ = json.Unmarshal(obj.UUID, &tag.UUID)
			_ = json.Unmarshal(obj.ID, &tag.ID)
			*t = append(*t, tag)
		}
	}
	return nil
}

// Names lists the tags' names, in the API's order.
func (t Tags) Names() []string {
	out := make([]string, 0, len(t))
	for _, tag := range t {
		out = append(out, tag.Name)
	}
	return out
}

// Asset is a host serving a certificate. The v2 certificate listing gives ID and UUID;
// the v1 assets listing gives AssetID (a UUID), Created, Updated and CertificateCount.
type Asset struct {
	ID               int64          `json:"id" certview:"strict"`
	UUID             string         `json:"uuid" certview:"strict"`
	AssetID          string         `json:"assetId" certview:"strict"`
	NetbiosName      string         `json:"netbiosName"`
	Name             string         `json:"name"`
	OperatingSystem  string         `json:"operatingSystem"`
	PrimaryIP        string         `json:"primaryIp"`
	WASURL           string         `json:"wasUrl"`
	HostInstances    []HostInstance `json:"hostInstances"`
	Interfaces       []Interface    `json:"assetInterfaces"`
	Tags             Tags           `json:"tags"`
	Created          Timestamp      `json:"created"`
	Updated          Timestamp      `json:"updated"`
	CertificateCount int            `json:"certificateCount"`
}

// Certificate is one record of the certificates listing.
//
// Fields tagged certview:"strict" here and in the types below are those the exporter
// uses: a value of an unexpected type in one is coerced when that loses nothing (see
// coerce.go), and otherwise refuses the record (or, inside a list that is not strict,
// such as assets, the element). Other fields are decoded leniently: a value that cannot
// be coerced is dropped and counted (ListStats.Coerced).
type Certificate struct {
	ID                      int64               `json:"id" certview:"strict"`
	CertHash                string              `json:"certhash" certview:"strict"`
	KeySize                 int                 `json:"keySize" certview:"strict"`
	SerialNumber            string              `json:"serialNumber" certview:"strict"`
	ValidFrom               Timestamp           `json:"validFrom" certview:"strict"`
	ValidFromDate           Timestamp           `json:"validFromDate" certview:"strict"`
	ValidTo                 Timestamp           `json:"validTo" certview:"strict"`
	ValidToDate             Timestamp           `json:"validToDate" certview:"strict"`
	SignatureAlgorithm      string              `json:"signatureAlgorithm" certview:"strict"`
	PublicKeyAlgorithm      string              `json:"publicKeyAlgorithm" certview:"strict"` // v2.1 and later
	ExtendedValidation      bool                `json:"extendedValidation"`
	Created                 Timestamp           `json:"createdDate"`
	Updated                 Timestamp           `json:"updateDate"`
	DN                      string              `json:"dn"`
	Subject                 Name                `json:"subject" certview:"strict"`
	Issuer                  Name                `json:"issuer" certview:"strict"`
	RootIssuer              Name                `json:"rootissuer" certview:"strict"`
	IssuerCategory          string              `json:"issuerCategory" certview:"strict"`
	LastFound               Timestamp           `json:"lastFound"`
	Imported                bool                `json:"imported"`
	SelfSigned              bool                `json:"selfSigned" certview:"strict"`
	Type                    string              `json:"type" certview:"strict"`
	InstanceCount           int                 `json:"instanceCount" certview:"strict"`
	AssetCount              int                 `json:"assetCount"`
	Sources                 StringList          `json:"sources"`
	SubjectAlternativeNames map[string][]string `json:"subjectAlternativeNames"`
	Assets                  []Asset             `json:"assets"`
}

// HostInstanceFQDNs adds to m, by instance id, the fqdn of each of the certificate's
// host instances (assets[].hostInstances[]) that has both. The instances listing does
// not carry fqdn; this is where it can be found.
func (c *Certificate) HostInstanceFQDNs(m map[int64]string) {
	for i := range c.Assets {
		for _, hi := range c.Assets[i].HostInstances {
			if hi.ID != 0 && hi.FQDN != "" {
				m[hi.ID] = hi.FQDN
			}
		}
	}
}

// normalize applies the fallbacks and rejects records that cannot be keyed.
func (c *Certificate) normalize() error {
	if c.CertHash == "" {
		return &fieldError{"certhash is missing"}
	}
	if c.ValidTo.IsZero() {
		c.ValidTo = c.ValidToDate
	}
	if c.ValidFrom.IsZero() {
		c.ValidFrom = c.ValidFromDate
	}
	return nil
}

func (c *Certificate) key() uint64 {
	if c.ID != 0 {
		return uint64(c.ID)
	}
	return stringKey(c.CertHash)
}

// stringKey maps a string id into the key space above the numeric ids. A 64-bit FNV
// hash makes a collision among a million ids about a one in 10^7 chance.
func stringKey(s string) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(s))
	return h.Sum64() | 1<<63
}

// InstanceAsset is the asset summary inside an instance record.
type InstanceAsset struct {
	ID        int64  `json:"id" certview:"strict"`
	UUID      string `json:"uuid"`
	Name      string `json:"name" certview:"strict"`
	PrimaryIP string `json:"primaryIp" certview:"strict"`
}

// InstanceCertificate is the certificate summary inside an instance record.
type InstanceCertificate struct {
	ID        int64     `json:"id" certview:"strict"`
	CertHash  string    `json:"certhash" certview:"strict"`
	Name      string    `json:"name"`
	LastFound Timestamp `json:"lastFound"`
}

// GradeSummary is an instance's SSL Labs style grading.
type GradeSummary struct {
	Grade                    string          `json:"grade" certview:"strict"`
	GradeWithTrustIgnored    string          `json:"gradeWithTrustIgnored" certview:"strict"`
	CertificateScore         OptFloat        `json:"certificateScore" certview:"strict"`
	ProtocolSupportScore     OptFloat        `json:"protocolSupportScore" certview:"strict"`
	KeyExchangeScore         OptFloat        `json:"keyExchangeScore" certview:"strict"`
	CipherStrengthScore      OptFloat        `json:"cipherStrengthScore" certview:"strict"`
	ProtocolSupportWeightage OptFloat        `json:"protocolSupportWeightage"`
	KeyExchangeWeightage     OptFloat        `json:"keyExchangeWeightage"`
	CipherStrengthWeightage  OptFloat        `json:"cipherStrengthWeightage"`
	Warnings                 Count           `json:"warnings"`
	Errors                   Count           `json:"errors"`
	Notices                  Count           `json:"notices"`
	Infos                    Count           `json:"infos"`
	Highlights               Count           `json:"highlights"`
	ProtocolSupport          ProtocolSupport `json:"protocolSupportInfo" certview:"strict"`
}

// Instance is one record of the instances listing: a server port presenting a certificate.
type Instance struct {
	ID           int64               `json:"id" certview:"strict"`
	Port         int                 `json:"port" certview:"strict"`
	FQDN         string              `json:"fqdn" certview:"strict"`
	Protocol     string              `json:"protocol" certview:"strict"`
	Service      string              `json:"service" certview:"strict"`
	Grade        string              `json:"grade" certview:"strict"`
	ScannedDate  Timestamp           `json:"scannedDate" certview:"strict"`
	Asset        InstanceAsset       `json:"asset"`
	Certificate  InstanceCertificate `json:"certificate" certview:"strict"`
	GradeSummary GradeSummary        `json:"gradeSummary" certview:"strict"`
}

func (in *Instance) normalize() error {
	if in.ID == 0 {
		return &fieldError{"id is missing"}
	}
	if in.Grade == "" {
		in.Grade = in.GradeSummary.Grade
	}
	return nil
}

func (in *Instance) key() uint64 { return uint64(in.ID) }

// EffectiveGrade is the grade summary's grade, else the instance's, else "" (ungraded).
func (in *Instance) EffectiveGrade() string {
	if g := strings.TrimSpace(in.GradeSummary.Grade); g != "" {
		return g
	}
	return strings.TrimSpace(in.Grade)
}

func (a *Asset) normalize() error {
	if a.AssetID == "" && a.UUID == "" && a.ID == 0 {
		return &fieldError{"assetId is missing"}
	}
	return nil
}

func (a *Asset) key() uint64 {
	switch {
	case a.AssetID != "":
		return stringKey(a.AssetID)
	case a.UUID != "":
		return stringKey(a.UUID)
	}
	return uint64(a.ID)
}

// isRecordError says whether a decode error concerns one record's contents (skip the
// record) rather than the stream (fail the page).
func isRecordError(err error) bool {
	var typeErr *json.UnmarshalTypeError
	var fieldErr *fieldError
	return errors.As(err, &typeErr) || errors.As(err, &fieldErr)
}

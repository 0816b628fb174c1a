package snapshot

import (
	"strings"

	"github.com/certview-exporter/certview_exporter/certview"
)

// ScoreCategories are the categories of a grade's scores, in the order of Instance.Scores.
var ScoreCategories = [4]string{"certificate", "protocol_support", "key_exchange", "cipher_strength"}

// Grades in order from best to worst; "other" is any grade CertView does not document
// (one value for all of them, so that an API inventing grades cannot make a series per
// instance), "none" is ungraded.
var Grades = []string{"A+", "A", "A-", "B", "C", "D", "E", "F", "T", "M", GradeOther, GradeNone}

// GradeOther and GradeNone are the grade values of an unknown grade and of none.
const (
	GradeOther = "other"
	GradeNone  = "none"
)

// Thresholds decide which keys are weak.
type Thresholds struct {
	WeakRSABits int // RSA and DSA keys below this are weak
	WeakECBits  int // EC keys below this are weak
}

// GradeRank ranks a grade, higher is better: A+ 12, A 11, A- 10, B 9, C 8, D 7, E 6,
// F 3, T 2 (not trusted) and M 1 (name mismatch). Ungraded and unknown grades have none.
func GradeRank(grade string) (float64, bool) {
	r, ok := gradeRanks[grade]
	return r, ok
}

var gradeRanks = map[string]float64{"A+": 12, "A": 11, "A-": 10, "B": 9, "C": 8, "D": 7, "E": 6, "F": 3, "T": 2, "M": 1}

// KeyAlgorithm is the key family: v2.1's publicKeyAlgorithm when present, else what the
// signature algorithm names (ECDSA, DSA), else RSA.
func KeyAlgorithm(publicKeyAlgorithm, signatureAlgorithm string) string {
	if p := strings.ToUpper(strings.TrimSpace(publicKeyAlgorithm)); p != "" {
		switch {
		case strings.HasPrefix(p, "EC"):
			return "EC"
		case strings.Contains(p, "RSA"):
			return "RSA"
		case strings.Contains(p, "DSA"):
			return "DSA"
		}
		return label(p)
	}
	s := strings.ToUpper(signatureAlgorithm)
	switch {
	case strings.Contains(s, "ECDSA"):
		return "EC"
	case strings.Contains(s, "DSA"):
		return "DSA"
	case strings.Contains(s, "ED25519"), strings.Contains(s, "ED448"):
		return "EdDSA"
	}
	return "RSA"
}

// WeakKey says whether a key is below its family's threshold. An unknown size is not weak.
func WeakKey(alg string, bits int, th Thresholds) bool {
	if bits <= 0 {
		return false
	}
	switch alg {
	case "EC":
		return bits < th.WeakECBits
	case "RSA", "DSA":
		return bits < th.WeakRSABits
	}
	return false
}

// WeakSignature says whether a signature algorithm uses MD5 or SHA-1 (or MD2).
func WeakSignature(alg string) bool {
	s := strings.ToUpper(strings.ReplaceAll(alg, "-", ""))
	return strings.Contains(s, "MD5") || strings.Contains(s, "MD2") || strings.Contains(s, "SHA1")
}

// NormalizeGrade maps a grade to its label value: one of Grades, "none" when ungraded,
// "other" (known false) when CertView's documents do not list it.
func NormalizeGrade(g string) (value string, known bool) {
	g = strings.ToUpper(strings.TrimSpace(g))
	switch {
	case g == "":
		return GradeNone, true
	case gradeRanks[g] > 0:
		return strings.Clone(g), true // a short copy, not a view of the record
	}
	return GradeOther, false
}

// gradeValue is NormalizeGrade for a grade read back from a saved snapshot, which holds
// the label values "none" and "other" themselves.
func gradeValue(g string) string {
	if g == GradeNone || g == GradeOther {
		return g
	}
	v, _ := NormalizeGrade(g)
	return v
}

// label makes a label value valid: UTF-8, no NUL or other control characters, and at
// most 256 bytes (see labelMax).
func label(s string) string {
	v, _ := labelMax(s, maxHostBytes)
	return v
}

// ProtocolName names the protocol version counted at index p of Snapshot.ProtocolCounts.
func ProtocolName(p int) string { return certview.Protocol(p).String() }

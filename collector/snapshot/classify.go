package snapshot

import (
	"strings"
	"unicode/utf8"

	"github.com/certview-exporter/certview_exporter/certview"
)

// ScoreCategories are the categories of a grade's scores, in the order of Instance.Scores.
var ScoreCategories = [4]string{"certificate", "protocol_support", "key_exchange", "cipher_strength"}

// Grades in order from best to worst; "none" is ungraded.
var Grades = []string{"A+", "A", "A-", "B", "C", "D", "E", "F", "T", "M", "none"}

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

// NormalizeGrade maps a grade to its label value: "none" when ungraded.
func NormalizeGrade(g string) string {
	g = strings.ToUpper(strings.TrimSpace(g))
	if g == "" {
		return "none"
	}
	return label(g)
}

// label makes a label value valid: UTF-8, no NUL or other control characters, and at
// most 256 bytes.
func label(s string) string {
	clean := true
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7f || s[i] >= utf8.RuneSelf {
			clean = false
			break
		}
	}
	if clean && len(s) <= 256 {
		return s
	}
	var b strings.Builder
	for _, r := range strings.ToValidUTF8(s, "\uFFFD") {
		switch {
		case r == 0:
			continue
		case r < 0x20 || r == 0x7f:
			b.WriteByte(' ')
		default:
			b.WriteRune(r)
		}
		if b.Len() >= 256 {
			break
		}
	}
	return strings.TrimSpace(b.String())
}

// ProtocolName names the protocol version counted at index p of Snapshot.ProtocolCounts.
func ProtocolName(p int) string { return certview.Protocol(p).String() }

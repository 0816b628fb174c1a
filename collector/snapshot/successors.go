package snapshot

import (
	"cmp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/certview-exporter/certview_exporter/certview"
)

// LifetimeCapDays are the CA/Browser Forum's caps on a public TLS certificate's
// validity (ballot SC-081): 200 days from 2026-03-15, 100 from 2027-03-15, 47 from
// 2029. Snapshot.LifetimeOver counts the certificates whose validity exceeds each.
var LifetimeCapDays = [3]int{200, 100, 47}

// successorScan bounds how many newer certificates of one subject are tried for each
// certificate, newest first. A renewal chain finds its successor at the first try; only
// a subject shared by many unrelated certificates (SANs that differ) tries more, and no
// more than this, so that the build stays O(N log N).
const successorScan = 64

// sanList flattens a record's subject alternative names, of every type, into one
// string: lower-cased, sorted, without repeats, separated by newlines, and bounded (see
// boundSANs); "" when none. cut says whether names were dropped to the bound.
func sanList(sans map[string][]string) (list string, cut bool) {
	var all []string
	for _, names := range sans {
		for _, n := range names {
			if n = strings.ToLower(strings.TrimSpace(n)); n != "" && !strings.Contains(n, "\n") {
				all = append(all, n)
			}
		}
	}
	return joinSANs(all)
}

// joinSANs sorts, de-duplicates, bounds and joins names (it may reorder the slice).
func joinSANs(names []string) (string, bool) {
	slices.Sort(names)
	return boundSANs(slices.Compact(names))
}

// normaliseSANs makes a saved record's SANs sorted, unique and bounded again: the subset
// test relies on it.
func normaliseSANs(s string) string {
	if s == "" {
		return ""
	}
	list, _ := joinSANs(strings.Split(s, "\n"))
	return list
}

// sansInclude says whether the sorted list all holds every name of the sorted list sub.
func sansInclude(all, sub string) bool {
	for sub != "" {
		var name string
		name, sub, _ = strings.Cut(sub, "\n")
		for {
			if all == "" {
				return false
			}
			var have string
			have, all, _ = strings.Cut(all, "\n")
			if have == name {
				break
			}
			if have > name {
				return false
			}
		}
	}
	return true
}

// sameSubjectName says whether two certificates name the same subject by name and
// organization, the key certificates are grouped by.
func sameSubjectName(a, b *Certificate) bool {
	return a.CommonName == b.CommonName && a.Organization == b.Organization
}

// succeeds says whether newer is a renewal of old: a later start and a later end of
// validity, the same subject DN (where a record lacks it, the same subject name and
// organization, which the caller has checked), and, where both carry SANs, every name
// of old's among newer's.
func succeeds(newer, old *Certificate) bool {
	if !newer.NotBefore.After(old.NotBefore) || !newer.NotAfter.After(old.NotAfter) {
		return false
	}
	if newer.DN != "" && old.DN != "" && newer.DN != old.DN {
		return false
	}
	if newer.SANs != "" && old.SANs != "" && !sansInclude(newer.SANs, old.SANs) {
		return false
	}
	return true
}

// successors finds each certificate's successor, the newest certificate that succeeds
// it, as an index into certs (-1: none). Certificates are grouped by subject name and
// organization and sorted newest first within a group: O(N log N), and a group is read
// once per certificate up to successorScan candidates.
func successors(certs []Certificate) []int32 {
	out := make([]int32, len(certs))
	for i := range out {
		out[i] = -1
	}
	idx := make([]int32, 0, len(certs))
	for i := range certs {
		c := &certs[i]
		if c.NotBefore.IsZero() || c.NotAfter.IsZero() || (c.CommonName == "" && c.Organization == "" && c.DN == "") {
			continue // no validity to compare, or no subject to match
		}
		idx = append(idx, int32(i))
	}
	slices.SortFunc(idx, func(a, b int32) int {
		x, y := &certs[a], &certs[b]
		return cmp.Or(strings.Compare(x.CommonName, y.CommonName), strings.Compare(x.Organization, y.Organization),
			y.NotBefore.Compare(x.NotBefore), y.NotAfter.Compare(x.NotAfter), strings.Compare(x.CertHash, y.CertHash))
	})
	for start := 0; start < len(idx); {
		end := start + 1
		for end < len(idx) && sameSubjectName(&certs[idx[start]], &certs[idx[end]]) {
			end++
		}
		group := idx[start:end]
		for k := 1; k < len(group); k++ {
			old := &certs[group[k]]
			for n, j := range group[:k] { // newest first: the first that succeeds is the successor
				if n == successorScan {
					break
				}
				if succeeds(&certs[j], old) {
					out[group[k]] = j
					break
				}
			}
		}
		start = end
	}
	return out
}

// servedLeaves counts, for each certificate, the served certificates that name it as
// their issuer or root issuer (by certhash), itself not included: how many served
// certificates break when it expires. certs are sorted by certhash.
func servedLeaves(certs []Certificate) []int32 {
	out := make([]int32, len(certs))
	find := func(h string) int {
		i := sort.Search(len(certs), func(i int) bool { return certs[i].CertHash >= h })
		if i < len(certs) && certs[i].CertHash == h {
			return i
		}
		return -1
	}
	for i := range certs {
		c := &certs[i]
		if c.Served == 0 {
			continue
		}
		for k, h := range []string{c.IssuerCertHash, c.RootIssuerCertHash} {
			if h == "" || h == c.CertHash || (k == 1 && h == c.IssuerCertHash) {
				continue
			}
			if j := find(h); j >= 0 {
				out[j]++
			}
		}
	}
	return out
}

// lifetimeOver says, for each of LifetimeCapDays, whether the certificate's validity
// (not-after less not-before) exceeds it; a certificate without both exceeds none.
func lifetimeOver(c *Certificate) (over [len(LifetimeCapDays)]bool) {
	if c.NotBefore.IsZero() || c.NotAfter.IsZero() {
		return over
	}
	life := c.NotAfter.Sub(c.NotBefore)
	for k, days := range LifetimeCapDays {
		over[k] = life > time.Duration(days)*24*time.Hour
	}
	return over
}

// Successor returns certificate i's successor (see successors), if it has one.
func (s *Snapshot) Successor(i int) (*Certificate, bool) {
	if s.successor == nil || s.successor[i] < 0 {
		return nil, false
	}
	return &s.Certificates[s.successor[i]], true
}

// ServedLeaves is how many served certificates name certificate i as their issuer or
// root issuer.
func (s *Snapshot) ServedLeaves(i int) int {
	if s.servedLeaves == nil {
		return 0
	}
	return int(s.servedLeaves[i])
}

// keepSubject copies what successors and the issuer chain need from a record.
func (b *Builder) keepSubject(out *Certificate, c *certview.Certificate) {
	var cut bool
	if out.DN, cut = boundDN(c.DN); cut {
		b.cut(FieldDN)
	}
	if out.SANs, cut = sanList(c.SubjectAlternativeNames); cut {
		b.cut(FieldSANs)
	}
	// As the certificates' own certhashes are kept: the issuer's must match them.
	out.IssuerCertHash = b.boundedShare(FieldCertHash, c.Issuer.CertHash, maxCertHashBytes)
	out.RootIssuerCertHash = b.boundedShare(FieldCertHash, c.RootIssuer.CertHash, maxCertHashBytes)
}

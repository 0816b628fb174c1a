package config

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"

	"github.com/certview-exporter/certview_exporter/certview"
	"github.com/certview-exporter/certview_exporter/collector/snapshot"
)

// Fingerprint identifies the settings that decide what a listing holds: whose inventory
// (the gateway and the account) and what of it (asset type, filters, includes, excluded
// fields, the certificates API version, owner rules and weak-key thresholds). The saved
// snapshot and a full listing's checkpoint carry it, so that neither is served or resumed
// under settings that would not have made it. Secrets take no part.
func (c *Config) Fingerprint() snapshot.Fingerprint {
	q := c.Qualys
	gateway := q.APIURL
	if gateway == "" {
		gateway, _ = certview.PlatformURL(q.Platform)
	}
	assetType := q.AssetType
	if assetType == "" {
		assetType = certview.DefaultAssetType
	}
	return snapshot.Fingerprint{
		Subscription: digest(strings.TrimRight(strings.ToLower(gateway), "/"), q.Username, q.ClientID),
		Content: digest(assetType, q.CertificateFilter, q.InstanceFilter, c.includes(), q.ExcludeFields, q.CertificatesAPI,
			c.Owners, c.Metrics.WeakRSABits, c.Metrics.WeakECBits),
	}
}

// digest is a short hash of values' JSON.
func digest(values ...any) string {
	sum := sha256.New()
	enc := json.NewEncoder(sum)
	for _, v := range values {
		_ = enc.Encode(v)
	}
	return hex.EncodeToString(sum.Sum(nil)[:16])
}

package web

import (
	"fmt"
	"path"
	"strings"
)

// maxTelemetryPath bounds --web.telemetry-path.
const maxTelemetryPath = 256

// CheckTelemetryPath says whether p can serve the metrics: an absolute, clean URL path of
// at most 256 bytes, of letters, digits and the characters RFC 3986 allows in a path
// segment (no percent-escape, space or brace: net/http's router would read those as a
// method, a host or a wildcard, or panic), that takes nothing from the other routes:
// nothing under "/-/" (health, readiness, reload). "/" serves the metrics at every path
// the other routes leave, without a landing page, as it always did.
func CheckTelemetryPath(p string) error {
	switch {
	case p == "":
		return fmt.Errorf("empty; a path such as /metrics")
	case len(p) > maxTelemetryPath:
		return fmt.Errorf("%d bytes long, more than %d", len(p), maxTelemetryPath)
	case p[0] != '/':
		return fmt.Errorf("%q does not start with /", p)
	}
	for i := 0; i < len(p); i++ {
		if !pathByte(p[i]) {
			return fmt.Errorf("%q holds %q at byte %d; use letters, digits and - . _ ~ ! $ & ' ( ) * + , ; = : @ /", p, p[i:i+1], i)
		}
	}
	switch {
	case path.Clean(p) != p:
		return fmt.Errorf("%q is not a clean path (%s): no empty, . or .. segment and no trailing /", p, path.Clean(p))
	case strings.HasPrefix(p, "/-/"):
		return fmt.Errorf("%q is under /-/, where /-/healthy, /-/ready and /-/reload are served", p)
	}
	return nil
}

// pathByte: unreserved and sub-delims of RFC 3986, ':', '@' and '/'.
func pathByte(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("-._~!$&'()*+,;=:@/", c) >= 0
}

package config

import (
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/certview-exporter/certview_exporter/certview"
)

// plainHTTP says whether an api_url is http://, and its host.
func plainHTTP(raw string) (string, bool) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || !strings.EqualFold(u.Scheme, "http") {
		return "", false
	}
	return u.Hostname(), true
}

// loopback says whether host is this machine: localhost, 127.0.0.0/8 or ::1. Names are
// not resolved.
func loopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Warnings are what a valid configuration should still say when it is loaded: an
// http:// api_url, allowed on loopback or by qualys.allow_insecure_http, and how large a
// full listing poll.timeout lets one poll finish.
func (c *Config) Warnings() []string {
	var out []string
	if w := c.timeoutWarning(); w != "" {
		out = append(out, w)
	}
	host, plain := plainHTTP(c.Qualys.APIURL)
	switch {
	case !plain:
	case loopback(host):
		out = append(out, fmt.Sprintf("qualys.api_url: http:// sends the password in clear; allowed because %s is loopback (a local proxy or a test double)", host))
	default:
		out = append(out, fmt.Sprintf("qualys.api_url: http:// sends the password in clear to %s; allowed by qualys.allow_insecure_http", host))
	}
	return out
}

// timeoutWarning says how large a full listing poll.timeout lets one poll finish at the
// configured rate, when a timeout is set: a larger one fails the poll as a timeout and
// goes on from its checkpoint at the next.
func (c *Config) timeoutWarning() string {
	t, calls, window := time.Duration(c.Poll.Timeout), c.RateLimit.Calls, time.Duration(c.RateLimit.Window)
	if t <= 0 || calls <= 0 || window <= 0 {
		return ""
	}
	// A window's calls at once, then the window's rate.
	fit := calls + int(float64(calls)*float64(t)/float64(window))
	if t < window {
		fit = calls
	}
	pageSize := c.Qualys.PageSize
	if pageSize <= 0 {
		pageSize = certview.DefaultPageSize
	}
	return fmt.Sprintf("poll.timeout: %s at rate_limit %d per %s fits a full listing of at most about %d calls per API (%d records at page size %d); a larger inventory fails each poll as a timeout until its full listing, which goes on from its checkpoint, ends",
		c.Poll.Timeout, calls, c.RateLimit.Window, fit, (fit-1)*pageSize, pageSize)
}

package config

import (
	"fmt"
	"net"
	"net/url"
	"strings"
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
// http:// api_url, allowed on loopback or by qualys.allow_insecure_http.
func (c *Config) Warnings() []string {
	host, plain := plainHTTP(c.Qualys.APIURL)
	switch {
	case !plain:
		return nil
	case loopback(host):
		return []string{fmt.Sprintf("qualys.api_url: http:// sends the password in clear; allowed because %s is loopback (a local proxy or a test double)", host)}
	}
	return []string{fmt.Sprintf("qualys.api_url: http:// sends the password in clear to %s; allowed by qualys.allow_insecure_http", host)}
}

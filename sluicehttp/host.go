package sluicehttp

import (
	"net"
	"net/url"
	"strings"
)

// hostKey returns u's host as "host:port", lower case, the port defaulted
// from the scheme; without allocating when u.Host already is that.
func hostKey(u *url.URL) string {
	h := u.Host
	if hasPort(h) && !hasUpper(h) {
		return h
	}
	port := u.Port()
	if port == "" {
		port = "80"
		if u.Scheme == "https" || u.Scheme == "wss" {
			port = "443"
		}
	}
	return net.JoinHostPort(strings.ToLower(u.Hostname()), port)
}

func hasPort(h string) bool {
	i := strings.LastIndexByte(h, ':')
	return i >= 0 && i > strings.LastIndexByte(h, ']') && i < len(h)-1
}

func hasUpper(s string) bool {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			return true
		}
	}
	return false
}

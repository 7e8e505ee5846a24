// Package hostname checks host names the way the config and the Redis URL
// parser both need: one rule, so that an upstream and a Redis address are
// accepted or refused alike.
package hostname

import (
	"net/netip"
	"strings"
)

// Valid reports whether h is an IP address or a DNS host name: labels of 1
// to 63 letters, digits, hyphens or underscores, not starting or ending with
// a hyphen, 253 bytes at most, with an optional trailing dot.
func Valid(h string) bool {
	if _, err := netip.ParseAddr(h); err == nil {
		return true
	}
	if len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(strings.TrimSuffix(h, "."), ".") {
		if !validLabel(label) {
			return false
		}
	}
	return true
}

func validLabel(label string) bool {
	if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
		return false
	}
	for _, c := range []byte(label) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

package config

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/sluice-go/sluice/internal/hostname"
)

// This file decodes and checks single values. Each decoder records an error
// and returns the zero value when the value is bad.

func (d *decoder) str(n *yaml.Node, path string) string {
	s, _ := d.text(n, path, "a string")
	return s
}

func (d *decoder) boolean(n *yaml.Node, path string) bool {
	s, ok := d.text(n, path, "true or false")
	if !ok {
		return false
	}
	switch s {
	case "true":
		return true
	case "false":
		return false
	}
	d.errorf(n, path, "want true or false, got %q", s)
	return false
}

// enum decodes one of allowed; noun names the kind in the message:
// unknown backoff "expo" (want exponential, linear, constant, decorrelated).
func (d *decoder) enum(n *yaml.Node, path, noun string, allowed ...string) string {
	s, ok := d.text(n, path, "one of "+strings.Join(allowed, ", "))
	if !ok {
		return ""
	}
	for _, a := range allowed {
		if s == a {
			return s
		}
	}
	d.errorf(n, path, "unknown %s %q (want %s)", noun, s, strings.Join(allowed, ", "))
	return ""
}

// integer decodes an integer of at least lo.
func (d *decoder) integer(n *yaml.Node, path string, lo int) int {
	s, ok := d.text(n, path, "an integer")
	if !ok {
		return 0
	}
	v, err := strconv.Atoi(s)
	if err != nil {
		d.errorf(n, path, "want an integer, got %q", s)
		return 0
	}
	if v < lo && lo == 0 {
		d.errorf(n, path, "must not be negative, got %d", v)
		return 0
	}
	if v < lo {
		d.errorf(n, path, "must be at least %d, got %d", lo, v)
		return 0
	}
	return v
}

// number decodes a finite number.
func (d *decoder) number(n *yaml.Node, path string) (float64, bool) {
	s, ok := d.text(n, path, "a number")
	if !ok {
		return 0, false
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsInf(v, 0) || math.IsNaN(v) {
		d.errorf(n, path, "want a number, got %q", s)
		return 0, false
	}
	return v, true
}

// ratio decodes a number in (0, 1].
func (d *decoder) ratio(n *yaml.Node, path string) float64 {
	v, ok := d.number(n, path)
	if ok && (v <= 0 || v > 1) {
		d.errorf(n, path, "must be greater than 0 and at most 1, got %v", v)
		return 0
	}
	return v
}

// positive decodes a number greater than 0.
func (d *decoder) positive(n *yaml.Node, path string) float64 {
	v, ok := d.number(n, path)
	if ok && v <= 0 {
		d.errorf(n, path, "must be greater than 0, got %v", v)
		return 0
	}
	return v
}

// duration decodes a Go duration that is not negative and, if positive is
// set, not zero.
func (d *decoder) duration(n *yaml.Node, path string, positive bool) time.Duration {
	s, ok := d.text(n, path, "a duration")
	if !ok {
		return 0
	}
	v, err := time.ParseDuration(s)
	switch {
	case err != nil && s != "" && strings.Trim(s, "0123456789") == "":
		d.errorf(n, path, "bad duration %q: missing unit (write %ss, %sms or 1m30s)", s, s, s)
		return 0
	case err != nil:
		d.errorf(n, path, "bad duration %q (want a Go duration such as 30s, 500ms or 1m30s)", s)
		return 0
	case v < 0:
		d.errorf(n, path, "must not be negative, got %v", v)
		return 0
	case v == 0 && positive:
		d.errorf(n, path, "must be greater than 0, got %s", s)
		return 0
	}
	return v
}

func (d *decoder) size(n *yaml.Node, path string) Size {
	s, ok := d.text(n, path, "a size")
	if !ok {
		return 0
	}
	v, err := ParseSize(s)
	if err != nil {
		d.errorf(n, path, "%v", err)
		return 0
	}
	return v
}

// name decodes the name of a route or policy: letters, digits, _ and -,
// starting with a letter or digit, since names appear in metric labels,
// URLs and field paths.
func (d *decoder) name(n *yaml.Node, path string) string {
	s, ok := d.text(n, path, "a name")
	if ok {
		if err := checkName(s); err != nil {
			d.errorf(n, path, "%v", err)
		}
	}
	return s
}

func checkName(s string) error {
	if s == "" || len(s) > 64 {
		return fmt.Errorf("bad name %q (want 1 to 64 letters, digits, _ or -)", s)
	}
	for i, c := range []byte(s) {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case (c == '_' || c == '-') && i > 0:
		default:
			return fmt.Errorf("bad name %q (want letters, digits, _ or -, starting with a letter or digit)", s)
		}
	}
	return nil
}

// checkAddr checks a listen address: host:port with an optional IP or host
// name and a numeric port.
func checkAddr(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("bad address %q (want host:port, such as 127.0.0.1:8080 or :8080)", s)
	}
	if err := checkPort(port); err != nil {
		return fmt.Errorf("bad address %q: %v", s, err)
	}
	if host != "" && !hostname.Valid(host) {
		return fmt.Errorf("bad address %q: bad host %q", s, host)
	}
	return nil
}

func checkPort(p string) error {
	n, err := strconv.Atoi(p)
	if err != nil || n < 0 || n > 65535 || p == "" || p[0] == '+' {
		return fmt.Errorf("bad port %q (want 0 to 65535)", p)
	}
	return nil
}

// isLoopback reports whether a listen address accepts only local
// connections. An empty host listens on every interface.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// checkHostMatch checks a route's host condition: a host name or IP, with
// an optional port.
func checkHostMatch(s string) error {
	host := s
	if h, port, err := net.SplitHostPort(s); err == nil {
		if err := checkPort(port); err != nil {
			return fmt.Errorf("bad host %q: %v", s, err)
		}
		host = h
	}
	if !hostname.Valid(host) {
		return fmt.Errorf("bad host %q (want a host name or IP, optionally with :port)", s)
	}
	return nil
}

// checkUpstream checks an upstream URL: absolute http or https, with a
// host, and nothing the proxy would silently drop (credentials, query,
// fragment).
func checkUpstream(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("bad upstream URL %q: %v", s, err)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("bad upstream URL %q: want an http:// or https:// URL", s)
	case u.Opaque != "" || u.Host == "":
		return fmt.Errorf("bad upstream URL %q: no host", s)
	case u.User != nil:
		return fmt.Errorf("bad upstream URL %q: credentials in upstream URLs are not supported", s)
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(s, "#"):
		return fmt.Errorf("bad upstream URL %q: an upstream URL has no query or fragment", s)
	}
	if port := u.Port(); port != "" || strings.HasSuffix(u.Host, ":") {
		if err := checkPort(port); err != nil {
			return fmt.Errorf("bad upstream URL %q: %v", s, err)
		}
	}
	if !hostname.Valid(u.Hostname()) {
		return fmt.Errorf("bad upstream URL %q: bad host %q", s, u.Hostname())
	}
	return nil
}

// checkStoreURL checks a storage URL: bolt://PATH or redis[s]://HOST[:PORT][/DB].
func checkStoreURL(s string) error {
	scheme, rest, ok := strings.Cut(s, "://")
	switch {
	case ok && scheme == "bolt":
		if rest == "" {
			return fmt.Errorf("bad storage URL %q: no file path (want bolt://PATH, such as bolt://./sluice-data/dlq.db)", s)
		}
		return nil
	case ok && (scheme == "redis" || scheme == "rediss"):
		u, err := url.Parse(s)
		if err != nil || u.Host == "" || u.Hostname() == "" {
			return fmt.Errorf("bad storage URL %q: want redis://[USER:PASSWORD@]HOST:PORT[/DB]", s)
		}
		if port := u.Port(); port != "" || strings.HasSuffix(u.Host, ":") {
			if err := checkPort(port); err != nil {
				return fmt.Errorf("bad storage URL %q: %v", s, err)
			}
		}
		if db := strings.TrimPrefix(u.Path, "/"); db != "" {
			if n, err := strconv.Atoi(db); err != nil || n < 0 {
				return fmt.Errorf("bad storage URL %q: database %q is not a number", s, db)
			}
		}
		return nil
	}
	return fmt.Errorf("unsupported storage URL %q (want bolt://PATH or redis://HOST:PORT/DB)", s)
}

// checkMethod checks an HTTP method: an RFC 9110 token, upper case (methods
// are case-sensitive, and a lower-case "get" would match nothing).
func checkMethod(m string) error {
	if m == "" {
		return fmt.Errorf("empty method")
	}
	for _, c := range []byte(m) {
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return fmt.Errorf("bad method %q", m)
		}
	}
	if up := strings.ToUpper(m); up != m {
		return fmt.Errorf("method %q must be upper case (%s)", m, up)
	}
	return nil
}

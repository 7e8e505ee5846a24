package proxy

import (
	"net"
	"net/http"
	"net/textproto"
	"strings"
)

// The headers sluice adds to answers, besides those of sluicehttp's
// contract (Sluice-Reject, Sluice-Retry).
const (
	// HeaderQueued carries the dead-letter message ID of a request that was
	// stored for replay and answered 202. A replayed request carries it
	// too, so the upstream can recognise a replay.
	HeaderQueued = "Sluice-Queued"
	// HeaderFallback names the fallback that produced an answer:
	// FallbackStaleCache.
	HeaderFallback = "Sluice-Fallback"
	// FallbackStaleCache is HeaderFallback's value on an answer served
	// from a route's stale cache.
	FallbackStaleCache = "stale-cache"
)

// isHopHeader reports whether name is a hop-by-hop header (RFC 9110
// §7.6.1): it describes one connection and is never forwarded.
func isHopHeader(name string) bool {
	switch name {
	case "Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
		"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade":
		return true
	}
	return false
}

// removeHopHeaders deletes the hop-by-hop headers of h, and those that its
// Connection header names.
func removeHopHeaders(h http.Header) {
	for _, v := range h["Connection"] {
		for f := range strings.SplitSeq(v, ",") {
			if f = textproto.TrimString(f); f != "" {
				h.Del(f)
			}
		}
	}
	for name := range h {
		if isHopHeader(name) {
			delete(h, name)
		}
	}
}

// copyHeader adds every value of src to dst.
func copyHeader(dst, src http.Header) {
	for k, vv := range src {
		dst[k] = append(dst[k], vv...)
	}
}

// sluicePrefix starts the names of the headers sluice gives a meaning to
// (Sluice-Queued, Sluice-Reject, Sluice-Retry, Sluice-Fallback, and any
// later ones), in canonical form.
const sluicePrefix = "Sluice-"

// removeSluiceHeaders deletes the Sluice-* headers of h: a client that sent
// them could pass its request as a replay (Sluice-Queued) or speak for a
// sluice layer it is not.
func removeSluiceHeaders(h http.Header) {
	for name := range h {
		if len(name) >= len(sluicePrefix) && strings.EqualFold(name[:len(sluicePrefix)], sluicePrefix) {
			delete(h, name)
		}
	}
}

// outgoingHeader returns the header the proxy sends upstream for r: r's
// header without hop-by-hop headers and, unless trust is set, without
// Sluice-* headers, with "Te: trailers" kept, no User-Agent added where the
// client sent none, and the forwarding headers set: X-Forwarded-For gets
// the client's address appended, X-Forwarded-Host and X-Forwarded-Proto are
// set if absent, and Forwarded (RFC 7239) gets an element for this hop.
func outgoingHeader(r *http.Request, trust bool) http.Header {
	h := r.Header.Clone()
	if h == nil {
		h = http.Header{}
	}
	if !trust {
		removeSluiceHeaders(h)
	}
	trailers := false
	for _, v := range r.Header["Te"] {
		if tokenIn(v, "trailers") {
			trailers = true
		}
	}
	removeHopHeaders(h)
	if trailers {
		h.Set("Te", "trailers")
	}
	if _, ok := h["User-Agent"]; !ok {
		h["User-Agent"] = []string{""} // net/http then sends none
	}
	proto := "http"
	if r.TLS != nil {
		proto = "https"
	}
	client, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		client = r.RemoteAddr
	}
	if client != "" {
		if prior := h["X-Forwarded-For"]; len(prior) > 0 {
			h.Set("X-Forwarded-For", strings.Join(prior, ", ")+", "+client)
		} else {
			h.Set("X-Forwarded-For", client)
		}
	}
	if h.Get("X-Forwarded-Host") == "" && r.Host != "" {
		h.Set("X-Forwarded-Host", r.Host)
	}
	if h.Get("X-Forwarded-Proto") == "" {
		h.Set("X-Forwarded-Proto", proto)
	}
	h.Add("Forwarded", forwardedElement(client, r.Host, proto))
	return h
}

// forwardedElement is this hop's element of a Forwarded header: for=,
// host= and proto=, with an IPv6 address bracketed and quoted as RFC 7239
// §6 requires.
func forwardedElement(client, host, proto string) string {
	var b strings.Builder
	if client != "" {
		b.WriteString("for=")
		if strings.Contains(client, ":") {
			b.WriteString(`"[` + client + `]"`)
		} else {
			b.WriteString(client)
		}
	}
	if host != "" {
		if b.Len() > 0 {
			b.WriteByte(';')
		}
		b.WriteString("host=")
		b.WriteString(quoteIfNeeded(host))
	}
	if b.Len() > 0 {
		b.WriteByte(';')
	}
	b.WriteString("proto=" + proto)
	return b.String()
}

// quoteIfNeeded quotes v unless it is an RFC 7230 token.
func quoteIfNeeded(v string) string {
	for _, c := range []byte(v) {
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return `"` + strings.ReplaceAll(strings.ReplaceAll(v, `\`, `\\`), `"`, `\"`) + `"`
		}
	}
	return v
}

// tokenIn reports whether the comma-separated list v holds token,
// case-insensitively.
func tokenIn(v, token string) bool {
	for f := range strings.SplitSeq(v, ",") {
		if strings.EqualFold(textproto.TrimString(f), token) {
			return true
		}
	}
	return false
}

// isUpgrade reports whether r asks to switch protocols (WebSocket).
func isUpgrade(r *http.Request) bool {
	if r.Header.Get("Upgrade") == "" {
		return false
	}
	for _, v := range r.Header["Connection"] {
		if tokenIn(v, "upgrade") {
			return true
		}
	}
	return false
}

package sluicehttp

import (
	"net/http"
	"net/url"
	"testing"
)

func TestHostKey(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"http://example.com/x", "example.com:80"},
		{"https://Example.COM/x", "example.com:443"},
		{"http://example.com:8080", "example.com:8080"},
		{"http://EXAMPLE.com:8080", "example.com:8080"},
		{"http://[::1]:9000/", "[::1]:9000"},
		{"https://[::1]/", "[::1]:443"},
		{"http://127.0.0.1:/", "127.0.0.1:80"},
	} {
		u, err := url.Parse(tc.in)
		if err != nil {
			t.Fatal(err)
		}
		if got := hostKey(u); got != tc.want {
			t.Errorf("hostKey(%s) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestIdempotent(t *testing.T) {
	for _, tc := range []struct {
		method string
		header string
		want   bool
	}{
		{"GET", "", true}, {"HEAD", "", true}, {"OPTIONS", "", true}, {"TRACE", "", true},
		{"PUT", "", true}, {"DELETE", "", true}, {"", "", true},
		{"POST", "", false}, {"PATCH", "", false}, {"CONNECT", "", false},
		{"POST", "Idempotency-Key", true}, {"PATCH", "X-Idempotency-Key", true},
	} {
		req := &http.Request{Method: tc.method, Header: http.Header{}}
		if tc.header != "" {
			req.Header[tc.header] = nil // present, not sent: as net/http allows
		}
		if got := idempotent(req); got != tc.want {
			t.Errorf("idempotent(%s, %q) = %v, want %v", tc.method, tc.header, got, tc.want)
		}
	}
}

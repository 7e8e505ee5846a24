package proxy

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/sluice-go/sluice"
	"github.com/sluice-go/sluice/dlq"
)

func TestCleanPath(t *testing.T) {
	tests := map[string]string{
		"":                "/",
		"/api/x":          "/api/x",
		"/api/../admin":   "/admin",
		"/api/./x/":       "/api/x/",
		"//api//x":        "/api/x",
		"/api/..":         "/",
		"/a/b/../../../c": "/c",
	}
	for in, want := range tests {
		if got := cleanPath(in); got != want {
			t.Errorf("cleanPath(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestTargetURL(t *testing.T) {
	tests := []struct{ up, req, want string }{
		{"http://u:1", "/a/b?q=1", "http://u:1/a/b?q=1"},
		{"http://u:1/", "/a", "http://u:1/a"},
		{"http://u:1/v2", "/a", "http://u:1/v2/a"},
		{"http://u:1/v2/", "/a", "http://u:1/v2/a"},
		{"https://u/base", "/a%2Fb", "https://u/base/a%2Fb"},
	}
	for _, tt := range tests {
		u, _ := url.Parse(tt.up)
		r := httptest.NewRequest("GET", tt.req, nil)
		if got := targetURL(&upstream{url: u}, r).String(); got != tt.want {
			t.Errorf("targetURL(%s, %s) = %s, want %s", tt.up, tt.req, got, tt.want)
		}
	}
}

func TestForwardedElement(t *testing.T) {
	tests := []struct{ client, host, proto, want string }{
		{"192.0.2.1", "example.com", "http", "for=192.0.2.1;host=example.com;proto=http"},
		{"2001:db8::1", "example.com:8080", "https", `for="[2001:db8::1]";host="example.com:8080";proto=https`},
		{"", "", "http", "proto=http"},
	}
	for _, tt := range tests {
		if got := forwardedElement(tt.client, tt.host, tt.proto); got != tt.want {
			t.Errorf("forwardedElement(%q, %q) = %s, want %s", tt.client, tt.host, got, tt.want)
		}
	}
}

func TestRemoveHopHeaders(t *testing.T) {
	h := http.Header{
		"Connection":        {"close, X-A", "x-b"},
		"X-A":               {"1"},
		"X-B":               {"2"},
		"Keep-Alive":        {"timeout=1"},
		"Transfer-Encoding": {"chunked"},
		"Upgrade":           {"h2c"},
		"X-C":               {"3"},
	}
	removeHopHeaders(h)
	if len(h) != 1 || h.Get("X-C") != "3" {
		t.Errorf("left %v, want only X-C", h)
	}
}

// rejection is a load-shedding error with a RetryAfter, like a breaker's.
type rejection time.Duration

func (r rejection) Error() string             { return fmt.Sprintf("open for %v", time.Duration(r)) }
func (r rejection) Is(target error) bool      { return target == sluice.ErrRejected }
func (r rejection) RetryAfter() time.Duration { return time.Duration(r) }

func TestPickError(t *testing.T) {
	answered := &answerError{upstream: "a", code: 503, cause: &sluice.StatusError{Code: 503}}
	refused := &tryError{upstream: "b", err: errors.New("connection refused")}
	tests := []struct {
		name string
		errs []error
		want error
	}{
		{"last one that reached an upstream", []error{answered, refused}, refused},
		{"an answer beats a later refusal", []error{answered, rejection(time.Second)}, answered},
		{"every breaker open: the nearest probe", []error{rejection(30 * time.Second), rejection(5 * time.Second), rejection(10 * time.Second)}, rejection(5 * time.Second)},
		{"one", []error{refused}, refused},
	}
	for _, tt := range tests {
		if got := pickError(tt.errs); got != tt.want {
			t.Errorf("%s: pickError = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestEncodeDecodeRequest(t *testing.T) {
	r := httptest.NewRequest("PATCH", "http://svc.example/x/y?z=1", nil)
	r.RemoteAddr = "192.0.2.7:4444"
	r.Header.Add("X-Multi", "a")
	r.Header.Add("X-Multi", "b")
	r.Header.Set("Connection", "keep-alive")
	m := dlq.Message{Headers: encodeRequest(r, false)}
	got, err := decodeRequest(m)
	if err != nil {
		t.Fatal(err)
	}
	if got.Method != "PATCH" || got.URL.String() != "/x/y?z=1" || got.Host != "svc.example" || got.RemoteAddr != r.RemoteAddr {
		t.Errorf("decoded %s %s host %s from %s", got.Method, got.URL, got.Host, got.RemoteAddr)
	}
	if v := got.Header["X-Multi"]; strings.Join(v, ",") != "a,b" {
		t.Errorf("X-Multi = %v", v)
	}
	if got.Header.Get("Connection") != "" {
		t.Error("a hop-by-hop header was stored")
	}
	if _, err := decodeRequest(dlq.Message{}); err == nil {
		t.Error("decoded a message that is not a request")
	}
}

func TestCacheableAnswer(t *testing.T) {
	mk := func(code int, kv ...string) *http.Response {
		resp := &http.Response{StatusCode: code, Header: http.Header{}, ContentLength: -1}
		for i := 0; i+1 < len(kv); i += 2 {
			resp.Header.Add(kv[i], kv[i+1])
		}
		return resp
	}
	tests := []struct {
		resp *http.Response
		want bool
	}{
		{mk(200), true},
		{mk(204), true},
		{mk(206), false},
		{mk(301), false},
		{mk(200, "Cache-Control", "max-age=0, no-store"), false},
		{mk(200, "Cache-Control", "private"), false},
		{mk(200, "Set-Cookie", "a=b"), false},
		{mk(200, "Vary", "Accept-Encoding"), true},
		{mk(200, "Vary", "Accept-Encoding, Cookie"), false},
		{&http.Response{StatusCode: 200, Header: http.Header{}, ContentLength: 2 << 20}, false},
	}
	for i, tt := range tests {
		if got := cacheableAnswer(tt.resp, 1<<20); got != tt.want {
			t.Errorf("%d: cacheableAnswer(%d %v) = %v, want %v", i, tt.resp.StatusCode, tt.resp.Header, got, tt.want)
		}
	}
}

func TestAmbiguousPath(t *testing.T) {
	tests := map[string]bool{
		"/a/b": false, "/a/b/": false, "/": false, "/a;v=1/b": false, "/.well-known/x": false, "/a..b/...": false,
		"/a/../b": true, "/a/./b": true, "/a/..": true, "/..;/a": true, "/a/.;x/b": true, "//a": true, "/a//b": true,
		"/a/%2e%2e/b": true, "/a/%2E./b": true, "/a%2fb": true, "/a%5Cb": true, "/a\\b": true, "/a%00": true,
		"/a/%252e%252e/b": true, "/a%252Fb": true, "/a%20b": false, "/a%25b": false,
	}
	for target, want := range tests {
		r := httptest.NewRequest("GET", "http://h"+strings.ReplaceAll(target, "\\", "%5C"), nil)
		if got := ambiguousPath(r); got != want {
			t.Errorf("ambiguousPath(%s) = %v, want %v (path %q, raw %q)", target, got, want, r.URL.Path, r.URL.RawPath)
		}
	}
	r := httptest.NewRequest("GET", "http://h/api/v1/agents/42/commands?x=1", nil)
	if n := testing.AllocsPerRun(100, func() { ambiguousPath(r) }); n != 0 {
		t.Errorf("ambiguousPath allocates %v times", n)
	}
}

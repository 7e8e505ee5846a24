package proxy_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/sluice-go/sluice/proxy"
)

// adminReq sends a request to the admin API with the given Host (empty:
// the listener's address) and headers, and returns the status and body.
func (h *harness) adminReq(method, path, host string, hdr ...string) (int, string) {
	h.t.Helper()
	req, err := http.NewRequest(method, h.admin+path, nil)
	if err != nil {
		h.t.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := h.client.Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// jsonError checks that body is the admin API's {"error": "..."} and that
// the message says what is wrong.
func jsonError(t *testing.T, body, mentions string) {
	t.Helper()
	var e struct{ Error string }
	if err := json.Unmarshal([]byte(body), &e); err != nil || !strings.Contains(e.Error, mentions) {
		t.Errorf("answer %q: want a JSON error mentioning %q", body, mentions)
	}
}

func TestAdminHostHeader(t *testing.T) {
	up := newUpstream(t, status(200, "ok"))
	h := start(t, "routes:\n  - {name: r, upstreams: ["+up.URL+"]}\n", proxy.Options{})
	for _, tc := range []struct {
		host string
		want int
	}{
		{"evil.example", http.StatusMisdirectedRequest},
		{"evil.example:9901", http.StatusMisdirectedRequest},
		{"127.0.0.1.evil.example", http.StatusMisdirectedRequest},
		{"localhost.evil.example:80", http.StatusMisdirectedRequest},
		{"10.0.0.1:9901", http.StatusMisdirectedRequest},
		{"localhost", http.StatusOK},
		{"LocalHost.:9901", http.StatusOK},
		{"127.0.0.1:9901", http.StatusOK},
		{"127.3.2.1", http.StatusOK},
		{"[::1]:9901", http.StatusOK},
		{"[::1]", http.StatusOK},
	} {
		code, body := h.adminReq("GET", "/config/status", tc.host)
		if code != tc.want {
			t.Errorf("Host %q: %d, want %d", tc.host, code, tc.want)
		}
		if tc.want == http.StatusMisdirectedRequest {
			jsonError(t, body, "admin.allowed_hosts")
		}
	}
	// The page of the dashboard and the message bodies alike.
	if code, _ := h.adminReq("GET", "/dashboard/", "evil.example"); code != http.StatusMisdirectedRequest {
		t.Errorf("dashboard by a foreign Host: %d, want 421", code)
	}
}

func TestAdminAllowedHosts(t *testing.T) {
	up := newUpstream(t, status(200, "ok"))
	for _, tc := range []struct {
		rule, admin, host string
		want              int
	}{
		{"a listed name is accepted", "{allowed_hosts: [sidecar.internal]}", "Sidecar.Internal:9901", http.StatusOK},
		{"an unlisted name is not", "{allowed_hosts: [sidecar.internal]}", "evil.example", http.StatusMisdirectedRequest},
		{"loopback is always accepted", "{allowed_hosts: [sidecar.internal]}", "localhost:1", http.StatusOK},
		{"a token without a list accepts any host", "{token: s3cret}", "sidecar.internal", http.StatusOK},
		{"a token with a list keeps the list", "{token: s3cret, allowed_hosts: [a.internal]}", "b.internal", http.StatusMisdirectedRequest},
	} {
		t.Run(tc.rule, func(t *testing.T) {
			h := start(t, "admin: "+tc.admin+"\nroutes:\n  - {name: r, upstreams: ["+up.URL+"]}\n", proxy.Options{})
			if code, body := h.adminReq("GET", "/config/status", tc.host, "Authorization", "Bearer s3cret"); code != tc.want {
				t.Errorf("Host %q: %d %s, want %d", tc.host, code, body, tc.want)
			}
		})
	}
}

func TestAdminStateChangingRequests(t *testing.T) {
	up := newUpstream(t, status(200, "ok"))
	h, _ := startFile(t, "routes:\n  - {name: r, upstreams: ["+up.URL+"]}\n", proxy.Options{})
	own := "http://" + strings.TrimPrefix(h.admin, "http://")
	for _, tc := range []struct {
		rule     string
		hdr      []string
		want     int
		mentions string
	}{
		{"no content type", nil, 403, "Content-Type: application/json"},
		{"a form's content type", []string{"Content-Type", "application/x-www-form-urlencoded"}, 403, "Content-Type: application/json"},
		{"a simple request's text/plain", []string{"Content-Type", "text/plain"}, 403, "Content-Type: application/json"},
		{"cross-site fetch metadata", []string{"Content-Type", "application/json", "Sec-Fetch-Site", "cross-site"}, 403, "cross-origin"},
		{"same-site is another origin", []string{"Content-Type", "application/json", "Sec-Fetch-Site", "same-site"}, 403, "cross-origin"},
		{"a foreign Origin", []string{"Content-Type", "application/json", "Origin", "http://127.0.0.1:1"}, 403, "cross-origin"},
		{"a null Origin", []string{"Content-Type", "application/json", "Origin", "null"}, 403, "cross-origin"},
		{"the admin's own origin", []string{"Content-Type", "application/json", "Origin", own, "Sec-Fetch-Site", "same-origin"}, 200, ""},
		{"typed in by the user", []string{"Content-Type", "application/json", "Sec-Fetch-Site", "none"}, 200, ""},
		{"a client outside a browser", []string{"Content-Type", "application/json; charset=utf-8"}, 200, ""},
	} {
		before := h.srv.Status().Reloads
		code, body := h.adminReq("POST", "/config/reload", "", tc.hdr...)
		if code != tc.want {
			t.Errorf("%s: %d %s, want %d", tc.rule, code, body, tc.want)
		}
		reloaded := h.srv.Status().Reloads != before
		if reloaded != (tc.want == 200) {
			t.Errorf("%s: reloaded = %v", tc.rule, reloaded)
		}
		if tc.mentions != "" {
			jsonError(t, body, tc.mentions)
		}
	}
	if code, _ := h.adminReq("DELETE", "/dlq/01J00000000000000000000000", ""); code != 403 {
		t.Errorf("DELETE without a content type: %d, want 403", code)
	}
	// Reading needs no content type.
	if code, _ := h.adminReq("GET", "/dlq", "", "Sec-Fetch-Site", "cross-site"); code != 200 {
		t.Errorf("GET with cross-site fetch metadata: %d, want 200 (a page cannot read the answer)", code)
	}
}

func TestAdminPprof(t *testing.T) {
	up := newUpstream(t, status(200, "ok"))
	h := start(t, "admin: {token: s3cret}\nroutes:\n  - {name: r, upstreams: ["+up.URL+"]}\n", proxy.Options{})
	for _, p := range []string{"/debug/pprof/", "/debug/pprof/heap", "/debug/pprof/goroutine?debug=1"} {
		if code, _ := h.adminReq("GET", p, ""); code != http.StatusUnauthorized {
			t.Errorf("GET %s without the token: %d, want 401", p, code)
		}
		code, body := h.adminReq("GET", p, "", "Authorization", "Bearer s3cret")
		if code != http.StatusOK || body == "" {
			t.Errorf("GET %s with the token: %d, %d bytes", p, code, len(body))
		}
	}
	if _, body := h.adminReq("GET", "/debug/pprof/goroutine?debug=1", "", "Authorization", "Bearer s3cret"); !strings.Contains(body, "goroutine profile:") {
		t.Errorf("goroutine profile: %.200q", body)
	}
	if code, _ := h.adminReq("GET", "/debug/pprof/nope", "", "Authorization", "Bearer s3cret"); code != http.StatusNotFound {
		t.Errorf("unknown profile: %d, want 404", code)
	}
	if code, _ := h.adminReq("GET", "/debug/pprof/profile?seconds=0", "", "Authorization", "Bearer s3cret"); code != http.StatusBadRequest {
		t.Errorf("profile of 0 s: %d, want 400", code)
	}
	if code, body := h.adminReq("GET", "/debug/pprof/profile?seconds=1", "", "Authorization", "Bearer s3cret"); code != 200 || len(body) == 0 {
		t.Errorf("CPU profile: %d, %d bytes", code, len(body))
	}
}

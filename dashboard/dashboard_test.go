package dashboard_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sluice-go/sluice/dashboard"
)

// get runs one request through h and returns the recorded answer.
func get(t *testing.T, h http.Handler, method, target string, hdr ...string) *http.Response {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

func readBody(t *testing.T, res *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// checkCSP asserts the strict policy every answer carries.
func checkCSP(t *testing.T, where string, res *http.Response) {
	t.Helper()
	csp := res.Header.Get("Content-Security-Policy")
	if !strings.HasPrefix(csp, "default-src 'self';") {
		t.Errorf("%s: Content-Security-Policy = %q, want it to start with default-src 'self'", where, csp)
	}
	for _, bad := range []string{"unsafe-inline", "unsafe-eval", "*", "data:", "http:", "https:"} {
		if strings.Contains(csp, bad) {
			t.Errorf("%s: Content-Security-Policy %q allows %s", where, csp, bad)
		}
	}
	for _, want := range []string{"frame-ancestors 'none'", "object-src 'none'", "base-uri 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("%s: Content-Security-Policy %q lacks %s", where, csp, want)
		}
	}
	if got := res.Header.Get("X-Content-Type-Options"); got != "nosniff" {
		t.Errorf("%s: X-Content-Type-Options = %q, want nosniff", where, got)
	}
}

var linkRE = regexp.MustCompile(`(?:href|src)="([^"]+)"`)

func TestPage(t *testing.T) {
	h := dashboard.Handler(dashboard.Options{})
	res := get(t, h, "GET", "/dashboard/")
	page := readBody(t, res)
	if res.StatusCode != 200 {
		t.Fatalf("GET /dashboard/: status %d, want 200", res.StatusCode)
	}
	checkCSP(t, "page", res)
	for k, want := range map[string]string{
		"Content-Type":  "text/html; charset=utf-8",
		"Cache-Control": "no-cache",
	} {
		if got := res.Header.Get(k); got != want {
			t.Errorf("page: %s = %q, want %q", k, got, want)
		}
	}
	for _, want := range []string{
		`<html lang="en">`,
		`data-api=""`, `data-interval-ms="1000"`, `data-history-ms="120000"`, `data-dlq-limit="20"`,
		`id="score"`, `id="status"`, `id="error"`, `role="alert"`, `id="sparkline"`,
		`<code id="api-health">/health</code>`, `Authorization: Bearer`, `#token=`,
		"Score over the last 2 minutes, polled every 1 s.",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	// Nothing the policy would block, and nothing from elsewhere.
	for _, bad := range []*regexp.Regexp{
		regexp.MustCompile(`<script(?:\s[^>]*)?>[^<]`), // inline script
		regexp.MustCompile(`<script>`),
		regexp.MustCompile(`\sstyle=`), regexp.MustCompile(`<style`),
		regexp.MustCompile(`\son[a-z]+=`), // inline handlers
		regexp.MustCompile(`(?:href|src)="(?:https?:)?//`),
	} {
		if m := bad.FindString(page); m != "" {
			t.Errorf("page contains %q, which the policy forbids or which loads from elsewhere", m)
		}
	}

	// Every linked asset is served, with its type, and cached for good
	// under its versioned URL.
	links := linkRE.FindAllStringSubmatch(page, -1)
	types := map[string]string{
		"app.js":      "text/javascript; charset=utf-8",
		"app.css":     "text/css; charset=utf-8",
		"favicon.svg": "image/svg+xml",
	}
	seen := 0
	for _, l := range links {
		name, version, ok := strings.Cut(l[1], "?v=")
		want, asset := types[name]
		if !asset {
			continue
		}
		seen++
		if !ok || len(version) != 16 {
			t.Errorf("asset link %q has no content version", l[1])
		}
		res := get(t, h, "GET", "/dashboard/"+l[1])
		body := readBody(t, res)
		checkCSP(t, name, res)
		if res.StatusCode != 200 || res.Header.Get("Content-Type") != want || len(body) == 0 {
			t.Errorf("GET %s: status %d, Content-Type %q, %d bytes; want 200, %q", l[1], res.StatusCode, res.Header.Get("Content-Type"), len(body), want)
		}
		if got := res.Header.Get("Cache-Control"); got != "public, max-age=31536000, immutable" {
			t.Errorf("GET %s: Cache-Control = %q, want immutable", l[1], got)
		}
		// Without the version (or with an old one) it must be revalidated.
		for _, u := range []string{"/dashboard/" + name, "/dashboard/" + name + "?v=0123456789abcdef"} {
			if got := get(t, h, "GET", u).Header.Get("Cache-Control"); got != "no-cache" {
				t.Errorf("GET %s: Cache-Control = %q, want no-cache", u, got)
			}
		}
		etag := res.Header.Get("ETag")
		if etag != `"`+version+`"` {
			t.Errorf("GET %s: ETag = %q, want %q", l[1], etag, `"`+version+`"`)
		}
		if res := get(t, h, "GET", "/dashboard/"+name, "If-None-Match", etag); res.StatusCode != http.StatusNotModified {
			t.Errorf("GET %s with If-None-Match: status %d, want 304", name, res.StatusCode)
		}
	}
	if seen != len(types) {
		t.Errorf("page links %d of the %d assets: %q", seen, len(types), links)
	}
}

func TestScriptIsSafe(t *testing.T) {
	h := dashboard.Handler(dashboard.Options{})
	js := readBody(t, get(t, h, "GET", "/dashboard/app.js"))
	for _, bad := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function", "http://", "https://", ".style."} {
		if strings.Contains(js, bad) {
			t.Errorf("app.js contains %q: the page must write text only, and load and evaluate nothing", bad)
		}
	}
	for _, want := range []string{`"/health"`, `"/dlq?limit="`, `"Bearer "`, "sessionStorage", "history.replaceState"} {
		if !strings.Contains(js, want) {
			t.Errorf("app.js lacks %s", want)
		}
	}
	css := readBody(t, get(t, h, "GET", "/dashboard/app.css"))
	if strings.Contains(css, "@import") || strings.Contains(css, "url(") {
		t.Errorf("app.css loads something: @import or url()")
	}
}

func TestNotFoundAndMethods(t *testing.T) {
	h := dashboard.Handler(dashboard.Options{})
	for i, tc := range []struct {
		method, target string
		code           int
		location       string
	}{
		{"GET", "/dashboard/", 200, ""},
		{"GET", "/dashboard/index.html", 200, ""},
		{"GET", "/dashboard/app.js", 200, ""},
		{"GET", "/dashboard/nope.js", 404, ""},
		{"GET", "/dashboard/assets/app.js", 404, ""},
		{"GET", "/dashboard/app.js/", 404, ""},
		{"GET", "/dashboard/APP.JS", 404, ""},
		{"GET", "/dashboard/.%2e/go.mod", 404, ""},
		{"GET", "/elsewhere", 404, ""},
		{"GET", "/", 404, ""},
		{"GET", "/dashboard", 301, "/dashboard/"},
		{"GET", "/dashboard?x=1", 301, "/dashboard/?x=1"},
		{"HEAD", "/dashboard/", 200, ""},
		{"POST", "/dashboard/", 405, ""},
		{"DELETE", "/dashboard/app.js", 405, ""},
	} {
		res := get(t, h, tc.method, tc.target)
		body := readBody(t, res)
		if res.StatusCode != tc.code {
			t.Errorf("step %d: %s %s: status %d, want %d", i, tc.method, tc.target, res.StatusCode, tc.code)
		}
		if got := res.Header.Get("Location"); got != tc.location {
			t.Errorf("step %d: %s %s: Location %q, want %q", i, tc.method, tc.target, got, tc.location)
		}
		checkCSP(t, tc.method+" "+tc.target, res)
		switch tc.code {
		case 404:
			if strings.Contains(body, "<html") || res.Header.Get("Cache-Control") == "" && strings.HasPrefix(tc.target, "/dashboard/") {
				t.Errorf("step %d: %s %s: a 404 must be a short text, not cached: %q, Cache-Control %q", i, tc.method, tc.target, body, res.Header.Get("Cache-Control"))
			}
		case 405:
			if got := res.Header.Get("Allow"); got != "GET, HEAD" {
				t.Errorf("step %d: %s %s: Allow %q, want GET, HEAD", i, tc.method, tc.target, got)
			}
		}
		if tc.method == "HEAD" && (body != "" || res.Header.Get("Content-Length") == "" || res.Header.Get("Content-Length") == "0") {
			t.Errorf("step %d: HEAD: body %d bytes, Content-Length %q; want no body and the page's length", i, len(body), res.Header.Get("Content-Length"))
		}
	}
}

func TestOptions(t *testing.T) {
	h := dashboard.Handler(dashboard.Options{
		BasePath: "/ops/dash/",
		API:      "http://admin.internal:9901/sluice/",
		Interval: 250 * time.Millisecond,
		History:  5 * time.Minute,
		DLQLimit: -1,
	})
	if res := get(t, h, "GET", "/dashboard/"); res.StatusCode != 404 {
		t.Errorf("GET /dashboard/ under BasePath /ops/dash/: status %d, want 404", res.StatusCode)
	}
	res := get(t, h, "GET", "/ops/dash/")
	page := readBody(t, res)
	if res.StatusCode != 200 {
		t.Fatalf("GET /ops/dash/: status %d", res.StatusCode)
	}
	for _, want := range []string{
		`data-api="http://admin.internal:9901/sluice"`, `data-interval-ms="250"`,
		`data-history-ms="300000"`, `data-dlq-limit="0"`,
		"Score over the last 5 minutes, polled every 250ms.",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	csp := res.Header.Get("Content-Security-Policy")
	if !strings.HasSuffix(csp, "; connect-src 'self' http://admin.internal:9901") || !strings.HasPrefix(csp, "default-src 'self';") {
		t.Errorf("Content-Security-Policy = %q, want default-src 'self' and the API's origin in connect-src", csp)
	}
	if res := get(t, h, "GET", "/ops/dash/app.css"); res.StatusCode != 200 {
		t.Errorf("GET /ops/dash/app.css: status %d", res.StatusCode)
	}

	// A path API stays on this origin: no connect-src is added, and the
	// value reaches the page escaped.
	h = dashboard.Handler(dashboard.Options{API: `/admin"x`})
	res = get(t, h, "GET", "/dashboard/")
	page = readBody(t, res)
	if csp := res.Header.Get("Content-Security-Policy"); strings.Contains(csp, "connect-src") {
		t.Errorf("Content-Security-Policy = %q for a path API, want no connect-src", csp)
	}
	if !strings.Contains(page, `data-api="/admin&#34;x"`) {
		t.Errorf("API not escaped in the page")
	}
}

func TestInvalidOptions(t *testing.T) {
	for i, tc := range []struct {
		opts dashboard.Options
		want string
	}{
		{dashboard.Options{BasePath: "dashboard/"}, `dashboard: Options.BasePath must start and end with "/", got "dashboard/"`},
		{dashboard.Options{BasePath: "/dashboard"}, `dashboard: Options.BasePath must start and end with "/", got "/dashboard"`},
		{dashboard.Options{API: "ftp://x/"}, `dashboard: Options.API must be an http or https URL or a path, got "ftp://x/"`},
		{dashboard.Options{API: "http:///nohost"}, `dashboard: Options.API must be an http or https URL or a path, got "http:///nohost"`},
		{dashboard.Options{API: "/admin?x=1"}, `dashboard: Options.API must have no query or fragment, got "/admin?x=1"`},
		{dashboard.Options{API: "%zz"}, `dashboard: Options.API must be a URL or a path, got "%zz"`},
		{dashboard.Options{Interval: 10 * time.Millisecond}, "dashboard: Options.Interval must be 0 or >= 100ms, got 10ms"},
		{dashboard.Options{Interval: -time.Second}, "dashboard: Options.Interval must be 0 or >= 100ms, got -1s"},
		{dashboard.Options{History: -time.Second}, "dashboard: Options.History must be >= 0, got -1s"},
		{dashboard.Options{DLQLimit: 1001}, "dashboard: Options.DLQLimit must be <= 1000, got 1001"},
	} {
		h, err := dashboard.New(tc.opts)
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) || h != nil {
			t.Errorf("step %d: New(%+v) = %v, %v; want error %q", i, tc.opts, h, err, tc.want)
		}
	}
	defer func() {
		if r := recover(); r == nil {
			t.Error("Handler with invalid Options did not panic")
		}
	}()
	dashboard.Handler(dashboard.Options{BasePath: "x"})
}

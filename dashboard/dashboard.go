package dashboard

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Defaults applied to zero Options fields.
const (
	DefaultBasePath = "/dashboard/"
	DefaultInterval = time.Second
	DefaultHistory  = 2 * time.Minute
	DefaultDLQLimit = 20
)

// Limits on Options, checked by New.
const (
	// MinInterval is the shortest poll interval New accepts: a page
	// left open must not hammer the admin API.
	MinInterval = 100 * time.Millisecond
	// MaxDLQLimit is the largest listing the admin API's GET /dlq serves.
	MaxDLQLimit = 1000
)

// Options configures the dashboard. The zero Options is valid: the page at
// /dashboard/ polls /health and /dlq on the same origin every second.
type Options struct {
	// BasePath is the path the handler is mounted at, without stripping:
	// the page is served at BasePath and its assets below it. It must
	// start and end with "/". If empty, "/dashboard/".
	BasePath string

	// API is the URL prefix of the admin API that the page polls:
	// {API}/health and {API}/dlq. It is a path ("/admin"), a path relative
	// to the page (".."), or an absolute http or https URL on another
	// origin, which is then added to the Content-Security-Policy's
	// connect-src. If empty, the root of the page's origin ("/health").
	API string

	// Interval is how often the page polls. If zero, 1 s; otherwise at
	// least MinInterval.
	Interval time.Duration

	// History is the span of the score sparkline that the page keeps in
	// memory. If zero, 2 minutes.
	History time.Duration

	// DLQLimit is how many dead-letter messages the page asks GET
	// {API}/dlq for, at most MaxDLQLimit. If zero, 20. If negative, the
	// page does not ask for the listing and shows only the queue
	// statistics of the health document.
	DLQLimit int
}

// assetFS holds the page: index.html is a template (the options go into
// data attributes), the rest is served as it is.
//
//go:embed assets
var assetFS embed.FS

// contentType returns the Content-Type of an asset by its name, so the
// answer does not depend on the machine's MIME tables.
func contentType(name string) string {
	switch {
	case strings.HasSuffix(name, ".css"):
		return "text/css; charset=utf-8"
	case strings.HasSuffix(name, ".js"):
		return "text/javascript; charset=utf-8"
	case strings.HasSuffix(name, ".svg"):
		return "image/svg+xml"
	}
	return "application/octet-stream"
}

// asset is one file the handler serves, ready to write.
type asset struct {
	body  []byte
	ctype string
	etag  string // quoted, as the header carries it
	hash  string // the version in the page's ?v= links
}

func newAsset(body []byte, ctype string) asset {
	sum := sha256.Sum256(body)
	h := hex.EncodeToString(sum[:8])
	return asset{body: body, ctype: ctype, etag: `"` + h + `"`, hash: h}
}

// dashboard is the http.Handler that New returns.
type dashboard struct {
	base   string
	index  asset
	assets map[string]asset // by name below base
	csp    string
}

// New validates opts, applies the defaults and returns the dashboard's
// handler. The page, its script and style sheet are built once here; the
// handler only writes bytes.
func New(opts Options) (http.Handler, error) {
	o, err := opts.resolve()
	if err != nil {
		return nil, err
	}
	d := &dashboard{base: o.BasePath, assets: map[string]asset{}}

	files, err := fs.Sub(assetFS, "assets")
	if err != nil {
		return nil, err
	}
	entries, err := fs.ReadDir(files, ".")
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		name := e.Name()
		if name == "index.html" {
			continue
		}
		body, err := fs.ReadFile(files, name)
		if err != nil {
			return nil, err
		}
		d.assets[name] = newAsset(body, contentType(name))
	}

	tmpl, err := template.ParseFS(files, "index.html")
	if err != nil {
		return nil, err
	}
	var page bytes.Buffer
	err = tmpl.Execute(&page, map[string]any{
		"API":        o.API,
		"IntervalMS": o.Interval.Milliseconds(),
		"HistoryMS":  o.History.Milliseconds(),
		"DLQLimit":   o.DLQLimit,
		"Interval":   human(o.Interval),
		"History":    human(o.History),
		"CSS":        "app.css?v=" + d.assets["app.css"].hash,
		"JS":         "app.js?v=" + d.assets["app.js"].hash,
		"Icon":       "favicon.svg?v=" + d.assets["favicon.svg"].hash,
	})
	if err != nil {
		return nil, err
	}
	d.index = newAsset(page.Bytes(), "text/html; charset=utf-8")

	// Everything is embedded and served from this origin, so 'self' is
	// all the page needs; the API may live on another origin.
	d.csp = "default-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'; object-src 'none'"
	if origin := apiOrigin(o.API); origin != "" {
		d.csp += "; connect-src 'self' " + origin
	}
	return d, nil
}

// Handler is New for options known to be valid, such as constants in a
// program: it panics if opts are invalid, as template.Must does.
func Handler(opts Options) http.Handler {
	h, err := New(opts)
	if err != nil {
		panic(err)
	}
	return h
}

// resolve validates o and fills its zero fields.
func (o Options) resolve() (Options, error) {
	if o.BasePath == "" {
		o.BasePath = DefaultBasePath
	}
	if !strings.HasPrefix(o.BasePath, "/") || !strings.HasSuffix(o.BasePath, "/") {
		return o, fmt.Errorf("dashboard: Options.BasePath must start and end with \"/\", got %q", o.BasePath)
	}
	if o.API != "" {
		u, err := url.Parse(o.API)
		switch {
		case err != nil:
			return o, fmt.Errorf("dashboard: Options.API must be a URL or a path, got %q: %v", o.API, err)
		case u.IsAbs() && ((u.Scheme != "http" && u.Scheme != "https") || u.Host == ""):
			return o, fmt.Errorf("dashboard: Options.API must be an http or https URL or a path, got %q", o.API)
		case u.RawQuery != "" || u.Fragment != "":
			return o, fmt.Errorf("dashboard: Options.API must have no query or fragment, got %q", o.API)
		}
		o.API = strings.TrimRight(o.API, "/")
	}
	switch {
	case o.Interval == 0:
		o.Interval = DefaultInterval
	case o.Interval < MinInterval:
		return o, fmt.Errorf("dashboard: Options.Interval must be 0 or >= %v, got %v", MinInterval, o.Interval)
	}
	switch {
	case o.History == 0:
		o.History = DefaultHistory
	case o.History < 0:
		return o, fmt.Errorf("dashboard: Options.History must be >= 0, got %v", o.History)
	}
	switch {
	case o.DLQLimit == 0:
		o.DLQLimit = DefaultDLQLimit
	case o.DLQLimit > MaxDLQLimit:
		return o, fmt.Errorf("dashboard: Options.DLQLimit must be <= %d, got %d", MaxDLQLimit, o.DLQLimit)
	case o.DLQLimit < 0:
		o.DLQLimit = 0 // the page reads 0 as "do not list"
	}
	return o, nil
}

// human writes a duration for the page's prose: "2 minutes", "1 s".
func human(d time.Duration) string {
	switch {
	case d%time.Minute == 0 && d >= time.Minute:
		if n := d / time.Minute; n != 1 {
			return strconv.FormatInt(int64(n), 10) + " minutes"
		}
		return "minute"
	case d%time.Second == 0:
		return strconv.FormatInt(int64(d/time.Second), 10) + " s"
	}
	return d.String()
}

// apiOrigin returns the origin of an absolute API URL, or "" for a path.
func apiOrigin(api string) string {
	u, err := url.Parse(api)
	if err != nil || !u.IsAbs() {
		return ""
	}
	return u.Scheme + "://" + u.Host
}

// ServeHTTP serves the page at the base path and its assets below it.
func (d *dashboard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", d.csp)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")

	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		h.Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if r.URL.Path+"/" == d.base {
		// The page's relative links need the trailing slash.
		target := d.base
		if r.URL.RawQuery != "" {
			target += "?" + r.URL.RawQuery
		}
		http.Redirect(w, r, target, http.StatusMovedPermanently)
		return
	}
	name, ok := strings.CutPrefix(r.URL.Path, d.base)
	if !ok {
		http.NotFound(w, r)
		return
	}
	if name == "" || name == "index.html" {
		// no-cache: revalidate every time, so a new binary's page (and
		// its new asset versions) is picked up at once.
		h.Set("Cache-Control", "no-cache")
		d.serve(w, r, d.index)
		return
	}
	a, ok := d.assets[name]
	if !ok {
		h.Set("Cache-Control", "no-store")
		http.NotFound(w, r)
		return
	}
	if r.URL.Query().Get("v") == a.hash {
		// The page links each asset with its content hash, so this URL
		// always names these bytes.
		h.Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		h.Set("Cache-Control", "no-cache")
	}
	d.serve(w, r, a)
}

// serve writes a, answering conditional requests with 304.
func (d *dashboard) serve(w http.ResponseWriter, r *http.Request, a asset) {
	h := w.Header()
	h.Set("Content-Type", a.ctype)
	h.Set("ETag", a.etag)
	if match := r.Header.Get("If-None-Match"); match != "" && etagMatch(match, a.etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h.Set("Content-Length", strconv.Itoa(len(a.body)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(a.body)
	}
}

// etagMatch reports whether an If-None-Match list names etag (weak
// comparison, as RFC 9110 asks for If-None-Match).
func etagMatch(list, etag string) bool {
	for _, t := range strings.Split(list, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == "*" || t == etag {
			return true
		}
	}
	return false
}

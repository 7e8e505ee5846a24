// Package dashboard serves the sidecar's live dashboard: one page, for an
// operator's browser, that shows how the resilience layer is holding up.
//
// The page is self-contained. Its HTML, style sheet and script are embedded
// in the binary (go:embed), written in plain HTML, CSS and JavaScript with no
// build step, and load nothing from anywhere else, so it works on a machine
// without internet access. Every response carries a strict
// Content-Security-Policy (default-src 'self', no inline script or style).
//
// # What the page shows
//
// Every Options.Interval (1 s) the page fetches {API}/health, the JSON
// document of package health (see docs/health.md), and renders it: the
// overall score and status in colour and words (healthy, degraded,
// critical), a sparkline of the score over the last Options.History (2
// minutes, kept in the page's memory), the active alerts, each circuit
// breaker's state and the time until its next probe, each bulkhead's
// utilisation and recent rejection rate, the retry policies' success rates,
// the rate limiters, the dead-letter queues' depth and oldest message, and
// the probes. A 503 from /health is the report of a critical layer, not an
// error. When {API}/health cannot be fetched (network error, timeout, or an
// answer that is not a report) a banner says so, and the last figures stay
// on screen marked as old.
//
// Unless Options.DLQLimit is negative, the page also fetches
// {API}/dlq?limit=N, the admin API's dead-letter listing
// ({"messages": [...], "next": "..."}), and lists the oldest messages. If
// the server answers 404, the page stops asking and shows only the queue
// statistics of the health report.
//
// # Mounting
//
// Handler serves the page at Options.BasePath ("/dashboard/") and its
// assets below it; mount it there without stripping the prefix:
//
//	mux.Handle("/dashboard/", dashboard.Handler(dashboard.Options{}))
//	mux.Handle("GET /{$}", http.RedirectHandler("/dashboard/", http.StatusFound))
//
// The page is served with Cache-Control: no-cache (revalidated with its
// ETag); its assets are linked by content hash and cached for a year.
//
// # The bearer token
//
// When the admin API requires "Authorization: Bearer <token>", open the
// page with the token in the URL fragment:
//
//	http://127.0.0.1:9901/dashboard/#token=s3cret
//
// The fragment never leaves the browser (it is not sent to the server nor
// in a Referer). The page sends the token with each API request, keeps it
// in sessionStorage, so that a reload of the tab keeps working and closing
// the tab forgets it, and removes it from the address bar. Opening the page
// with "#token=" (empty) forgets it. The page itself needs no token: it
// holds no data, only the code that asks the API.
package dashboard

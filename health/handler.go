package health

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
)

// Handler serves GET /health (JSONHandler) and GET /health/report
// (ReportHandler), for mounting on an admin mux as it is.
func (m *Monitor) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /health", m.JSONHandler())
	mux.Handle("GET /health/report", m.ReportHandler())
	return mux
}

// JSONHandler evaluates the health on each request and answers with the
// JSON document: 200 while healthy or degraded, 503 when critical, so that
// a load balancer or orchestrator can act on the status code alone.
func (m *Monitor) JSONHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rep := m.Evaluate(r.Context())
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			http.Error(w, "health: cannot encode report", http.StatusInternalServerError)
			return
		}
		write(w, "application/json", rep.Status.HTTPStatus(), b.Bytes())
	})
}

// ReportHandler evaluates the health on each request and answers with the
// text report, always with 200: it is for reading, and a person reading it
// during an outage should not have a client refuse it.
func (m *Monitor) ReportHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rep := m.Evaluate(r.Context())
		var b bytes.Buffer
		_ = rep.WriteText(&b)
		write(w, "text/plain; charset=utf-8", http.StatusOK, b.Bytes())
	})
}

func write(w http.ResponseWriter, ctype string, code int, body []byte) {
	h := w.Header()
	h.Set("Content-Type", ctype)
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(code)
	_, _ = w.Write(body)
}

package proxy

import (
	"io"
	"net/http"
)

// serveProxy routes one request.
func (s *Server) serveProxy(w http.ResponseWriter, r *http.Request) {
	s.inflight.Add(1)
	defer s.inflight.Add(-1)
	rt := s.live.Load().match(r)
	if rt == nil {
		h := w.Header()
		h.Set("Content-Type", "text/plain; charset=utf-8")
		h.Set("X-Content-Type-Options", "nosniff")
		w.WriteHeader(http.StatusNotFound)
		_, _ = io.WriteString(w, "sluice: no route matches\n")
		return
	}
	rec := s.observe(w, rt) // the request metrics: see observe.go
	defer rec.done()
	rt.serve(rec, r)
}

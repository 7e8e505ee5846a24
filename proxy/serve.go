package proxy

import (
	"io"
	"net/http"
)

// serveProxy routes one request. A path no route takes, read with "." and
// ".." resolved, gets 404; a path a route takes but that an upstream could
// read otherwise (see ambiguousPath) gets 400, so that what is forwarded is
// exactly the path that was matched.
func (s *Server) serveProxy(w http.ResponseWriter, r *http.Request) {
	s.inflight.Add(1)
	defer s.inflight.Add(-1)
	rt := s.live.Load().match(r)
	if rt == nil {
		h := w.Header()
		h.Set("Content-Type", "text/plain; charset=utf-8")
		h.Set("X-Content-Type-Options", "nosniff")
		closeUnread(w, r)
		w.WriteHeader(http.StatusNotFound)
		_, _ = io.WriteString(w, "sluice: no route matches\n")
		return
	}
	if ambiguousPath(r) {
		h := w.Header()
		h.Set("Content-Type", "text/plain; charset=utf-8")
		h.Set("X-Content-Type-Options", "nosniff")
		closeUnread(w, r)
		w.WriteHeader(http.StatusBadRequest)
		_, _ = io.WriteString(w, "sluice: ambiguous request path\n")
		return
	}
	rec := s.observe(w, rt) // the request metrics: see observe.go
	defer rec.done()
	rt.serve(rec, r)
}

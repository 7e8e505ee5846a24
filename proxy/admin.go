package proxy

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"mime"
	"net"
	"net/http"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/sluice-go/sluice/dashboard"
	"github.com/sluice-go/sluice/dlq"
	"github.com/sluice-go/sluice/dlq/dlqhttp"
	"github.com/sluice-go/sluice/internal/jsonhttp"
	"github.com/sluice-go/sluice/metrics"
)

// AdminHandler returns the admin API:
//
//	GET    /metrics             Prometheus metrics of the registry, health and DLQ
//	GET    /health              the health report as JSON (503 when critical)
//	GET    /health/report       the health report as text
//	       /dlq, /dlq/...       the dead-letter queue's API (dlqhttp.Handler): list, show, discard, replay, stats
//	GET    /config              the configuration in force as YAML, secrets redacted
//	GET    /config/status       its version and the outcome of the last reload
//	POST   /config/reload       read the configuration file again and apply it
//	GET    /dashboard/          the live dashboard (GET / redirects there)
//	GET    /debug/pprof/        runtime profiles for go tool pprof (profile, trace, heap, goroutine...)
//
// Every request's Host must be a loopback name or address (localhost,
// 127.0.0.0/8, ::1, any port) or one of admin.allowed_hosts, or it gets
// 421; with a token and no allowed_hosts any host is accepted. A POST,
// PUT, PATCH or DELETE gets 403 when it comes from a page on another
// origin (Sec-Fetch-Site or Origin says so) or lacks "Content-Type:
// application/json", a header that a cross-origin form or simple request
// cannot send. So a web page the operator visits can neither change the
// server's state nor, through a DNS name rebound to 127.0.0.1, read it.
//
// With admin.token set, every request must carry "Authorization: Bearer
// <token>"; others get 401. The dashboard's static page is the exception: it
// holds no data, and reads the token from its URL fragment (#token=...) to
// call the API. The token is compared in constant time, and
// read from the configuration in force, so a reload can change it.
func (s *Server) AdminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", s.metrics)
	hh := s.monitor.Handler()
	mux.Handle("GET /health", hh)
	mux.Handle("GET /health/report", hh)
	dh := dlqhttp.Handler(s.store, replayers{s})
	mux.Handle("/dlq", dh)
	mux.Handle("/dlq/", dh)
	mux.HandleFunc("GET /config", s.adminConfig)
	mux.HandleFunc("GET /config/status", func(w http.ResponseWriter, r *http.Request) {
		jsonhttp.Write(w, http.StatusOK, s.Status())
	})
	mux.HandleFunc("POST /config/reload", s.adminReload)
	pprofRoutes(mux)
	dash := dashboard.Handler(dashboard.Options{})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.guard(w, r) {
			return
		}
		if r.URL.Path == "/" && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
			http.Redirect(w, r, dashboard.DefaultBasePath, http.StatusFound)
			return
		}
		if r.URL.Path == "/dashboard" || strings.HasPrefix(r.URL.Path, dashboard.DefaultBasePath) {
			dash.ServeHTTP(w, r)
			return
		}
		if !s.authorized(r) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="sluice admin"`)
			jsonhttp.Write(w, http.StatusUnauthorized, map[string]string{"error": "unauthorized"})
			return
		}
		if stateChanging(r.Method) && !jsonContent(r) {
			jsonhttp.Error(w, http.StatusForbidden, r.Method+" to the admin API needs \"Content-Type: application/json\", which a cross-origin form or simple request cannot send")
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// crossOrigin refuses the state-changing requests of a page on another
// origin: those whose Sec-Fetch-Site is not same-origin or none, and,
// from browsers that send no Sec-Fetch-Site, those whose Origin is not the
// admin API's own.
var crossOrigin = http.NewCrossOriginProtection()

// guard applies the defences against web pages that the operator's
// browser visits, which can send requests to a loopback admin API: a
// Host header that is not a loopback name or address (or one of
// admin.allowed_hosts) gets 421, since a page that rebinds its own DNS
// name to 127.0.0.1 sends its own name; and a state-changing request from
// another origin gets 403. It reports whether the request may go on.
func (s *Server) guard(w http.ResponseWriter, r *http.Request) bool {
	if !s.hostAllowed(r.Host) {
		jsonhttp.Error(w, http.StatusMisdirectedRequest, "the admin API does not answer to host "+strconv.Quote(r.Host)+
			"; reach it by a loopback address or localhost, or list the name in admin.allowed_hosts")
		return false
	}
	if err := crossOrigin.Check(r); err != nil {
		jsonhttp.Error(w, http.StatusForbidden, "cross-origin "+r.Method+" refused: the admin API changes state only for requests from its own origin or from outside a browser")
		return false
	}
	return true
}

// hostAllowed reports whether the admin API answers to a request whose
// Host header is host: a loopback name or address with any port, a name
// of admin.allowed_hosts, or, when a token is configured and no
// allowed_hosts are, any host (the token is then what keeps a page out).
func (s *Server) hostAllowed(host string) bool {
	a := s.Config().Admin
	if a.Token != "" && len(a.AllowedHosts) == 0 {
		return true
	}
	name := host
	if h, _, err := net.SplitHostPort(host); err == nil {
		name = h
	}
	name = strings.TrimSuffix(strings.ToLower(strings.TrimSuffix(strings.TrimPrefix(name, "["), "]")), ".")
	if name == "" {
		return false
	}
	if isLoopbackHost(name) {
		return true
	}
	for _, allowed := range a.AllowedHosts {
		if strings.TrimSuffix(strings.TrimPrefix(allowed, "["), "]") == name {
			return true
		}
	}
	return false
}

// stateChanging reports whether method may change the server's state.
func stateChanging(method string) bool {
	switch method {
	case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
		return true
	}
	return false
}

// jsonContent reports whether r declares a JSON body.
func jsonContent(r *http.Request) bool {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return err == nil && mt == "application/json"
}

// authorized checks the bearer token. Both sides are hashed first, so the
// comparison takes the same time whatever the length of the guess.
func (s *Server) authorized(r *http.Request) bool {
	token := s.Config().Admin.Token
	if token == "" {
		return true
	}
	auth := r.Header.Get("Authorization")
	scheme, got, _ := strings.Cut(auth, " ")
	want := sha256.Sum256([]byte(token))
	have := sha256.Sum256([]byte(strings.TrimSpace(got)))
	same := subtle.ConstantTimeCompare(want[:], have[:]) == 1
	return same && strings.EqualFold(scheme, "Bearer")
}

// replayers lets the DLQ API find the replayer of a queue in force: the
// Server swaps them on reload, so the API looks them up per request.
type replayers struct{ s *Server }

// Replayer returns the replayer of a queue, or nil if no route queues to it.
func (rp replayers) Replayer(queue string) *dlq.Replayer {
	rp.s.mu.Lock()
	defer rp.s.mu.Unlock()
	if slot, ok := rp.s.replayers[queue]; ok {
		return slot.r
	}
	return nil
}

// Queues returns the queues that routes queue to.
func (rp replayers) Queues() []string {
	rp.s.mu.Lock()
	defer rp.s.mu.Unlock()
	out := make([]string, 0, len(rp.s.replayers))
	for name := range rp.s.replayers {
		out = append(out, name)
	}
	return out
}

// QueueStats returns every queue that holds messages or has a replayer, as
// GET /dlq/stats shows them.
func (s *Server) QueueStats(ctx context.Context) ([]dlqhttp.QueueView, error) {
	return dlqhttp.Stats(ctx, s.store, replayers{s})
}

// replayStats returns the counters of every replayer, for the metrics.
func (s *Server) replayStats() []metrics.ReplayStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]metrics.ReplayStats, 0, len(s.replayers))
	for name, slot := range s.replayers {
		out = append(out, metrics.ReplayStats{Queue: name, Stats: slot.r.Stats()})
	}
	return out
}

func (s *Server) adminConfig(w http.ResponseWriter, r *http.Request) {
	data, err := yaml.Marshal(s.Config().Redacted())
	if err != nil {
		jsonhttp.Error(w, http.StatusInternalServerError, "cannot encode the configuration")
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/yaml; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(data)
}

// adminReload serves POST /config/reload: 200 with the new Status, or 422
// with the errors of a refused configuration (the old one keeps running).
func (s *Server) adminReload(w http.ResponseWriter, r *http.Request) {
	err := s.ReloadFile()
	if err == nil {
		jsonhttp.Write(w, http.StatusOK, s.Status())
		return
	}
	code := http.StatusUnprocessableEntity
	if errors.Is(err, ErrNoConfigFile) {
		code = http.StatusConflict
	}
	jsonhttp.Write(w, code, struct {
		Error  string `json:"error"`
		Status Status `json:"status"`
	}{"configuration refused; the previous one keeps running", s.Status()})
}

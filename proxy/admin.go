package proxy

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"mime"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"

	"github.com/sluice-go/sluice/config"
	"github.com/sluice-go/sluice/dashboard"
	"github.com/sluice-go/sluice/dlq"
	"github.com/sluice-go/sluice/metrics"
)

// AdminHandler returns the admin API:
//
//	GET    /metrics             Prometheus metrics of the registry, health and DLQ
//	GET    /health              the health report as JSON (503 when critical)
//	GET    /health/report       the health report as text
//	GET    /dlq                 dead-letter messages, oldest first, paged (queue, state, after, limit)
//	GET    /dlq/stats           each queue's depth and its replayer's counts
//	GET    /dlq/{id}            one message (body=1 adds its body)
//	DELETE /dlq/{id}            discard a message
//	POST   /dlq/{id}/replay     replay one message now
//	POST   /dlq/replay          replay a queue's messages now (queue, state, limit; all queues if no queue)
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
	mux.HandleFunc("GET /dlq", s.adminList)
	mux.HandleFunc("GET /dlq/stats", s.adminQueueStats)
	mux.HandleFunc("GET /dlq/{id}", s.adminGet)
	mux.HandleFunc("DELETE /dlq/{id}", s.adminDelete)
	mux.HandleFunc("POST /dlq/{id}/replay", s.adminReplayOne)
	mux.HandleFunc("POST /dlq/replay", s.adminReplay)
	mux.HandleFunc("GET /config", s.adminConfig)
	mux.HandleFunc("GET /config/status", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.Status())
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
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "unauthorized"})
			return
		}
		if stateChanging(r.Method) && !jsonContent(r) {
			writeError(w, http.StatusForbidden, r.Method+" to the admin API needs \"Content-Type: application/json\", which a cross-origin form or simple request cannot send")
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
		writeError(w, http.StatusMisdirectedRequest, "the admin API does not answer to host "+strconv.Quote(r.Host)+
			"; reach it by a loopback address or localhost, or list the name in admin.allowed_hosts")
		return false
	}
	if err := crossOrigin.Check(r); err != nil {
		writeError(w, http.StatusForbidden, "cross-origin "+r.Method+" refused: the admin API changes state only for requests from its own origin or from outside a browser")
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

func writeJSON(w http.ResponseWriter, code int, v any) {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		http.Error(w, "cannot encode the answer", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Length", strconv.Itoa(len(data)+1))
	w.WriteHeader(code)
	_, _ = w.Write(append(data, '\n'))
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}

// MessageView is a dead-letter message as the admin API shows it: the
// queued request (credentials redacted) and its replay history.
type MessageView struct {
	ID           string              `json:"id"`
	Queue        string              `json:"queue"`
	State        string              `json:"state"`
	Method       string              `json:"method,omitempty"`
	URI          string              `json:"uri,omitempty"`
	Host         string              `json:"host,omitempty"`
	Headers      map[string][]string `json:"headers,omitempty"`
	BodyBytes    int                 `json:"body_bytes"`
	Body         *string             `json:"body,omitempty"`
	BodyBase64   *string             `json:"body_base64,omitempty"`
	Attempts     int                 `json:"attempts"`
	Replays      int                 `json:"replays"`
	Enqueued     time.Time           `json:"enqueued"`
	FirstFailure time.Time           `json:"first_failure"`
	LastFailure  time.Time           `json:"last_failure"`
	NextReplay   time.Time           `json:"next_replay"`
	LastError    string              `json:"last_error,omitempty"`
}

// redactedHeaders are shown as "REDACTED" by the admin API: they are
// stored so that the replay is authorised, but are not for operators' eyes.
func redactedHeader(name string) bool {
	switch name {
	case "Authorization", "Proxy-Authorization", "Cookie", "X-Api-Key", "X-Auth-Token":
		return true
	}
	return false
}

func viewOf(m dlq.Message, withBody bool) MessageView {
	v := MessageView{
		ID:           m.ID.String(),
		Queue:        m.Queue,
		State:        m.State.String(),
		Method:       m.Headers[metaMethod],
		URI:          m.Headers[metaURI],
		Host:         m.Headers[metaHost],
		BodyBytes:    len(m.Payload),
		Attempts:     m.Attempts,
		Replays:      m.Replays,
		Enqueued:     m.Enqueued(),
		FirstFailure: m.FirstFailure,
		LastFailure:  m.LastFailure,
		NextReplay:   m.NextReplay,
		LastError:    m.LastError,
	}
	for k, val := range m.Headers {
		name, ok := strings.CutPrefix(k, metaHeader)
		if !ok {
			continue
		}
		if v.Headers == nil {
			v.Headers = map[string][]string{}
		}
		if redactedHeader(name) {
			v.Headers[name] = []string{config.RedactedValue}
			continue
		}
		v.Headers[name] = strings.Split(val, "\n")
	}
	if withBody {
		if utf8.Valid(m.Payload) {
			s := string(m.Payload)
			v.Body = &s
		} else {
			s := base64.StdEncoding.EncodeToString(m.Payload)
			v.BodyBase64 = &s
		}
	}
	return v
}

func parseState(s string) (dlq.State, bool) {
	switch s {
	case "", "any":
		return dlq.StateAny, true
	case "ready":
		return dlq.StateReady, true
	case "parked":
		return dlq.StateParked, true
	}
	return 0, false
}

// adminList serves GET /dlq: {"messages": [...], "next": "<id>"}, where
// next (empty at the end) is the after= of the next page.
func (s *Server) adminList(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	state, ok := parseState(q.Get("state"))
	if !ok {
		writeError(w, http.StatusBadRequest, "state must be ready, parked or any")
		return
	}
	query := dlq.Query{Queue: q.Get("queue"), State: state}
	if a := q.Get("after"); a != "" {
		id, err := dlq.ParseID(a)
		if err != nil {
			writeError(w, http.StatusBadRequest, "bad after: "+err.Error())
			return
		}
		query.After = id
	}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 1000 {
			writeError(w, http.StatusBadRequest, "limit must be 1 to 1000")
			return
		}
		query.Limit = n
	}
	msgs, err := s.store.List(r.Context(), query)
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, "dlq: "+err.Error())
		return
	}
	out := struct {
		Messages []MessageView `json:"messages"`
		Next     string        `json:"next"`
	}{Messages: make([]MessageView, 0, len(msgs))}
	for _, m := range msgs {
		out.Messages = append(out.Messages, viewOf(m, false))
	}
	limit := query.Limit
	if limit == 0 {
		limit = dlq.DefaultListLimit
	}
	if len(msgs) == limit {
		out.Next = msgs[len(msgs)-1].ID.String()
	}
	writeJSON(w, http.StatusOK, out)
}

// QueueView is one queue in GET /dlq/stats: its depth and age in the store
// and what its replayer has done since the Server started.
type QueueView struct {
	Queue        string    `json:"queue"`
	Ready        int64     `json:"ready"`
	Parked       int64     `json:"parked"`
	OldestReady  time.Time `json:"oldest_ready,omitzero"`
	OldestParked time.Time `json:"oldest_parked,omitzero"`
	// Replaying reports whether a route queues to it (and so replays it).
	Replaying bool  `json:"replaying"`
	Replayed  int64 `json:"replayed"`
	Failed    int64 `json:"failed"`
	Parks     int64 `json:"parked_by_replay"`
	Released  int64 `json:"released"`
	InFlight  int64 `json:"in_flight"`
}

// QueueStats returns every queue that holds messages or has a replayer.
func (s *Server) QueueStats(ctx context.Context) ([]QueueView, error) {
	stats, err := s.store.Stats(ctx)
	if err != nil {
		return nil, err
	}
	views := map[string]*QueueView{}
	for _, q := range stats {
		views[q.Queue] = &QueueView{Queue: q.Queue, Ready: q.Ready, Parked: q.Parked, OldestReady: q.OldestReady, OldestParked: q.OldestParked}
	}
	s.mu.Lock()
	for name, slot := range s.replayers {
		v, ok := views[name]
		if !ok {
			v = &QueueView{Queue: name}
			views[name] = v
		}
		st := slot.r.Stats()
		v.Replaying = true
		v.Replayed, v.Failed, v.Parks, v.Released, v.InFlight = st.Replayed, st.Failed, st.Parked, st.Released, st.InFlight
	}
	s.mu.Unlock()
	out := make([]QueueView, 0, len(views))
	for _, v := range views {
		out = append(out, *v)
	}
	slices.SortFunc(out, func(a, b QueueView) int { return strings.Compare(a.Queue, b.Queue) })
	return out, nil
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

func (s *Server) adminQueueStats(w http.ResponseWriter, r *http.Request) {
	qs, err := s.QueueStats(r.Context())
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, "dlq: "+err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"queues": qs})
}

// pathID parses the {id} of the URL, answering 400 when it is bad.
func pathID(w http.ResponseWriter, r *http.Request) (dlq.ID, bool) {
	id, err := dlq.ParseID(r.PathValue("id"))
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad message id: "+err.Error())
		return dlq.ID{}, false
	}
	return id, true
}

// storeError answers a store error: 404 for a missing message, 503
// otherwise.
func storeError(w http.ResponseWriter, err error) {
	if errors.Is(err, dlq.ErrNotFound) {
		writeError(w, http.StatusNotFound, "no such message")
		return
	}
	writeError(w, http.StatusServiceUnavailable, "dlq: "+err.Error())
}

func (s *Server) adminGet(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	m, err := s.store.Get(r.Context(), id)
	if err != nil {
		storeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, viewOf(m, r.URL.Query().Get("body") == "1"))
}

func (s *Server) adminDelete(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	if err := s.store.Delete(r.Context(), id); err != nil {
		storeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) replayer(queue string) *dlq.Replayer {
	s.mu.Lock()
	defer s.mu.Unlock()
	if slot, ok := s.replayers[queue]; ok {
		return slot.r
	}
	return nil
}

// adminReplayOne serves POST /dlq/{id}/replay: 200 when the message was
// replayed (and deleted), 502 with the error when the replay failed, 503
// while the route's breakers are open, 409 when the message is being
// replayed already or no route queues to its queue, 404 when it is gone.
func (s *Server) adminReplayOne(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	m, err := s.store.Get(r.Context(), id)
	if err != nil {
		storeError(w, err)
		return
	}
	rp := s.replayer(m.Queue)
	if rp == nil {
		writeError(w, http.StatusConflict, "no route queues to "+strconv.Quote(m.Queue))
		return
	}
	err = rp.ReplayOne(r.Context(), id)
	switch {
	case err == nil:
		writeJSON(w, http.StatusOK, map[string]string{"id": id.String(), "outcome": "replayed"})
	case errors.Is(err, dlq.ErrUnhealthy):
		writeError(w, http.StatusServiceUnavailable, "the route's upstreams are unhealthy; try later")
	case errors.Is(err, dlq.ErrBusy):
		writeError(w, http.StatusConflict, "the message is being replayed")
	case errors.Is(err, dlq.ErrNotFound):
		writeError(w, http.StatusNotFound, "no such message")
	default:
		writeJSON(w, http.StatusBadGateway, map[string]string{"id": id.String(), "outcome": "failed", "error": err.Error()})
	}
}

// ReplayView is what POST /dlq/replay did to one queue.
type ReplayView struct {
	Queue    string `json:"queue"`
	Replayed int    `json:"replayed"`
	Failed   int    `json:"failed"`
	Parked   int    `json:"parked"`
	Released int    `json:"released"`
	Skipped  int    `json:"skipped"`
	Error    string `json:"error,omitempty"`
}

// adminReplay serves POST /dlq/replay?queue=&state=&limit=: it replays the
// selected messages of one queue, or of every queue a route replays, now,
// and reports per queue what happened.
func (s *Server) adminReplay(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	state, ok := parseState(q.Get("state"))
	if !ok {
		writeError(w, http.StatusBadRequest, "state must be ready, parked or any")
		return
	}
	f := dlq.Filter{State: state}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 {
			writeError(w, http.StatusBadRequest, "limit must be a positive number")
			return
		}
		f.Limit = n
	}
	var queues []string
	if name := q.Get("queue"); name != "" {
		if s.replayer(name) == nil {
			writeError(w, http.StatusConflict, "no route queues to "+strconv.Quote(name))
			return
		}
		queues = []string{name}
	} else {
		s.mu.Lock()
		for name := range s.replayers {
			queues = append(queues, name)
		}
		s.mu.Unlock()
		slices.Sort(queues)
	}
	out := make([]ReplayView, 0, len(queues))
	for _, name := range queues {
		rp := s.replayer(name)
		if rp == nil {
			continue
		}
		res, err := rp.Replay(r.Context(), f)
		v := ReplayView{Queue: name, Replayed: res.Replayed, Failed: res.Failed, Parked: res.Parked, Released: res.Released, Skipped: res.Skipped}
		if err != nil {
			v.Error = err.Error()
		}
		out = append(out, v)
	}
	writeJSON(w, http.StatusOK, map[string]any{"results": out})
}

func (s *Server) adminConfig(w http.ResponseWriter, r *http.Request) {
	data, err := yaml.Marshal(s.Config().Redacted())
	if err != nil {
		writeError(w, http.StatusInternalServerError, "cannot encode the configuration")
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
		writeJSON(w, http.StatusOK, s.Status())
		return
	}
	code := http.StatusUnprocessableEntity
	if errors.Is(err, ErrNoConfigFile) {
		code = http.StatusConflict
	}
	writeJSON(w, code, struct {
		Error  string `json:"error"`
		Status Status `json:"status"`
	}{"configuration refused; the previous one keeps running", s.Status()})
}

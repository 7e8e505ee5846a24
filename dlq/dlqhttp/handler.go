package dlqhttp

import (
	"cmp"
	"context"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/sluice-go/sluice/dlq"
	"github.com/sluice-go/sluice/internal/jsonhttp"
)

// Replayers finds the replayer of a queue, for the API's replay routes and
// its stats. The server that runs the replayers implements it (a proxy
// has one per queueing route, and swaps them on reload), so the API always
// replays through the replayer in force.
type Replayers interface {
	// Replayer returns the replayer of queue, or nil when nothing
	// replays it.
	Replayer(queue string) *dlq.Replayer
	// Queues returns the names of the queues that have a replayer, in
	// any order, in a slice the caller may keep.
	Queues() []string
}

// MaxListLimit is the largest limit= GET /dlq accepts.
const MaxListLimit = 1000

// Handler returns the REST API of store:
//
//	GET    /dlq             messages, oldest first, paged (queue, state, after, limit): ListResponse
//	GET    /dlq/stats       each queue's depth and its replayer's counts: StatsResponse
//	GET    /dlq/{id}        one message (body=1 adds its body): MessageView
//	DELETE /dlq/{id}        discard a message: 204
//	POST   /dlq/{id}/replay replay one message now: ReplayOneResponse
//	POST   /dlq/replay      replay a queue's messages now (queue, state, limit; every replayed queue if no queue): ReplayResponse
//
// Errors are ErrorResponse with 400 for a bad parameter, 404 for a missing
// message, 409 for a queue nothing replays, 503 when the store fails. With
// replayers nil nothing replays: the replay routes answer 409 and the
// stats show the store alone. Mount it on "/dlq" and "/dlq/", behind the
// server's authentication.
func Handler(store dlq.Store, replayers Replayers) http.Handler {
	a := &api{store: store, rp: replayers}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /dlq", a.list)
	mux.HandleFunc("GET /dlq/stats", a.stats)
	mux.HandleFunc("GET /dlq/{id}", a.get)
	mux.HandleFunc("DELETE /dlq/{id}", a.delete)
	mux.HandleFunc("POST /dlq/{id}/replay", a.replayOne)
	mux.HandleFunc("POST /dlq/replay", a.replay)
	return mux
}

// api serves one store's routes.
type api struct {
	store dlq.Store
	rp    Replayers
}

// replayer returns the replayer of queue, or nil.
func (a *api) replayer(queue string) *dlq.Replayer {
	if a.rp == nil {
		return nil
	}
	return a.rp.Replayer(queue)
}

// queues returns the replayed queues, sorted.
func (a *api) queues() []string {
	if a.rp == nil {
		return nil
	}
	qs := a.rp.Queues()
	slices.Sort(qs)
	return qs
}

// Stats returns every queue of store that holds messages or has a
// replayer among replayers (which may be nil), sorted by name: what GET
// /dlq/stats answers.
func Stats(ctx context.Context, store dlq.Store, replayers Replayers) ([]QueueView, error) {
	stats, err := store.Stats(ctx)
	if err != nil {
		return nil, err
	}
	views := map[string]*QueueView{}
	for _, q := range stats {
		views[q.Queue] = &QueueView{Queue: q.Queue, Ready: q.Ready, Parked: q.Parked, OldestReady: q.OldestReady, OldestParked: q.OldestParked}
	}
	a := api{store: store, rp: replayers}
	for _, name := range a.queues() {
		rp := a.replayer(name)
		if rp == nil { // gone since Queues: a reload
			continue
		}
		v, ok := views[name]
		if !ok {
			v = &QueueView{Queue: name}
			views[name] = v
		}
		st := rp.Stats()
		v.Replaying = true
		v.Replayed, v.Failed, v.Parks, v.Released, v.InFlight = st.Replayed, st.Failed, st.Parked, st.Released, st.InFlight
	}
	out := make([]QueueView, 0, len(views))
	for _, v := range views {
		out = append(out, *v)
	}
	slices.SortFunc(out, func(a, b QueueView) int { return strings.Compare(a.Queue, b.Queue) })
	return out, nil
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

// list serves GET /dlq.
func (a *api) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	state, ok := parseState(q.Get("state"))
	if !ok {
		writeError(w, http.StatusBadRequest, "state must be ready, parked or any")
		return
	}
	query := dlq.Query{Queue: q.Get("queue"), State: state}
	if after := q.Get("after"); after != "" {
		id, err := dlq.ParseID(after)
		if err != nil {
			writeError(w, http.StatusBadRequest, "bad after: "+err.Error())
			return
		}
		query.After = id
	}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > MaxListLimit {
			writeError(w, http.StatusBadRequest, "limit must be 1 to 1000")
			return
		}
		query.Limit = n
	}
	msgs, err := a.store.List(r.Context(), query)
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, "dlq: "+err.Error())
		return
	}
	out := ListResponse{Messages: make([]MessageView, 0, len(msgs))}
	for _, m := range msgs {
		out.Messages = append(out.Messages, ViewOf(m, false))
	}
	if len(msgs) == cmp.Or(query.Limit, dlq.DefaultListLimit) {
		out.Next = msgs[len(msgs)-1].ID.String()
	}
	jsonhttp.Write(w, http.StatusOK, out)
}

// stats serves GET /dlq/stats.
func (a *api) stats(w http.ResponseWriter, r *http.Request) {
	qs, err := Stats(r.Context(), a.store, a.rp)
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, "dlq: "+err.Error())
		return
	}
	jsonhttp.Write(w, http.StatusOK, StatsResponse{Queues: qs})
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

// get serves GET /dlq/{id}.
func (a *api) get(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	m, err := a.store.Get(r.Context(), id)
	if err != nil {
		storeError(w, err)
		return
	}
	jsonhttp.Write(w, http.StatusOK, ViewOf(m, r.URL.Query().Get("body") == "1"))
}

// delete serves DELETE /dlq/{id}.
func (a *api) delete(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	if err := a.store.Delete(r.Context(), id); err != nil {
		storeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// replayOne serves POST /dlq/{id}/replay: 200 when the message was
// replayed (and deleted), 502 with the error when the replay failed, 503
// while the replayer's gate is shut (the route's breakers open), 409 when
// the message is being replayed already or nothing replays its queue, 404
// when it is gone.
func (a *api) replayOne(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	m, err := a.store.Get(r.Context(), id)
	if err != nil {
		storeError(w, err)
		return
	}
	rp := a.replayer(m.Queue)
	if rp == nil {
		writeError(w, http.StatusConflict, "no route queues to "+strconv.Quote(m.Queue))
		return
	}
	err = rp.ReplayOne(r.Context(), id)
	switch {
	case err == nil:
		jsonhttp.Write(w, http.StatusOK, ReplayOneResponse{ID: id.String(), Outcome: "replayed"})
	case errors.Is(err, dlq.ErrUnhealthy):
		writeError(w, http.StatusServiceUnavailable, "the route's upstreams are unhealthy; try later")
	case errors.Is(err, dlq.ErrBusy):
		writeError(w, http.StatusConflict, "the message is being replayed")
	case errors.Is(err, dlq.ErrNotFound):
		writeError(w, http.StatusNotFound, "no such message")
	default:
		jsonhttp.Write(w, http.StatusBadGateway, ReplayOneResponse{ID: id.String(), Outcome: "failed", Error: err.Error()})
	}
}

// replay serves POST /dlq/replay?queue=&state=&limit=: it replays the
// selected messages of one queue, or of every replayed queue, now, and
// reports per queue what happened.
func (a *api) replay(w http.ResponseWriter, r *http.Request) {
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
		if a.replayer(name) == nil {
			writeError(w, http.StatusConflict, "no route queues to "+strconv.Quote(name))
			return
		}
		queues = []string{name}
	} else {
		queues = a.queues()
	}
	out := ReplayResponse{Results: make([]ReplayView, 0, len(queues))}
	for _, name := range queues {
		rp := a.replayer(name)
		if rp == nil {
			continue
		}
		res, err := rp.Replay(r.Context(), f)
		v := ReplayView{Queue: name, Replayed: res.Replayed, Failed: res.Failed, Parked: res.Parked, Released: res.Released, Skipped: res.Skipped}
		if err != nil {
			v.Error = err.Error()
		}
		out.Results = append(out.Results, v)
	}
	jsonhttp.Write(w, http.StatusOK, out)
}

func writeError(w http.ResponseWriter, code int, msg string) {
	jsonhttp.Write(w, code, ErrorResponse{Error: msg})
}

package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/sluice-go/sluice"
	"github.com/sluice-go/sluice/breaker"
	"github.com/sluice-go/sluice/bulkhead"
	"github.com/sluice-go/sluice/dlq"
	"github.com/sluice-go/sluice/dlq/dlqhttp"
	"github.com/sluice-go/sluice/ratelimit"
	"github.com/sluice-go/sluice/retry"
	"github.com/sluice-go/sluice/sluicehttp"
	"github.com/sluice-go/sluice/timeout"
)

// The keys of a queued request's dlq.Message.Headers: the DLQ API's, so
// that what the proxy stores is what the API shows.
const (
	metaMethod = dlqhttp.KeyMethod
	metaURI    = dlqhttp.KeyURI
	metaHost   = dlqhttp.KeyHost
	metaRemote = dlqhttp.KeyRemote
	metaProto  = dlqhttp.KeyProto
	metaHeader = dlqhttp.KeyHeaderPrefix
)

// errRouteGone is the error of a replay whose route no longer queues: it
// matches sluice.ErrRejected, so the message is handed back untouched.
var errRouteGone = fmt.Errorf("proxy: the route no longer queues requests: %w", sluice.ErrRejected)

// queueable reports whether a failed request may go to the dead-letter
// queue: its failure is one a later replay can overcome (the upstream was
// down, slow, refusing, or its breaker open), not the client's doing (rate
// limit) or the sidecar's own overload (bulkhead), and not an answer the
// upstream will give again (a 500, say).
func (rt *route) queueable(err error) bool {
	switch {
	case errors.Is(err, ratelimit.ErrLimited), errors.Is(err, bulkhead.ErrFull):
		return false
	case errors.Is(err, breaker.ErrOpen), errors.Is(err, retry.ErrBudgetExhausted),
		errors.Is(err, retry.ErrExhausted), errors.Is(err, timeout.ErrExceeded):
		return true
	}
	if ae, answered := asAnswer(err); answered {
		var nr *sluicehttp.NoRetryError
		return errors.As(ae, &nr) || sluice.ClassifyStatus(ae.code).Retryable || rt.failStatus[ae.code]
	}
	var te *tryError
	return errors.As(err, &te)
}

// maxQueuedError bounds the error text a queued message keeps, so that
// the record's size is what config.QueuedRequestOverhead allows for.
const maxQueuedError = 2 << 10

// enqueue stores the request in the dead-letter queue and answers 202 with
// its ID, if the route queues, queues its method, the failure is queueable
// and the whole body is at hand. The 202 is written only once the store has
// the message on disk.
func (ex *exchange) enqueue(err error) bool {
	if !ex.rt.queue || !ex.rt.queues(ex.r.Method) || ex.body == nil || !ex.rt.queueable(err) {
		return false
	}
	payload, kept := ex.body.Bytes()
	if !kept {
		return false
	}
	m := dlq.Message{
		Queue:     ex.rt.name,
		Payload:   payload,
		Headers:   encodeRequest(ex.r, ex.rt.trustClient),
		Attempts:  ex.tries,
		LastError: truncate(err.Error(), maxQueuedError),
	}
	id, perr := ex.s.store.Put(context.WithoutCancel(ex.r.Context()), m)
	if perr != nil {
		ex.s.log.Warn("proxy: cannot queue the request", slog.String("route", ex.rt.name), slog.Any("error", perr))
		return false
	}
	ex.s.log.Info("proxy: request queued", slog.String("route", ex.rt.name), slog.String("id", id.String()),
		slog.String("method", ex.r.Method), slog.String("uri", ex.r.URL.RequestURI()), slog.Any("error", err))
	h := ex.w.Header()
	h.Set(HeaderQueued, id.String())
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	ex.committed = true
	ex.w.WriteHeader(http.StatusAccepted)
	_, _ = io.WriteString(ex.w, "queued "+id.String()+"\n")
	return true
}

// encodeRequest records what a replay needs of r: method, target, host,
// client address, scheme and end-to-end headers (without Sluice-* headers
// unless trust is set).
func encodeRequest(r *http.Request, trust bool) map[string]string {
	m := make(map[string]string, len(r.Header)+5)
	m[metaMethod] = r.Method
	m[metaURI] = r.URL.RequestURI()
	m[metaHost] = r.Host
	m[metaRemote] = r.RemoteAddr
	m[metaProto] = "http"
	if r.TLS != nil {
		m[metaProto] = "https"
	}
	h := r.Header.Clone()
	removeHopHeaders(h)
	if !trust {
		removeSluiceHeaders(h)
	}
	for k, vv := range h {
		m[metaHeader+k] = strings.Join(vv, "\n")
	}
	return m
}

// decodeRequest rebuilds the client's request from a message.
func decodeRequest(m dlq.Message) (*http.Request, error) {
	method := m.Headers[metaMethod]
	if method == "" {
		return nil, errors.New("proxy: message has no method: not a queued request")
	}
	u, err := url.ParseRequestURI(m.Headers[metaURI])
	if err != nil {
		return nil, fmt.Errorf("proxy: message has a bad URI: %w", err)
	}
	r := &http.Request{
		Method:     method,
		URL:        u,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     http.Header{},
		Host:       m.Headers[metaHost],
		RemoteAddr: m.Headers[metaRemote],
		RequestURI: u.RequestURI(),
	}
	for k, v := range m.Headers {
		if name, ok := strings.CutPrefix(k, metaHeader); ok {
			r.Header[name] = strings.Split(v, "\n")
		}
	}
	return r, nil
}

// replayerSlot is the replayer of one queue (a route with on_exhausted:
// queue) and, while the Server serves, its Run loop.
type replayerSlot struct {
	queue  string
	r      *dlq.Replayer
	cancel context.CancelFunc // non-nil while Run runs
}

func (s *Server) newReplayer(queue string) (*replayerSlot, error) {
	r, err := dlq.NewReplayer(s.store, queue, s.replayHandler(queue), dlq.ReplayerConfig{
		Clock:        s.clock,
		Gate:         func() bool { return s.replayGate(queue) },
		Backoff:      s.opts.ReplayBackoff,
		MaxReplays:   s.opts.MaxReplays,
		PollInterval: s.replayPoll(),
		Lease:        s.replayLease,
		OnReplay: func(e dlq.ReplayEvent) {
			lvl := slog.LevelInfo
			if e.Outcome == dlq.OutcomeFailed || e.Outcome == dlq.OutcomeParked {
				lvl = slog.LevelWarn
			}
			s.log.Log(context.Background(), lvl, "proxy: replay", slog.String("route", queue),
				slog.String("id", e.Message.ID.String()), slog.String("outcome", e.Outcome.String()), slog.Any("error", e.Err))
		},
	})
	if err != nil {
		return nil, fmt.Errorf("proxy: replayer of route %q: %w", queue, err)
	}
	return &replayerSlot{queue: queue, r: r}, nil
}

func (s *Server) replayPoll() time.Duration {
	if s.opts.ReplayPollInterval > 0 {
		return s.opts.ReplayPollInterval
	}
	return DefaultReplayPollInterval
}

// startReplayerLocked starts slot's Run loop if the Server is serving.
func (s *Server) startReplayerLocked(slot *replayerSlot) {
	if s.serveCtx == nil || slot.cancel != nil {
		return
	}
	ctx, cancel := context.WithCancel(s.serveCtx)
	slot.cancel = cancel
	s.replayWG.Add(1)
	go func() {
		defer s.replayWG.Done()
		if err := slot.r.Run(ctx); err != nil {
			s.log.Error("proxy: replayer stopped", slog.String("route", slot.queue), slog.Any("error", err))
		}
	}()
}

// replayGate is a queue's dlq.ReplayerConfig.Gate: replay while the route
// still queues and one of its upstreams' breakers is not open (closed, or
// half-open: a replay is then one of its probes, which is how a route with
// no live traffic closes its breaker again).
func (s *Server) replayGate(queue string) bool {
	rt := s.live.Load().route(queue)
	if rt == nil || !rt.queue {
		return false
	}
	for _, up := range rt.upstreams {
		if up.breaker == nil {
			return true
		}
		switch up.breaker.State() {
		case breaker.StateOpen, breaker.StateForcedOpen:
		default:
			return true
		}
	}
	return false
}

// replayHandler sends a queued request again, through the breakers and
// timeout of the route's upstreams, the primary first. It carries
// Sluice-Queued with its message ID so the upstream can tell a replay. Any
// answer that is not a failure (see route.isFailure) completes the
// message; a 4xx is logged, since replaying it again would change nothing.
func (s *Server) replayHandler(queue string) dlq.Handler {
	return func(ctx context.Context, m dlq.Message) error {
		rt := s.live.Load().route(queue)
		if rt == nil || !rt.queue {
			return errRouteGone
		}
		in, err := decodeRequest(m)
		if err != nil {
			return err
		}
		header := outgoingHeader(in, rt.trustClient)
		header.Set(HeaderQueued, m.ID.String()) // after the client's are gone
		var errs []error
		for _, up := range rt.upstreams {
			err := up.pipe.Do(ctx, func(ctx context.Context) error {
				return s.replayTry(ctx, rt, up, in, header, m)
			})
			if err == nil {
				return nil
			}
			if ctx.Err() != nil {
				return err
			}
			errs = append(errs, err)
		}
		return pickError(errs)
	}
}

// replayTry sends a queued request to up as one sluicehttp attempt, its
// body the message's payload.
func (s *Server) replayTry(ctx context.Context, rt *route, up *upstream, in *http.Request, header http.Header, m dlq.Message) error {
	out := newOutgoing(in, header, up).WithContext(ctx)
	a := sluicehttp.Attempter{Base: s.transport, Failure: rt, Clock: s.clock}
	resp, err := a.Attempt(ctx, out, sluicehttp.BytesBody(m.Payload))
	if resp == nil {
		return &tryError{upstream: up.name, err: err}
	}
	defer sluicehttp.DiscardBody(resp)
	if err != nil {
		return &answerError{upstream: up.name, code: resp.StatusCode, cause: err}
	}
	if resp.StatusCode >= 400 {
		s.log.Warn("proxy: upstream refused a replayed request; the message is done", slog.String("route", rt.name),
			slog.String("id", m.ID.String()), slog.Int("status", resp.StatusCode))
	}
	return nil
}

// truncate cuts s to at most n bytes, at a UTF-8 boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

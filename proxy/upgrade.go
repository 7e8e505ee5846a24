package proxy

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httputil"

	"github.com/sluice-go/sluice"
	"github.com/sluice-go/sluice/breaker"
	"github.com/sluice-go/sluice/sluicehttp"
)

// serveUpgrade passes a protocol upgrade (WebSocket) through to the first
// upstream whose breaker admits it, with httputil.ReverseProxy doing the
// switch and the two-way copy. The route's limiters admit it; it is never
// retried (the upgraded connection is not a request that can be repeated)
// and holds no bulkhead permit, since it may last for hours. The breaker
// counts the upstream's answer to the upgrade, not the connection's life.
func (rt *route) serveUpgrade(w http.ResponseWriter, r *http.Request) {
	// The upgraded connection outlives the request as net/http sees it;
	// its context ends it at shutdown (ReverseProxy closes both sides).
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	stop := context.AfterFunc(rt.s.upgradesCtx, cancel)
	defer stop()
	r = r.WithContext(ctx)
	lctx := r.Context()
	if rt.keyed {
		lctx = context.WithValue(lctx, requestKey{}, r)
	}
	err := sluice.NewPipeline(rt.limiters...).Do(lctx, func(context.Context) error {
		return rt.upgradeTo(w, r)
	})
	if err != nil && r.Context().Err() == nil {
		if !sluicehttp.WriteRejection(w, err) {
			http.Error(w, "bad gateway", http.StatusBadGateway)
		}
	}
}

// upgradeTo proxies r to the first upstream whose breaker admits it, or
// returns the breakers' refusal.
func (rt *route) upgradeTo(w http.ResponseWriter, r *http.Request) error {
	var refusals []error
	for _, up := range rt.upstreams {
		var permit breaker.Permit
		if up.breaker != nil {
			p, err := up.breaker.Allow()
			if err != nil {
				refusals = append(refusals, err)
				continue
			}
			permit = p
		}
		rt.proxyUpgrade(w, r, up, permit)
		return nil
	}
	return pickError(refusals)
}

func (rt *route) proxyUpgrade(w http.ResponseWriter, r *http.Request, up *upstream, permit breaker.Permit) {
	s := rt.s
	reported := false
	report := func(o breaker.Outcome) {
		if !reported {
			reported = true
			permit.Done(o, 0)
		}
	}
	defer report(breaker.Ignored) // the client left before any answer
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(up.url)
			pr.Out.Host = ""
			if !rt.trustClient {
				removeSluiceHeaders(pr.Out.Header)
			}
			fwd := outgoingHeader(pr.In, rt.trustClient)
			for _, k := range []string{"X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "Forwarded"} {
				pr.Out.Header[k] = fwd[k]
			}
		},
		Transport: s.transport,
		ModifyResponse: func(resp *http.Response) error {
			if rt.isFailure(resp.StatusCode) {
				report(breaker.Failure)
			} else {
				report(breaker.Success)
			}
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if r.Context().Err() != nil {
				report(breaker.Ignored)
				return
			}
			report(breaker.Failure)
			s.log.Debug("proxy: upgrade failed", slog.String("route", rt.name), slog.String("upstream", up.name), slog.Any("error", err))
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.WriteHeader(http.StatusBadGateway)
			_, _ = io.WriteString(w, "bad gateway\n")
		},
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	rp.ServeHTTP(w, r)
}

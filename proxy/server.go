package proxy

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-go/sluice"
	"github.com/sluice-go/sluice/config"
	"github.com/sluice-go/sluice/dlq"
	"github.com/sluice-go/sluice/health"
	"github.com/sluice-go/sluice/metrics"
	"github.com/sluice-go/sluice/registry"
)

// DefaultMaxCacheBody is the largest response body the stale cache keeps
// when Options.MaxCacheBody is zero.
const DefaultMaxCacheBody = 1 << 20

// DefaultReplayPollInterval is how often a route's replayer looks for due
// dead-letter messages, and rechecks the route's breakers, when
// Options.ReplayPollInterval is zero.
const DefaultReplayPollInterval = time.Second

// Errors returned by New, Serve, Reload and ReloadFile.
var (
	// ErrAdminExposed is returned when the admin API would listen on an
	// address that is not loopback with no admin.token configured.
	ErrAdminExposed = errors.New("proxy: admin API on a non-loopback address needs admin.token")
	// ErrServing is returned by Serve when the Server is serving already.
	ErrServing = errors.New("proxy: already serving")
	// ErrClosed is returned by Serve and Reload after Close.
	ErrClosed = errors.New("proxy: server closed")
	// ErrNoConfigFile is returned by ReloadFile when Options.ConfigPath is
	// empty: the running configuration came from no file.
	ErrNoConfigFile = errors.New("proxy: no configuration file to reload")
)

// Options are what New needs besides the configuration. The zero Options
// are valid: a registry, a DLQ store and a transport of the Server's own,
// no logging, the system clock, and no file to reload.
type Options struct {
	// Registry holds the policy instances the routes use, where the health
	// monitor and the metrics read them. If nil, New makes one with Clock.
	Registry *registry.Registry

	// Store is the dead-letter queue. If nil, New opens cfg.Storage.DLQ
	// (a bolt file or a Redis store) and Close closes it. A Store given
	// here is left open by Close.
	Store dlq.Store

	// Transport sends requests upstream. If nil, a clone of
	// http.DefaultTransport that ignores proxy environment variables, never
	// asks for compression on the client's behalf, and keeps up to 256
	// idle connections per upstream host.
	Transport http.RoundTripper

	// Logger receives reloads, queued and replayed requests, and failures
	// worth an operator's attention. If nil, nothing is logged.
	Logger *slog.Logger

	// Clock is the source of time for a registry New makes, cache ages,
	// replay scheduling and the health monitor. If nil, the registry's
	// clock, or the system clock.
	Clock sluice.Clock

	// ConfigPath is the file that ReloadFile and POST /config/reload read
	// again. If empty, they fail with ErrNoConfigFile.
	ConfigPath string

	// Loader reads ConfigPath. Its zero value resolves ${NAME} from the
	// process environment.
	Loader config.Loader

	// ReplayPollInterval is how often a route's replayer looks for due
	// messages and rechecks the route's breakers. If zero,
	// DefaultReplayPollInterval.
	ReplayPollInterval time.Duration

	// ReplayBackoff is how long a message waits after its n-th failed
	// replay. If nil, the dlq package's default (1 s doubling to 5 min).
	ReplayBackoff func(replay int) time.Duration

	// MaxReplays is the number of failed replays after which a message is
	// parked for an operator. If zero, the dlq package's default (10).
	MaxReplays int

	// MaxCacheBody is the largest response body the stale cache of a route
	// keeps; bigger answers are streamed and not cached. If zero,
	// DefaultMaxCacheBody.
	MaxCacheBody int64

	// CacheEntries bounds the answers each route's stale cache keeps. If
	// zero, the cache package's default (10,000).
	CacheEntries int
}

// Server is the sidecar: the reverse proxy (Handler), the admin API
// (AdminHandler), the dead-letter replayers and the health monitor, all
// built from one config.Config and changed in place by Reload. Make one
// with New, run it with Serve, and Close it if Serve never ran. It is safe
// for concurrent use.
type Server struct {
	opts      Options
	log       *slog.Logger
	clock     sluice.Clock
	reg       *registry.Registry
	store     dlq.Store
	ownStore  bool
	dlqClient *sharedClient // the Redis client of a Redis store New opened
	// limits and breakers are the Redis clients of storage.ratelimit and
	// storage.breakers (nil: in-process); a reload that changes the entry
	// opens a new one and closes the old.
	limits, breakers *sharedClient
	replayLease      time.Duration // storage.dlq.replay_lease, fixed at New
	instance         string        // instance_id or host:pid, fixed at New
	ownReg           bool
	transport        http.RoundTripper
	monitor          *health.Monitor
	metrics          http.Handler
	obs              *observer // the request metrics
	bufs             sync.Pool // *[]byte of copyBufSize for copying bodies

	live  atomic.Pointer[runtime]
	first *config.Config // the configuration New was given

	mu          sync.Mutex // serialises reloads, replayer changes, Serve and Close
	status      Status
	caches      map[string]*cacheSlot // by route name, never removed
	replayers   map[string]*replayerSlot
	serveCtx    context.Context // non-nil while Serve runs; replayers run under it
	replayWG    sync.WaitGroup
	serving     bool
	closed      bool
	adminPublic bool // the admin listener is not loopback: a token is required

	inflight atomic.Int64 // proxy requests being handled

	// cutUpgrades ends upgraded (WebSocket) connections at shutdown, which
	// http.Server.Shutdown does not track once they are hijacked.
	upgradesCtx context.Context
	cutUpgrades context.CancelFunc
}

// runtime is one applied configuration: what a request reads, once, when
// it arrives.
type runtime struct {
	cfg     *config.Config
	built   *built
	routes  []*route
	version int
}

// New builds a Server for cfg: the policy instances in the registry, the
// routes, the stale caches, one dead-letter replayer per route with
// on_exhausted: queue, the health monitor and the metrics. It opens the
// DLQ store unless opts.Store is set. It fails when the admin API is
// configured on a non-loopback address without a token (ErrAdminExposed),
// when the store cannot be opened, or when a policy refuses its settings.
func New(cfg *config.Config, opts Options) (*Server, error) {
	if cfg == nil {
		return nil, errors.New("proxy: New needs a configuration")
	}
	if err := checkAdminAddr(cfg.Admin.Listen, cfg.Admin.Token); err != nil {
		return nil, err
	}
	s := &Server{
		opts:      opts,
		log:       opts.Logger,
		reg:       opts.Registry,
		store:     opts.Store,
		transport: opts.Transport,
		caches:    map[string]*cacheSlot{},
		replayers: map[string]*replayerSlot{},
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.reg == nil {
		s.reg = registry.New(registry.Config{Clock: opts.Clock})
		s.ownReg = true
	}
	s.clock = sluice.ClockOr(opts.Clock)
	if opts.Clock == nil {
		s.clock = sluice.ClockOr(s.reg.Clock())
	}
	if s.transport == nil {
		s.transport = defaultTransport()
	}
	s.bufs.New = func() any { b := make([]byte, copyBufSize); return &b }
	s.upgradesCtx, s.cutUpgrades = context.WithCancel(context.Background())
	if s.store == nil {
		st, c, err := openStore(cfg.Storage.DLQ, s.clock)
		if err != nil {
			return nil, err
		}
		s.store, s.ownStore, s.dlqClient = st, true, c
	}
	s.replayLease = cfg.Storage.DLQ.ReplayLease
	s.instance = instanceID(cfg.InstanceID)
	mon, err := health.New(health.Config{
		SharedFunc: s.sharedComponents,
		Instance:   s.instance,
		Registry:   s.reg,
		DLQ:        []health.DLQSource{s.store},
		Clock:      s.clock,
		Logger:     opts.Logger,
	})
	if err != nil {
		s.closeStore()
		return nil, fmt.Errorf("proxy: health monitor: %w", err)
	}
	s.monitor = mon
	s.obs = newObserver()
	col, err := metrics.New(metrics.Config{
		SharedFunc: s.sharedComponents,
		Registry:   s.reg,
		Health:     mon,
		DLQ:        []health.DLQSource{s.store},
		Replays:    s.replayStats,
		Proxy:      s.obs.m,
		Runtime:    true,
		Clock:      s.clock,
		Logger:     opts.Logger,
	})
	if err != nil {
		s.closeStore()
		return nil, fmt.Errorf("proxy: metrics: %w", err)
	}
	s.metrics = col.Handler()

	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.applyLocked(cfg); err != nil {
		s.closeStore()
		return nil, err
	}
	s.logStorage(cfg)
	return s, nil
}

func defaultTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.Proxy = nil               // a sidecar talks to its upstreams directly
	t.DisableCompression = true // pass the client's Accept-Encoding through untouched
	t.MaxIdleConns = 1024
	t.MaxIdleConnsPerHost = 256
	return t
}

// checkAdminAddr refuses a non-loopback admin address without a token.
func checkAdminAddr(addr, token string) error {
	if token != "" || addr == "" {
		return nil
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("proxy: admin.listen %q: %w", addr, err)
	}
	if !isLoopbackHost(host) {
		return fmt.Errorf("%w (admin.listen %s)", ErrAdminExposed, addr)
	}
	return nil
}

func isLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Handler returns the reverse proxy: each request goes to the first route
// that matches it, through the route's policies, to its upstreams. A
// request no route matches gets 404.
func (s *Server) Handler() http.Handler { return http.HandlerFunc(s.serveProxy) }

// Registry returns the registry holding the routes' policy instances.
func (s *Server) Registry() *registry.Registry { return s.reg }

// Store returns the dead-letter queue store.
func (s *Server) Store() dlq.Store { return s.store }

// Monitor returns the health monitor of the Server's registry and store.
func (s *Server) Monitor() *health.Monitor { return s.monitor }

// Config returns the configuration in force. Treat it as read-only.
func (s *Server) Config() *config.Config { return s.live.Load().cfg }

// Serve runs the proxy on proxyLn and the admin API on adminLn (nil: no
// admin server), the dead-letter replayers and the health monitor, until
// ctx is done or a listener fails. Then it shuts down gracefully: the
// listeners stop accepting, in-flight requests get the configuration's
// shutdown_grace to finish before their connections are cut, upgraded
// (WebSocket) connections are closed, the replayers and the monitor stop,
// and the store is closed (Close). It
// returns nil after a shutdown caused by ctx, or the listener's error.
//
// Serve refuses (ErrAdminExposed) an admin listener that is not on a
// loopback address while no admin.token is configured. It closes both
// listeners when it returns.
func (s *Server) Serve(ctx context.Context, proxyLn, adminLn net.Listener) error {
	if proxyLn == nil {
		return errors.New("proxy: Serve needs a proxy listener")
	}
	s.mu.Lock()
	switch {
	case s.closed:
		s.mu.Unlock()
		return ErrClosed
	case s.serving:
		s.mu.Unlock()
		return ErrServing
	}
	if adminLn != nil {
		if err := checkAdminAddr(adminLn.Addr().String(), s.live.Load().cfg.Admin.Token); err != nil {
			s.mu.Unlock()
			return err
		}
		s.adminPublic = !isLoopbackAddr(adminLn.Addr())
	}
	s.serving = true
	bg, stopBG := context.WithCancel(context.WithoutCancel(ctx))
	defer stopBG()
	s.serveCtx = bg
	for _, r := range s.replayers {
		s.startReplayerLocked(r)
	}
	s.mu.Unlock()

	monDone := make(chan struct{})
	go func() {
		defer close(monDone)
		_ = s.monitor.Run(bg)
	}()

	errc := make(chan error, 2)
	sc := s.Config().Server
	proxySrv := s.httpServer(s.Handler(), sc)
	proxyLn = limitConns(proxyLn, sc.MaxConnections)
	go func() { errc <- proxySrv.Serve(proxyLn) }()
	servers := 1
	var adminSrv *http.Server
	if adminLn != nil {
		adminSrv = s.httpServer(s.AdminHandler(), sc)
		adminSrv.WriteTimeout = config.DefaultAdminWriteTimeout
		go func() { errc <- adminSrv.Serve(adminLn) }()
		servers++
	}

	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
		servers--
	}
	grace := s.Config().ShutdownGrace
	s.log.Info("proxy: shutting down", slog.Duration("grace", grace))
	s.shutdown(proxySrv, grace)
	s.cutUpgrades()
	if adminSrv != nil {
		s.shutdown(adminSrv, time.Second)
	}
	s.waitInflight(5 * time.Second)
	for range servers {
		if e := <-errc; err == nil && !errors.Is(e, http.ErrServerClosed) {
			err = e
		}
	}
	stopBG()
	s.replayWG.Wait()
	<-monDone
	s.mu.Lock()
	s.serveCtx = nil
	s.mu.Unlock()
	if cerr := s.Close(); err == nil {
		err = cerr
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// httpServer is an http.Server for h with the connection limits of sc. It
// sets no WriteTimeout: net/http's counts from the end of the request header,
// so it would cut a long answer short whatever its route's timeout; the
// proxy bounds each answer's writing itself (see route.writeTimeout).
func (s *Server) httpServer(h http.Handler, sc config.Server) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: cmp.Or(sc.ReadHeaderTimeout, config.DefaultReadHeaderTimeout),
		IdleTimeout:       cmp.Or(sc.IdleTimeout, config.DefaultIdleTimeout),
		MaxHeaderBytes:    int(cmp.Or(sc.MaxHeaderBytes, config.DefaultMaxHeaderBytes)),
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
}

func isLoopbackAddr(a net.Addr) bool {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.IP.IsLoopback()
	}
	host, _, err := net.SplitHostPort(a.String())
	return err == nil && isLoopbackHost(host)
}

// shutdown stops srv accepting and waits up to grace for its requests, then
// cuts the connections that are left.
func (s *Server) shutdown(srv *http.Server, grace time.Duration) {
	if grace <= 0 {
		_ = srv.Close()
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		s.log.Warn("proxy: grace period over, cutting connections", slog.Any("error", err))
		_ = srv.Close()
	}
}

// waitInflight waits, up to limit, for handlers still running after their
// connections were cut; they see their contexts cancelled and return. It
// polls: a WaitGroup may not see Add from zero while Wait runs, and a
// handler may start on a connection accepted just before the cut.
func (s *Server) waitInflight(limit time.Duration) {
	deadline := time.Now().Add(limit)
	for s.inflight.Load() > 0 {
		if time.Now().After(deadline) {
			s.log.Warn("proxy: requests still running after shutdown", slog.Int64("requests", s.inflight.Load()))
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Close releases what the Server holds: it closes the DLQ store if New
// opened it, stops the breakers' timers if New made the registry, and drops
// idle upstream connections. Serve calls it when it returns; call it yourself only for a
// Server that never served. Close is idempotent.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	s.cutUpgrades()
	err := s.closeStore()
	if s.ownReg {
		_ = s.reg.Close()
	}
	_ = s.monitor.Close()
	if ci, ok := s.transport.(interface{ CloseIdleConnections() }); ok {
		ci.CloseIdleConnections()
	}
	return err
}

// closeStore closes what the storage section opened: the store New
// opened and its client, the Redis limits, the breakers' syncs, and then
// the shared clients (a sync never closes its client).
func (s *Server) closeStore() error {
	var err error
	if s.ownStore && s.store != nil {
		err = s.store.Close()
	}
	if st := s.live.Load(); st != nil {
		st.built.closeUnused(nil)
	}
	return errors.Join(err, s.dlqClient.close(), s.limits.close(), s.breakers.close())
}

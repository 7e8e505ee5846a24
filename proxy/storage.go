package proxy

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sluice-go/sluice"
	"github.com/sluice-go/sluice/breaker"
	"github.com/sluice-go/sluice/config"
	"github.com/sluice-go/sluice/dlq"
	"github.com/sluice-go/sluice/registry"
	"github.com/sluice-go/sluice/sluiceredis"
)

// This file opens what the configuration's storage section names: the
// dead-letter store (bolt or Redis) and the Redis clients of the shared
// rate limits and breakers, and holds them for the routes.

// sharedClient is a Redis client opened for one storage entry, with the
// entry it was opened for, so that a reload can tell whether it still
// applies.
type sharedClient struct {
	backend config.Backend
	client  redis.UniversalClient
}

// openShared opens the client of a storage entry, or returns nil for an
// entry without a Redis URL. It does not contact Redis.
func openShared(b config.Backend) (*sharedClient, error) {
	if !b.IsRedis() {
		return nil, nil
	}
	opts := sluiceredis.OpenOptions{Username: b.Username, Password: b.Password}
	if t := b.TLS; t != nil {
		opts.CAFile, opts.CertFile, opts.KeyFile = t.CAFile, t.CertFile, t.KeyFile
		opts.ServerName, opts.InsecureSkipVerify = t.ServerName, t.InsecureSkipVerifyDangerous
	}
	c, err := sluiceredis.Open(b.URL, opts)
	if err != nil {
		return nil, err
	}
	return &sharedClient{backend: b, client: c}, nil
}

// same reports whether c was opened for b (both nil: no Redis).
func (c *sharedClient) same(b config.Backend) bool {
	if c == nil {
		return !b.IsRedis()
	}
	return c.backend.Equal(b)
}

func (c *sharedClient) close() error {
	if c == nil {
		return nil
	}
	return c.client.Close()
}

// redisClient returns the client, nil for no Redis.
func (c *sharedClient) redisClient() redis.UniversalClient {
	if c == nil {
		return nil
	}
	return c.client
}

// openStore opens the dead-letter store of storage.dlq: a bolt file
// (making its folder) or a Redis store, whose client it returns too for
// Close; a Redis store with a fallback file (the default) is a
// dlq.Failover over both.
func openStore(b config.Backend, clock sluice.Clock) (dlq.Store, *sharedClient, error) {
	if path, ok := b.BoltPath(); ok {
		st, err := openBolt(path, clock)
		if err != nil {
			return nil, nil, fmt.Errorf("proxy: storage.dlq: %w", err)
		}
		return st, nil, nil
	}
	sc, err := openShared(b)
	if err == nil && sc == nil {
		err = fmt.Errorf("unsupported URL %q", b.URL)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("proxy: storage.dlq: %w", err)
	}
	st, err := sluiceredis.NewStore(sluiceredis.StoreOptions{
		Client:          sc.client,
		Prefix:          b.Prefix,
		Clock:           clock,
		Timeout:         cmp.Or(b.Timeout, config.DefaultDLQRedisTimeout),
		MaxMessageBytes: int(config.DLQRecordBytes),
	})
	if err != nil {
		return nil, nil, errors.Join(fmt.Errorf("proxy: storage.dlq: %w", err), sc.close())
	}
	path, ok := b.FallbackPath()
	if !ok {
		return st, sc, nil
	}
	fo, err := failoverStore(st, path, b, clock)
	if err != nil {
		return nil, nil, errors.Join(fmt.Errorf("proxy: storage.dlq.fallback: %w", err), st.Close(), sc.close())
	}
	return fo, sc, nil
}

// failoverStore puts a local bolt file at path behind the Redis store st:
// while Redis is away dead letters go to the file, and move to Redis once
// it answers (dlq.Failover). Its Close closes both stores.
func failoverStore(st *sluiceredis.Store, path string, b config.Backend, clock sluice.Clock) (dlq.Store, error) {
	local, err := openBolt(path, clock)
	if err != nil {
		return nil, err
	}
	fo, err := sluiceredis.NewFailover(st, local, dlq.FailoverOptions{
		Timeout: cmp.Or(b.Timeout, config.DefaultDLQRedisTimeout),
		Clock:   clock,
	})
	if err != nil {
		return nil, errors.Join(err, local.Close())
	}
	return fo, nil
}

// openBolt opens a bolt dead-letter file, making its folder.
func openBolt(path string, clock sluice.Clock) (*dlq.Bolt, error) {
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, err
		}
	}
	// Room for the largest request a queueing route keeps, with its
	// header: config.Parse holds max_retry_body to this limit.
	return dlq.OpenBolt(path, dlq.Options{Clock: clock, MaxMessageBytes: int(config.DLQRecordBytes)})
}

// sharedBreaker is a breaker whose state the fleet shares through
// storage.breakers: its sync, the client the sync uses, and the breaker
// once built. It is the breaker's entry ("breaker:<name>") in the health
// report and the metrics (a sluice.SharedComponent and a
// health.SharedStater).
type sharedBreaker struct {
	sync   *sluiceredis.BreakerSync
	client *sharedClient
	clock  sluice.Clock
	b      atomic.Pointer[breaker.Breaker]
}

// shareBreaker returns the link of the breaker cfg names on the client
// opts.breakers: on a reload, the running breaker's own when it runs on
// that client (breaker.Update refuses to change Config.Shared); else a new
// sync. A new sync touches Redis only once breaker.New attaches it, so one
// a refused build drops costs nothing.
func shareBreaker(reg *registry.Registry, cfg breaker.Config, opts buildOptions) (*sharedBreaker, error) {
	if prev := opts.previous; prev != nil {
		old, ok := prev.shared[cfg.Name]
		running, found := reg.LookupBreaker(cfg.Name)
		if ok && found && old.client == opts.breakers && running.Config().Shared == breaker.Shared(old.sync) {
			return old, nil
		}
	}
	b := opts.breakers.backend
	sc := sluiceredis.SyncConfig{
		Client:        opts.breakers.client,
		Key:           b.Prefix + sluiceredis.BreakerKey(cfg.Name),
		Instance:      opts.instance,
		Timeout:       cmp.Or(b.Timeout, config.DefaultRedisTimeout),
		CheckInterval: b.CheckInterval,
	}
	if b.Mode == config.BreakerQuorum {
		sc.Mode, sc.Quorum, sc.QuorumShare, sc.QuorumWindow = sluiceredis.SyncQuorum, b.Quorum, b.QuorumShare, b.QuorumWindow
	}
	s, err := sluiceredis.NewBreakerSync(sc)
	if err != nil {
		return nil, fmt.Errorf("storage.breakers: breaker %q: %w", cfg.Name, err)
	}
	return &sharedBreaker{sync: s, client: opts.breakers, clock: sluice.ClockOr(opts.clock)}, nil
}

// Degraded reports whether the breaker goes by its local rules because
// Redis does not answer.
func (sb *sharedBreaker) Degraded() bool { return sb.sync.Degraded() }

// LastError returns the sync's last Redis failure, or nil.
func (sb *sharedBreaker) LastError() error { return sb.sync.LastError() }

// SharedState says what the fleet's record holds and what this instance's
// breaker is in (health.SharedStater).
func (sb *sharedBreaker) SharedState() (fleet, local string) {
	local = "unknown"
	if b := sb.b.Load(); b != nil {
		local = b.State().String()
	}
	return fleetState(sb.sync, sb.clock.Now()), local
}

// fleetState describes the record a sync last read, at now; while Redis
// does not answer, as the last one read.
func fleetState(s *sluiceredis.BreakerSync, now time.Time) string {
	if s.Degraded() {
		return "last read: " + recordState(s, now)
	}
	return recordState(s, now)
}

func recordState(s *sluiceredis.BreakerSync, now time.Time) string {
	f, ok := s.Fleet()
	switch {
	case !ok:
		return "unknown (not read yet)"
	case f.Epoch == 0:
		return "none (no record: each instance by its own rules)"
	case !f.Open:
		return "closed"
	}
	by := ""
	var remote *sluiceredis.RemoteTripError
	if errors.As(f.Trip.Cause, &remote) {
		by = fmt.Sprintf(", opened by %s (%v)", remote.Instance, remote.Reason)
	}
	if left := f.ProbeAt.Sub(now); left > 0 {
		return fmt.Sprintf("open for %v more%s", left.Round(100*time.Millisecond), by)
	}
	return "half-open" + by
}

// instanceID is instance_id, or host:pid.
func instanceID(configured string) string {
	if configured != "" {
		return configured
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	return host + ":" + strconv.Itoa(os.Getpid())
}

// sharedComponents lists what the health report and the metrics show as
// shared state, read at each report: the Redis limits (ratelimit), a DLQ
// that fails over (dlq) and each shared breaker (breaker:<name>) of the
// configuration in force.
func (s *Server) sharedComponents() map[string]sluice.SharedComponent {
	out := map[string]sluice.SharedComponent{}
	if sc, ok := s.store.(sluice.SharedComponent); ok {
		out["dlq"] = sc
	}
	st := s.live.Load()
	if st == nil {
		return out
	}
	if st.cfg.Storage.RateLimit.IsRedis() {
		out["ratelimit"] = sharedLimits{s}
	}
	for name, sb := range st.built.shared {
		out["breaker:"+name] = sb
	}
	return out
}

// logStorage says what the storage section opened, once, when New has
// applied the first configuration: the instance's id, where the DLQ, the
// limits and the breakers live.
func (s *Server) logStorage(cfg *config.Config) {
	st := cfg.Storage
	limits := "in-process (each instance its own)"
	if st.RateLimit.IsRedis() {
		limits = "shared on Redis, on_failure " + string(cmp.Or(st.RateLimit.OnFailure, config.DefaultOnFailure))
	}
	breakers := "in-process (each instance its own)"
	if b := st.Breakers; b.IsRedis() {
		breakers = "shared on Redis, mode " + string(cmp.Or(b.Mode, config.BreakerShared))
	}
	dlqFallback := "none"
	if p, ok := st.DLQ.FallbackPath(); ok {
		dlqFallback = p
	}
	s.log.Info("proxy: storage", slog.String("instance", s.instance), slog.String("dlq", config.MaskURL(st.DLQ.URL)),
		slog.String("dlq_fallback", dlqFallback), slog.String("ratelimit", limits), slog.String("breakers", breakers))
	for _, b := range []struct {
		name string
		b    config.Backend
	}{{"storage.dlq", st.DLQ}, {"storage.ratelimit", st.RateLimit}, {"storage.breakers", st.Breakers}} {
		if b.b.TLS != nil && b.b.TLS.InsecureSkipVerifyDangerous {
			s.log.Warn("proxy: " + b.name + ": insecure_skip_verify_dangerous is set: the Redis server's certificate is not checked, so anyone on the path can read and change the traffic, passwords included")
		}
	}
}

package proxy

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/redis/go-redis/v9"

	"github.com/sluice-go/sluice"
	"github.com/sluice-go/sluice/breaker"
	"github.com/sluice-go/sluice/config"
	"github.com/sluice-go/sluice/dlq"
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
// Close.
func openStore(b config.Backend, clock sluice.Clock) (dlq.Store, *sharedClient, error) {
	if path, ok := b.BoltPath(); ok {
		if dir := filepath.Dir(path); dir != "" {
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return nil, nil, fmt.Errorf("proxy: storage.dlq: %w", err)
			}
		}
		// Room for the largest request a queueing route keeps, with its
		// header: config.Parse holds max_retry_body to this limit.
		st, err := dlq.OpenBolt(path, dlq.Options{Clock: clock, MaxMessageBytes: int(config.DLQRecordBytes)})
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
	return st, sc, nil
}

// shareBreaker is where a breaker's state is to be shared through
// storage.breakers: build calls it with each breaker's Config and the
// storage.breakers client (only when that is configured), and builds the
// Config it returns. It reports whether that Config shares the state.
// Breaker sharing is not written yet, so it returns cfg unchanged and
// false, and the Server logs that breakers stay local.
func shareBreaker(cfg breaker.Config, client redis.UniversalClient) (breaker.Config, bool) {
	_ = client
	return cfg, false
}

// logStorage says what the storage section opened, once, when New has
// applied the first configuration: where the DLQ and the limits live, and
// that storage.breakers is opened but not used by the breakers yet.
func (s *Server) logStorage(cfg *config.Config) {
	st := cfg.Storage
	limits := "in-process (each instance its own)"
	if st.RateLimit.IsRedis() {
		limits = "shared on Redis, on_failure " + string(cmp.Or(st.RateLimit.OnFailure, config.DefaultOnFailure))
	}
	s.log.Info("proxy: storage", slog.String("dlq", config.MaskURL(st.DLQ.URL)), slog.String("ratelimit", limits))
	for _, b := range []struct {
		name string
		b    config.Backend
	}{{"storage.dlq", st.DLQ}, {"storage.ratelimit", st.RateLimit}, {"storage.breakers", st.Breakers}} {
		if b.b.TLS != nil && b.b.TLS.InsecureSkipVerifyDangerous {
			s.log.Warn("proxy: " + b.name + ": insecure_skip_verify_dangerous is set: the Redis server's certificate is not checked, so anyone on the path can read and change the traffic, passwords included")
		}
	}
	if s.breakers != nil && !s.live.Load().built.breakersShared {
		s.log.Warn("proxy: storage.breakers is set and its Redis client is open, but breaker sharing is not active yet: each instance keeps its own circuit breakers",
			slog.String("breakers", config.MaskURL(st.Breakers.URL)))
	}
}

package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/sluice-go/sluice/breaker"
	"github.com/sluice-go/sluice/config"
)

// Status says which configuration is in force and how the last reload
// went; GET /config/status serves it.
type Status struct {
	// Version counts the configurations applied: 1 is the one New was
	// given, each successful reload adds one.
	Version int `json:"version"`
	// Applied is when the configuration in force was applied.
	Applied time.Time `json:"applied"`
	// Reloads counts the reloads attempted, applied or refused.
	Reloads int `json:"reloads"`
	// LastReload is when a reload was last attempted; zero if never.
	LastReload time.Time `json:"last_reload,omitzero"`
	// LastReloadOK reports whether the configuration asked for last is the
	// one in force: true before any reload (the configuration the Server
	// started with was applied) and after an applied reload, false after a
	// refused one. A monitor can alert on false from startup.
	LastReloadOK bool `json:"last_reload_ok"`
	// LastErrors are the problems that made the last reload fail, one per
	// line of config.Errors (file:line:column: field: message), or the
	// policy that refused its settings.
	LastErrors []string `json:"last_errors,omitempty"`
	// Warnings name settings of the configuration in force that changed
	// in a reload but apply only on a restart (listen addresses, the DLQ
	// store, the server section's connection limits).
	Warnings []string `json:"warnings,omitempty"`
}

// Status returns the configuration's version and the outcome of the last
// reload.
func (s *Server) Status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.status
	st.LastErrors = append([]string(nil), st.LastErrors...)
	st.Warnings = append([]string(nil), st.Warnings...)
	return st
}

// Reload applies cfg to the running Server: routes are replaced at once
// (requests under way finish on the routes they started on), and every
// policy instance whose settings changed is updated in place, keeping the
// state that still applies — an open breaker stays open, a bulkhead keeps
// its permits, a limiter its tokens, a stale cache its answers. Replayers
// start for routes that now queue and stop for those that no longer do.
//
// A configuration that a policy refuses, or that would leave a
// non-loopback admin API without a token, is refused as a whole: Reload
// returns the error, the old configuration keeps running, and the failure
// is logged and shown by Status (GET /config/status). Listen addresses,
// storage.dlq and the server section's connection limits (all but
// write_timeout) apply only on a restart; a change to them is kept as a
// warning in Status.
func (s *Server) Reload(cfg *config.Config) error {
	if cfg == nil {
		return errors.New("proxy: Reload needs a configuration")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	err := s.applyLocked(cfg)
	s.recordLocked(err)
	return err
}

// ReloadFile reads Options.ConfigPath again and applies it with Reload. A
// file that fails to load or validate is refused like a configuration
// Reload refuses: the error (a config.Errors for validation problems) is
// returned, logged and shown by Status.
func (s *Server) ReloadFile() error {
	if s.opts.ConfigPath == "" {
		s.mu.Lock()
		s.recordLocked(ErrNoConfigFile)
		s.mu.Unlock()
		return ErrNoConfigFile
	}
	cfg, err := s.opts.Loader.Load(s.opts.ConfigPath)
	if err != nil {
		s.mu.Lock()
		s.recordLocked(err)
		s.mu.Unlock()
		return err
	}
	return s.Reload(cfg)
}

// recordLocked notes the outcome of a reload in the status and the log.
func (s *Server) recordLocked(err error) {
	s.status.Reloads++
	s.status.LastReload = s.clock.Now()
	s.status.LastReloadOK = err == nil
	s.status.LastErrors = nil
	if err == nil {
		s.log.Info("proxy: configuration reloaded", slog.Int("version", s.status.Version))
		return
	}
	var errs config.Errors
	if errors.As(err, &errs) {
		for _, e := range errs {
			s.status.LastErrors = append(s.status.LastErrors, e.Error())
		}
	} else {
		s.status.LastErrors = []string{err.Error()}
	}
	s.log.Error("proxy: configuration refused; the previous one keeps running", slog.Any("error", err))
}

// applyLocked builds cfg's routes around the registry's instances and makes
// them live. Nothing changes when it fails.
func (s *Server) applyLocked(cfg *config.Config) error {
	old := s.live.Load()
	if s.adminPublic && cfg.Admin.Token == "" {
		return fmt.Errorf("%w: the admin API listens on a non-loopback address", ErrAdminExposed)
	}
	// Everything that can fail comes before the registry is touched.
	// s.caches keeps the slot of every route that ever had a stale cache,
	// registered once, so that a route removed and added again reuses it.
	caches := map[string]*cacheSlot{}
	fresh := map[string]*cacheSlot{} // slots made or refilled by this reload
	for _, r := range cfg.Routes {
		if r.Fallback == nil || r.Fallback.StaleCache <= 0 {
			continue
		}
		if c, ok := s.caches[r.Name]; ok && c.staleFor == r.Fallback.StaleCache {
			caches[r.Name] = c
			continue
		}
		c, err := newStaleCache(r.Name, r.Fallback.StaleCache, s.opts, s)
		if err != nil {
			return fmt.Errorf("proxy: route %q: stale cache: %w", r.Name, err)
		}
		slot := &cacheSlot{name: r.Name, staleFor: r.Fallback.StaleCache}
		slot.c.Store(c)
		caches[r.Name], fresh[r.Name] = slot, slot
	}
	newReplayers := map[string]*replayerSlot{}
	for _, r := range cfg.Routes {
		if r.OnExhausted != config.OnExhaustedQueue {
			continue
		}
		if _, ok := s.replayers[r.Name]; ok {
			continue
		}
		slot, err := s.newReplayer(r.Name)
		if err != nil {
			return err
		}
		newReplayers[r.Name] = slot
	}
	limits, breakers, err := s.storageFor(cfg.Storage)
	if err != nil {
		return err
	}
	opts := buildOptions{neverRetry: neverRetry, onBreakerChange: s.logBreaker,
		limits: limits, breakers: breakers, instance: s.instance, clock: s.clock, log: s.log,
		transport: s.transport}
	if old != nil {
		opts.previous = old.built
	}
	b, err := build(s.reg, cfg, opts)
	if err != nil {
		s.dropStorage(limits, breakers)
		return err
	}

	// Apply: nothing below fails.
	for name, slot := range fresh {
		if prev, ok := s.caches[name]; ok {
			prev.staleFor = slot.staleFor
			prev.c.Store(slot.c.Load()) // keep the registered slot
			caches[name] = prev
			continue
		}
		s.caches[name] = slot
		if err := s.reg.AddCache(slot); err != nil {
			s.log.Warn("proxy: stale cache not registered", slog.String("route", name), slog.Any("error", err))
		}
	}
	st := &runtime{cfg: cfg, built: b, version: 1}
	if old != nil {
		st.version = old.version + 1
	}
	for _, br := range b.routes {
		st.routes = append(st.routes, newRoute(s, cfg, br, caches[br.route.Name]))
	}
	s.live.Store(st)
	if old != nil {
		old.built.closeUnused(b)
	}
	s.keepStorage(limits, breakers)

	for name, slot := range s.replayers {
		if r := st.route(name); r == nil || !r.queue {
			if slot.cancel != nil {
				slot.cancel()
			}
			delete(s.replayers, name)
		}
	}
	for name, slot := range newReplayers {
		s.replayers[name] = slot
		s.startReplayerLocked(slot)
	}

	s.status.Version = st.version
	s.status.Applied = s.clock.Now()
	if old == nil {
		s.first = cfg
		s.status.LastReloadOK = true // the configuration asked for is in force
	}
	s.status.Warnings = restartWarnings(s.first, cfg, nil)
	for _, w := range s.status.Warnings {
		s.log.Warn("proxy: " + w)
	}
	return nil
}

// storageFor returns the Redis clients of storage.ratelimit and
// storage.breakers for st: the running ones where the entry did not
// change, new ones where it did (nil for an entry without Redis).
func (s *Server) storageFor(st config.Storage) (limits, breakers *sharedClient, err error) {
	limits, breakers = s.limits, s.breakers
	if !limits.same(st.RateLimit) {
		if limits, err = openShared(st.RateLimit); err != nil {
			return nil, nil, fmt.Errorf("proxy: storage.ratelimit: %w", err)
		}
	}
	if !breakers.same(st.Breakers) {
		if breakers, err = openShared(st.Breakers); err != nil {
			s.dropStorage(limits, nil)
			return nil, nil, fmt.Errorf("proxy: storage.breakers: %w", err)
		}
	}
	return limits, breakers, nil
}

// dropStorage closes the clients storageFor opened for a configuration
// that was refused.
func (s *Server) dropStorage(limits, breakers *sharedClient) {
	if limits != s.limits {
		_ = limits.close()
	}
	if breakers != s.breakers {
		_ = breakers.close()
	}
}

// keepStorage makes the clients of the configuration just applied the
// Server's and closes the ones it replaced. Requests still running on the
// old routes may see the old client closed; their limit then decides by
// its fail mode.
func (s *Server) keepStorage(limits, breakers *sharedClient) {
	if limits != s.limits {
		_ = s.limits.close()
		s.limits = limits
	}
	if breakers != s.breakers {
		_ = s.breakers.close()
		s.breakers = breakers
	}
}

// restartWarnings lists the settings that differ between the
// configuration the Server started with and cfg but apply only on a
// restart.
func restartWarnings(old, cfg *config.Config, ws []string) []string {
	if old.Listen != cfg.Listen {
		ws = append(ws, fmt.Sprintf("listen changed from %s to %s: applies on restart", old.Listen, cfg.Listen))
	}
	if old.Admin.Listen != cfg.Admin.Listen {
		ws = append(ws, fmt.Sprintf("admin.listen changed from %s to %s: applies on restart", old.Admin.Listen, cfg.Admin.Listen))
	}
	if !old.Storage.DLQ.Equal(cfg.Storage.DLQ) {
		ws = append(ws, "storage.dlq changed: applies on restart")
	}
	if old.InstanceID != cfg.InstanceID {
		ws = append(ws, "instance_id changed: applies on restart")
	}
	if old.Log != cfg.Log {
		ws = append(ws, "log changed: applies on restart")
	}
	o, n := old.Server, cfg.Server
	o.WriteTimeout, n.WriteTimeout = 0, 0 // applies at once, to each answer
	if o != n {
		ws = append(ws, "server changed: read_header_timeout, idle_timeout, max_header_bytes and max_connections apply on restart")
	}
	return ws
}

// logBreaker logs a breaker's change of state: opening at Warn, the rest at
// Info.
func (s *Server) logBreaker(c breaker.StateChange) {
	lvl := slog.LevelInfo
	if c.To == breaker.StateOpen || c.To == breaker.StateForcedOpen {
		lvl = slog.LevelWarn
	}
	s.log.Log(context.Background(), lvl, "proxy: circuit breaker "+c.To.String(),
		slog.String("breaker", c.Name), slog.String("from", c.From.String()))
}

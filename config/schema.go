package config

import (
	"cmp"
	"fmt"
	"maps"
	"net"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/sluice-go/sluice/proxy/pool"
)

// This file maps the YAML schema onto Config, one decoder per section, and
// holds the checks that span sections.

func (d *decoder) config(n *yaml.Node, c *Config) {
	var adminSeen, serverSeen map[string]*yaml.Node
	var routes []routeNodes
	seen := map[string]*yaml.Node{}
	if n != nil && !(n.Kind == yaml.ScalarNode && n.Tag == "!!null") {
		seen = d.mapping(n, "", fields{
			"listen":  func(v *yaml.Node, p string) { c.Listen = d.address(v, p) },
			"admin":   func(v *yaml.Node, p string) { adminSeen = d.admin(v, p, &c.Admin) },
			"storage": func(v *yaml.Node, p string) { d.storage(v, p, &c.Storage) },
			"instance_id": func(v *yaml.Node, p string) {
				c.InstanceID = d.str(v, p)
				if err := checkInstanceID(c.InstanceID); err != nil {
					d.errorf(v, p, "%v", err)
				}
			},
			"log": func(v *yaml.Node, p string) {
				d.mapping(v, p, fields{
					"level": func(v *yaml.Node, p string) {
						c.Log.Level = d.enum(v, p, "log level", "debug", "info", "warn", "error")
					},
					"format": func(v *yaml.Node, p string) { c.Log.Format = d.enum(v, p, "log format", "text", "json") },
				})
			},
			"server":         func(v *yaml.Node, p string) { serverSeen = d.server(v, p, &c.Server) },
			"shutdown_grace": func(v *yaml.Node, p string) { c.ShutdownGrace = d.duration(v, p, false) },
			"policies":       func(v *yaml.Node, p string) { c.Policies = d.policies(v, p) },
			"routes":         func(v *yaml.Node, p string) { c.Routes, routes = d.routes(v, p) },
		})
		if seen == nil {
			return // not a mapping; already reported
		}
	}
	d.checkAdmin(n, c, seen["listen"], adminSeen["listen"])
	if seen["routes"] == nil {
		if !d.policiesOnly {
			d.errorf(n, "routes", "at least one route is required")
		}
	} else if len(c.Routes) == 0 && resolve(seen["routes"]).Kind == yaml.SequenceNode {
		d.errorf(seen["routes"], "routes", "at least one route is required")
	}
	d.checkRoutes(c, routes)
	d.checkQueuedBodies(c, routes, serverSeen["max_header_bytes"])
}

// server decodes the server section: connection timeouts, the header size
// limit and the connection cap.
func (d *decoder) server(n *yaml.Node, path string, s *Server) map[string]*yaml.Node {
	return d.mapping(n, path, fields{
		"read_header_timeout": func(v *yaml.Node, p string) { s.ReadHeaderTimeout = d.duration(v, p, true) },
		"idle_timeout":        func(v *yaml.Node, p string) { s.IdleTimeout = d.duration(v, p, true) },
		"write_timeout":       func(v *yaml.Node, p string) { s.WriteTimeout = d.duration(v, p, false) },
		"max_header_bytes": func(v *yaml.Node, p string) {
			s.MaxHeaderBytes = d.size(v, p)
			if s.MaxHeaderBytes != 0 && (s.MaxHeaderBytes < KiB || s.MaxHeaderBytes > MaxMaxHeaderBytes) {
				d.errorf(v, p, "must be between %v and %v, got %v", KiB, MaxMaxHeaderBytes, s.MaxHeaderBytes)
			}
		},
		"max_connections": func(v *yaml.Node, p string) { s.MaxConnections = d.integer(v, p, 0) },
	})
}

func (d *decoder) address(n *yaml.Node, path string) string {
	s, ok := d.text(n, path, "an address")
	if ok {
		if err := checkAddr(s); err != nil {
			d.errorf(n, path, "%v", err)
		}
	}
	return s
}

func (d *decoder) admin(n *yaml.Node, path string, a *Admin) map[string]*yaml.Node {
	return d.mapping(n, path, fields{
		"listen": func(v *yaml.Node, p string) { a.Listen = d.address(v, p) },
		"token":  func(v *yaml.Node, p string) { a.Token = d.str(v, p) },
		"allowed_hosts": func(v *yaml.Node, p string) {
			a.AllowedHosts = nil
			d.sequence(v, p, func(_ int, v *yaml.Node, p string) {
				h, ok := d.text(v, p, "a host name or IP address")
				if !ok {
					return
				}
				if err := checkAllowedHost(h); err != nil {
					d.errorf(v, p, "%v", err)
					return
				}
				a.AllowedHosts = append(a.AllowedHosts, strings.ToLower(strings.TrimSuffix(h, ".")))
			})
		},
	})
}

// checkAllowedHost accepts an IP address or a DNS host name, without a
// port: what admin.allowed_hosts compares with the Host header.
func checkAllowedHost(h string) error {
	if ip := net.ParseIP(strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")); ip != nil {
		return nil
	}
	if strings.Contains(h, ":") {
		return fmt.Errorf("%q: want a host name or IP address without a port or scheme", h)
	}
	name := strings.TrimSuffix(h, ".")
	if name == "" || len(name) > 253 {
		return fmt.Errorf("%q is not a host name", h)
	}
	for _, label := range strings.Split(name, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Errorf("%q is not a host name", h)
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return fmt.Errorf("%q is not a host name: %q is not allowed", h, c)
			}
		}
	}
	return nil
}

// checkAdmin refuses an admin API open to the network without a token, and
// an admin server on the proxy's own address.
func (d *decoder) checkAdmin(root *yaml.Node, c *Config, listenNode, adminNode *yaml.Node) {
	at, field := adminNode, "admin.listen"
	if at == nil {
		at = root
	}
	if c.Admin.Token == "" && c.Admin.Listen != "" && !isLoopback(c.Admin.Listen) && checkAddr(c.Admin.Listen) == nil {
		d.errorf(at, field, "the admin API on %s is reachable from other machines; set admin.token (for example token: ${SLUICE_ADMIN_TOKEN}) or listen on a loopback address", c.Admin.Listen)
	}
	if c.Admin.Listen == c.Listen && !strings.HasSuffix(c.Listen, ":0") {
		if adminNode == nil && listenNode != nil {
			at, field = listenNode, "listen"
		}
		d.errorf(at, field, "the proxy and the admin server cannot both listen on %s", c.Listen)
	}
}

func (d *decoder) policies(n *yaml.Node, path string) map[string]Policy {
	es, ok := d.entries(n, path, 0)
	if !ok || len(es) == 0 {
		return nil
	}
	out := make(map[string]Policy, len(es))
	for _, e := range es {
		p := join(path, e.key)
		if err := checkName(e.key); err != nil {
			d.errorf(e.keyNode, p, "%v", err)
		}
		out[e.key] = d.policy(e.val, p)
	}
	return out
}

func (d *decoder) policy(n *yaml.Node, path string) Policy {
	var pol Policy
	d.mapping(n, path, fields{
		"retry":           func(v *yaml.Node, p string) { pol.Retry = d.retry(v, p) },
		"circuit_breaker": func(v *yaml.Node, p string) { pol.CircuitBreaker = d.breaker(v, p) },
		"bulkhead":        func(v *yaml.Node, p string) { pol.Bulkhead = d.bulkhead(v, p) },
		"rate_limit":      func(v *yaml.Node, p string) { pol.RateLimit = d.rateLimit(v, p) },
		"timeout":         func(v *yaml.Node, p string) { pol.Timeout = d.duration(v, p, true) },
	})
	return pol
}

func (d *decoder) retry(n *yaml.Node, path string) *Retry {
	r := &Retry{}
	seen := d.mapping(n, path, fields{
		"max_attempts": func(v *yaml.Node, p string) { r.MaxAttempts = d.integer(v, p, 1) },
		"max_elapsed":  func(v *yaml.Node, p string) { r.MaxElapsed = d.duration(v, p, true) },
		"backoff": func(v *yaml.Node, p string) {
			r.Backoff = Backoff(d.enum(v, p, "backoff", string(BackoffExponential), string(BackoffLinear), string(BackoffConstant), string(BackoffDecorrelated)))
		},
		"base_delay": func(v *yaml.Node, p string) { r.BaseDelay = d.duration(v, p, true) },
		"max_delay":  func(v *yaml.Node, p string) { r.MaxDelay = d.duration(v, p, true) },
		"multiplier": func(v *yaml.Node, p string) {
			if m, ok := d.number(v, p); ok && m < 1 {
				d.errorf(v, p, "must be at least 1, got %v", m)
			} else {
				r.Multiplier = m
			}
		},
		"jitter": func(v *yaml.Node, p string) {
			r.Jitter = Jitter(d.enum(v, p, "jitter", string(JitterNone), string(JitterFull), string(JitterEqual), string(JitterProportional)))
		},
		"jitter_ratio":    func(v *yaml.Node, p string) { r.JitterRatio = d.ratio(v, p) },
		"budget":          func(v *yaml.Node, p string) { r.Budget = d.budget(v, p) },
		"retry_on_status": func(v *yaml.Node, p string) { r.RetryOnStatus = d.statuses(v, p) },
	})
	if r.BaseDelay > 0 && r.MaxDelay > 0 && r.MaxDelay < r.BaseDelay {
		d.errorf(seen["max_delay"], join(path, "max_delay"), "must be at least base_delay (%v), got %v", r.BaseDelay, r.MaxDelay)
	}
	if v := seen["jitter_ratio"]; v != nil && seen["jitter"] != nil && r.Jitter != JitterProportional && r.Jitter != "" {
		d.errorf(v, join(path, "jitter_ratio"), "applies only to jitter: proportional (jitter is %s)", r.Jitter)
	} else if v != nil && seen["jitter"] == nil {
		d.errorf(v, join(path, "jitter_ratio"), "applies only to jitter: proportional; set jitter too")
	}
	return r
}

func (d *decoder) budget(n *yaml.Node, path string) *Budget {
	if r := resolve(n); r != nil && r.Kind == yaml.ScalarNode {
		s, ok := d.text(n, path, `a mapping or "off"`)
		if ok && s != "off" {
			d.errorf(n, path, `want a mapping (ratio, window, min_per_second) or "off", got %q`, s)
		}
		return &Budget{Off: true}
	}
	b := &Budget{}
	d.mapping(n, path, fields{
		"ratio":          func(v *yaml.Node, p string) { b.Ratio = d.ratio(v, p) },
		"window":         func(v *yaml.Node, p string) { b.Window = d.duration(v, p, true) },
		"min_per_second": func(v *yaml.Node, p string) { b.MinPerSecond = d.positive(v, p) },
	})
	return b
}

func (d *decoder) statuses(n *yaml.Node, path string) []int {
	var out []int
	first := map[int]int{}
	d.sequence(n, path, func(_ int, v *yaml.Node, p string) {
		code := d.integer(v, p, 0)
		switch {
		case code == 0:
			return // reported
		case code < 100 || code > 599:
			d.errorf(v, p, "bad HTTP status %d (want 100 to 599)", code)
		case first[code] != 0:
			d.errorf(v, p, "duplicate status %d (first at line %d)", code, first[code])
		default:
			first[code] = v.Line
			out = append(out, code)
		}
	})
	return out
}

func (d *decoder) breaker(n *yaml.Node, path string) *CircuitBreaker {
	b := &CircuitBreaker{}
	seen := d.mapping(n, path, fields{
		"failure_threshold":  func(v *yaml.Node, p string) { b.FailureThreshold = d.integer(v, p, 1) },
		"failure_rate":       func(v *yaml.Node, p string) { b.FailureRate = d.ratio(v, p) },
		"slow_call_duration": func(v *yaml.Node, p string) { b.SlowCallDuration = d.duration(v, p, true) },
		"slow_call_rate":     func(v *yaml.Node, p string) { b.SlowCallRate = d.ratio(v, p) },
		"window":             func(v *yaml.Node, p string) { b.Window = d.duration(v, p, true) },
		"window_calls":       func(v *yaml.Node, p string) { b.WindowCalls = d.integer(v, p, 1) },
		"minimum_calls":      func(v *yaml.Node, p string) { b.MinimumCalls = d.integer(v, p, 1) },
		"open_for":           func(v *yaml.Node, p string) { b.OpenFor = d.duration(v, p, true) },
		"max_open_for":       func(v *yaml.Node, p string) { b.MaxOpenFor = d.duration(v, p, true) },
		"half_open_calls":    func(v *yaml.Node, p string) { b.HalfOpenCalls = d.integer(v, p, 1) },
		"success_threshold":  func(v *yaml.Node, p string) { b.SuccessThreshold = d.integer(v, p, 1) },
		"half_open_max_wait": func(v *yaml.Node, p string) { b.HalfOpenMaxWait = d.duration(v, p, true) },
	})
	if seen["window"] != nil && seen["window_calls"] != nil {
		d.errorf(seen["window_calls"], join(path, "window_calls"), "set window (a time-based window) or window_calls (a count-based one), not both")
	}
	if b.SlowCallRate > 0 && seen["slow_call_duration"] == nil {
		d.errorf(seen["slow_call_rate"], join(path, "slow_call_rate"), "needs slow_call_duration, the time above which a call is slow")
	}
	if b.OpenFor > 0 && b.MaxOpenFor > 0 && b.MaxOpenFor < b.OpenFor {
		d.errorf(seen["max_open_for"], join(path, "max_open_for"), "must be at least open_for (%v), got %v", b.OpenFor, b.MaxOpenFor)
	}
	if b.HalfOpenCalls > 0 && b.SuccessThreshold > b.HalfOpenCalls {
		d.errorf(seen["success_threshold"], join(path, "success_threshold"), "must be at most half_open_calls (%d), got %d: the breaker could never close", b.HalfOpenCalls, b.SuccessThreshold)
	}
	if b.WindowCalls > 0 && b.MinimumCalls > b.WindowCalls {
		d.errorf(seen["minimum_calls"], join(path, "minimum_calls"), "must be at most window_calls (%d), got %d: the window never holds that many calls", b.WindowCalls, b.MinimumCalls)
	}
	return b
}

func (d *decoder) bulkhead(n *yaml.Node, path string) *Bulkhead {
	b := &Bulkhead{}
	seen := d.mapping(n, path, fields{
		"max_concurrent": func(v *yaml.Node, p string) { b.MaxConcurrent = d.integer(v, p, 1) },
		"max_queue":      func(v *yaml.Node, p string) { b.MaxQueue = d.integer(v, p, 0) },
		"max_wait":       func(v *yaml.Node, p string) { b.MaxWait = d.duration(v, p, true) },
	})
	if b.MaxWait > 0 && b.MaxQueue == 0 {
		d.errorf(seen["max_wait"], join(path, "max_wait"), "needs max_queue above 0: without a queue no caller waits (max_queue is 0)")
	}
	return b
}

func (d *decoder) rateLimit(n *yaml.Node, path string) *RateLimit {
	r := defaultRateLimit()
	seen := d.mapping(n, path, fields{
		"rate":     func(v *yaml.Node, p string) { r.Rate = d.positive(v, p) },
		"per":      func(v *yaml.Node, p string) { r.Per = d.duration(v, p, true) },
		"burst":    func(v *yaml.Node, p string) { r.Burst = d.integer(v, p, 1) },
		"smooth":   func(v *yaml.Node, p string) { r.Smooth = d.boolean(v, p) },
		"max_wait": func(v *yaml.Node, p string) { r.MaxWait = d.duration(v, p, false) },
		"key": func(v *yaml.Node, p string) {
			r.Key = d.str(v, p)
			if err := checkLimitKey(r.Key); err != nil {
				d.errorf(v, p, "%v", err)
			}
		},
	})
	if seen != nil && seen["rate"] == nil {
		d.errorf(n, join(path, "rate"), "required: the number of calls allowed every per (default 1s)")
	}
	return &r
}

// routeNodes keeps the nodes the cross-route checks point at.
type routeNodes struct {
	route        *yaml.Node
	name, policy *yaml.Node
	maxBody      *yaml.Node // max_retry_body, nil if not written
	onExhausted  *yaml.Node
}

func (d *decoder) routes(n *yaml.Node, path string) ([]Route, []routeNodes) {
	var routes []Route
	var nodes []routeNodes
	d.sequence(n, path, func(_ int, v *yaml.Node, p string) {
		r, seen := d.route(v, p)
		routes = append(routes, r)
		nodes = append(nodes, routeNodes{v, seen["name"], seen["policy"], seen["max_retry_body"], seen["on_exhausted"]})
	})
	return routes, nodes
}

func (d *decoder) route(n *yaml.Node, path string) (Route, map[string]*yaml.Node) {
	r := defaultRoute()
	errsBefore := len(d.errs)
	var pl Pool
	var weightNode *yaml.Node // the first {url, weight} upstream
	seen := d.mapping(n, path, fields{
		"name": func(v *yaml.Node, p string) { r.Name = d.name(v, p) },
		"match": func(v *yaml.Node, p string) {
			d.mapping(v, p, fields{
				"path_prefix": func(v *yaml.Node, p string) {
					r.Match.PathPrefix = d.str(v, p)
					if s := r.Match.PathPrefix; !strings.HasPrefix(s, "/") || strings.ContainsAny(s, "?# \t") {
						d.errorf(v, p, "bad path prefix %q (want a path starting with /, without query or spaces)", s)
					}
				},
				"host": func(v *yaml.Node, p string) {
					if s, ok := d.text(v, p, "a host"); ok {
						r.Match.Host = s
						if err := checkHostMatch(s); err != nil {
							d.errorf(v, p, "%v", err)
						}
					}
				},
				"methods": func(v *yaml.Node, p string) { r.Match.Methods = d.methods(v, p) },
			})
		},
		"upstreams": func(v *yaml.Node, p string) {
			first := map[string]int{}
			if d.sequence(v, p, func(_ int, v *yaml.Node, p string) {
				s, w, ok := d.upstream(v, p)
				if !ok {
					return
				}
				r.Upstreams = append(r.Upstreams, s)
				pl.Weights = append(pl.Weights, w)
				if resolve(v).Kind == yaml.MappingNode && weightNode == nil {
					weightNode = v
				}
				if err := checkUpstream(s); err != nil {
					d.errorf(v, p, "%v", err)
				} else if line, dup := first[s]; dup {
					d.errorf(v, p, "duplicate upstream %s (first at line %d)", s, line)
				} else {
					first[s] = v.Line
				}
			}) == 0 {
				d.errorf(v, p, "at least one upstream is required")
			}
		},
		"balance": func(v *yaml.Node, p string) {
			if s, ok := d.text(v, p, "p2c, round_robin or weighted"); ok {
				b, err := pool.ParseBalancer(s)
				if err != nil {
					d.errorf(v, p, "unknown balance %q (want p2c, round_robin, weighted)", s)
				}
				pl.Balance = b
			}
		},
		"outlier":      func(v *yaml.Node, p string) { pl.Outlier = d.outlier(v, p) },
		"health_check": func(v *yaml.Node, p string) { d.healthCheck(v, p, &pl) },
		"policy":       func(v *yaml.Node, p string) { r.Policy = d.str(v, p) },
		"timeout":      func(v *yaml.Node, p string) { r.Timeout = d.duration(v, p, true) },
		"rate_limit":   func(v *yaml.Node, p string) { r.RateLimit = d.rateLimit(v, p) },
		"fallback": func(v *yaml.Node, p string) {
			f := &Fallback{}
			seen := d.mapping(v, p, fields{
				"stale_cache": func(v *yaml.Node, p string) { f.StaleCache = d.duration(v, p, true) },
			})
			if seen != nil && seen["stale_cache"] == nil {
				d.errorf(v, join(p, "stale_cache"), "required: how long the last good answer may be served")
			}
			r.Fallback = f
		},
		"on_exhausted": func(v *yaml.Node, p string) {
			r.OnExhausted = OnExhausted(d.enum(v, p, "on_exhausted", string(OnExhaustedQueue), string(OnExhaustedFail)))
		},
		"max_retry_body":       func(v *yaml.Node, p string) { r.MaxRetryBody = d.size(v, p) },
		"retry_methods":        func(v *yaml.Node, p string) { r.RetryMethods = d.methods(v, p) },
		"body_timeout":         func(v *yaml.Node, p string) { r.BodyTimeout = d.duration(v, p, true) },
		"trust_client_headers": func(v *yaml.Node, p string) { r.TrustClientHeaders = d.boolean(v, p) },
		"queue_methods":        func(v *yaml.Node, p string) { r.QueueMethods = d.methods(v, p) },
	})
	if seen != nil {
		if seen["name"] == nil {
			d.errorf(n, join(path, "name"), "required: every route has a name")
		}
		if seen["upstreams"] == nil {
			d.errorf(n, join(path, "upstreams"), "required: at least one upstream URL")
		}
		if seen["balance"] != nil || seen["outlier"] != nil || seen["health_check"] != nil {
			r.Pool = &pl
			if err := PoolConfig(r).Validate(); err != nil && len(d.errs) == errsBefore {
				d.errorf(n, path, "%v", err)
			}
		} else if weightNode != nil {
			d.errorf(weightNode, join(path, "upstreams"), "a weight needs a pool: set balance (or outlier, health_check) to balance over the upstreams instead of trying them in order")
		}
		if v := seen["queue_methods"]; v != nil && r.OnExhausted != OnExhaustedQueue {
			d.errorf(v, join(path, "queue_methods"), "applies only to on_exhausted: queue (on_exhausted is %s)", r.OnExhausted)
		}
	}
	return r, seen
}

func (d *decoder) methods(n *yaml.Node, path string) []string {
	var out []string
	first := map[string]int{}
	d.sequence(n, path, func(_ int, v *yaml.Node, p string) {
		m, ok := d.text(v, p, "an HTTP method")
		if !ok {
			return
		}
		if err := checkMethod(m); err != nil {
			d.errorf(v, p, "%v", err)
		} else if line, dup := first[m]; dup {
			d.errorf(v, p, "duplicate method %s (first at line %d)", m, line)
		} else {
			first[m] = v.Line
			out = append(out, m)
		}
	})
	return out
}

// checkRoutes checks what spans routes and policies: unique route names and
// policy references that resolve.
func (d *decoder) checkRoutes(c *Config, nodes []routeNodes) {
	firstName := map[string]int{}
	for i, r := range c.Routes {
		rn := nodes[i]
		p := index("routes", i)
		if rn.name != nil && r.Name != "" {
			if line, dup := firstName[r.Name]; dup {
				d.errorf(rn.name, join(p, "name"), "duplicate route name %q (first at line %d)", r.Name, line)
			} else {
				firstName[r.Name] = rn.name.Line
			}
		}
		if rn.policy != nil && r.Policy != "" {
			if _, ok := c.Policies[r.Policy]; !ok {
				d.errorf(rn.policy, join(p, "policy"), "unknown policy %q (%s)", r.Policy, policyList(r.Policy, c.Policies))
			}
		}
	}
}

func policyList(name string, ps map[string]Policy) string {
	if len(ps) == 0 {
		return "no policies are defined"
	}
	names := slices.Sorted(maps.Keys(ps))
	if best := closest(name, names); best != "" {
		return "did you mean " + best + "?"
	}
	return "defined: " + strings.Join(names, ", ")
}

// checkQueuedBodies refuses a queueing route whose max_retry_body, with the
// room a request's header takes (QueuedRequestOverhead of
// server.max_header_bytes), would not fit a dead-letter record
// (DLQRecordBytes): such a body would be kept for retries but could not be
// queued, and the client would get 503 instead of 202.
func (d *decoder) checkQueuedBodies(c *Config, nodes []routeNodes, headerNode *yaml.Node) {
	overhead := QueuedRequestOverhead(c.Server.MaxHeaderBytes)
	for i, r := range c.Routes {
		if r.OnExhausted != OnExhaustedQueue || r.MaxRetryBody+overhead <= DLQRecordBytes {
			continue
		}
		at, field := nodes[i].maxBody, join(index("routes", i), "max_retry_body")
		if at == nil {
			at = cmp.Or(headerNode, nodes[i].onExhausted, nodes[i].route)
		}
		d.errorf(at, field, "%v is more than a queued request can hold: a dead-letter record holds %v, of which %v is kept for the request's header (server.max_header_bytes %v); lower max_retry_body to at most %v",
			r.MaxRetryBody, DLQRecordBytes, overhead, c.Server.MaxHeaderBytes, DLQRecordBytes-overhead)
	}
}

// checkInstanceID checks instance_id: printable, no spaces, at most 128
// bytes, since it names the instance in shared records and reports.
func checkInstanceID(id string) error {
	switch {
	case id == "":
		return fmt.Errorf("must not be empty (leave it out for host:pid)")
	case len(id) > 128:
		return fmt.Errorf("bad instance id: %d bytes, at most 128", len(id))
	case strings.ContainsFunc(id, func(c rune) bool { return c <= ' ' || c == 0x7f }):
		return fmt.Errorf("bad instance id %q: no spaces or control characters", id)
	}
	return nil
}

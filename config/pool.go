package config

import (
	"cmp"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/sluice-go/sluice/proxy/pool"
)

// Pool makes a route's upstreams one replica pool (see package
// proxy/pool): requests are balanced over them, failing replicas are
// ejected, and retries go to replicas not yet tried. A route gets a Pool
// when it writes balance, outlier or health_check; without one, its
// upstreams are a primary and fallbacks tried in order.
type Pool struct {
	// Weights holds each upstream's weight, beside Route.Upstreams: 1
	// unless written as {url, weight}.
	Weights []int `yaml:"-"`
	// Balance chooses among the replicas (balance: p2c, round_robin,
	// weighted). The zero value is P2C.
	Balance pool.Balancer `yaml:"-"`
	// Outlier configures ejection (outlier); zero fields take the pool
	// package's defaults.
	Outlier pool.Outlier `yaml:"-"`
	// Health configures active checks (health_check); Path is empty and
	// Health.Interval zero when the route has none.
	Health pool.Health `yaml:"-"`
	// HealthPath is the path health checks GET on each replica.
	HealthPath string `yaml:"-"`
}

// PoolConfig returns the pool.Config of route r, which has a Pool: named
// after the route, one replica per upstream with its weight.
func PoolConfig(r Route) pool.Config {
	p := r.Pool
	cfg := pool.Config{Name: r.Name, Balancer: p.Balance, Outlier: p.Outlier, Health: p.Health}
	for i, u := range r.Upstreams {
		w := 1
		if i < len(p.Weights) {
			w = p.Weights[i]
		}
		cfg.Replicas = append(cfg.Replicas, pool.Endpoint{Addr: u, Weight: w})
	}
	return cfg
}

// upstream decodes one entry of upstreams: a URL, or {url, weight}. It
// returns the URL and the weight (1 for a plain URL).
func (d *decoder) upstream(n *yaml.Node, path string) (string, int, bool) {
	if r := resolve(n); r == nil || r.Kind != yaml.MappingNode {
		s, ok := d.text(n, path, "an upstream URL or {url, weight}")
		return s, 1, ok
	}
	var s string
	w := 1
	seen := d.mapping(n, path, fields{
		"url": func(v *yaml.Node, p string) { s, _ = d.text(v, p, "an upstream URL") },
		"weight": func(v *yaml.Node, p string) {
			if w = d.integer(v, p, 1); w > 10000 {
				d.errorf(v, p, "must be at most 10000, got %d", w)
			}
		},
	})
	if seen == nil {
		return "", 0, false
	}
	if seen["url"] == nil {
		d.errorf(n, join(path, "url"), "required: the replica's URL")
		return "", 0, false
	}
	return s, w, s != ""
}

// outlier decodes a route's outlier section.
func (d *decoder) outlier(n *yaml.Node, path string) pool.Outlier {
	if r := resolve(n); r != nil && r.Kind == yaml.ScalarNode {
		s, ok := d.text(n, path, `a mapping or "off"`)
		if ok && s != "off" {
			d.errorf(n, path, `want a mapping or "off", got %q`, s)
		}
		return pool.Outlier{Disabled: true}
	}
	var o pool.Outlier
	seen := d.mapping(n, path, fields{
		"consecutive_failures": func(v *yaml.Node, p string) { o.ConsecutiveFailures = d.integer(v, p, 1) },
		"success_rate":         func(v *yaml.Node, p string) { o.SuccessRate = d.successRate(v, p) },
		"interval":             func(v *yaml.Node, p string) { o.Interval = d.duration(v, p, true) },
		"base_ejection_time":   func(v *yaml.Node, p string) { o.BaseEjectionTime = d.duration(v, p, true) },
		"max_ejection_time":    func(v *yaml.Node, p string) { o.MaxEjectionTime = d.duration(v, p, true) },
		"max_ejection_percent": func(v *yaml.Node, p string) {
			if o.MaxEjectionPercent = d.integer(v, p, 1); o.MaxEjectionPercent > 99 {
				d.errorf(v, p, "must be 1 to 99, got %d: ejection never takes the whole pool out (write outlier: off for no ejection)", o.MaxEjectionPercent)
			}
		},
		"trial_requests":  func(v *yaml.Node, p string) { o.TrialRequests = d.integer(v, p, 1) },
		"trial_successes": func(v *yaml.Node, p string) { o.TrialSuccesses = d.integer(v, p, 1) },
	})
	base := cmp.Or(o.BaseEjectionTime, pool.DefaultBaseEjectionTime)
	if v := seen["max_ejection_time"]; v != nil && o.MaxEjectionTime > 0 && o.MaxEjectionTime < base {
		d.errorf(v, join(path, "max_ejection_time"), "must be at least base_ejection_time (%v), got %v", base, o.MaxEjectionTime)
	}
	return o
}

// successRate decodes outlier.success_rate: a mapping or "off".
func (d *decoder) successRate(n *yaml.Node, path string) pool.SuccessRate {
	if r := resolve(n); r != nil && r.Kind == yaml.ScalarNode {
		s, ok := d.text(n, path, `a mapping or "off"`)
		if ok && s != "off" {
			d.errorf(n, path, `want a mapping (stdev_factor, min_requests, min_hosts) or "off", got %q`, s)
		}
		return pool.SuccessRate{Disabled: true}
	}
	var s pool.SuccessRate
	d.mapping(n, path, fields{
		"stdev_factor": func(v *yaml.Node, p string) { s.StdevFactor = d.positive(v, p) },
		"min_requests": func(v *yaml.Node, p string) { s.MinRequests = d.integer(v, p, 1) },
		"min_hosts":    func(v *yaml.Node, p string) { s.MinHosts = d.integer(v, p, 1) },
	})
	return s
}

// healthCheck decodes a route's health_check section into p.
func (d *decoder) healthCheck(n *yaml.Node, path string, p *Pool) {
	h := pool.Health{Interval: DefaultHealthInterval}
	seen := d.mapping(n, path, fields{
		"path": func(v *yaml.Node, q string) {
			p.HealthPath = d.str(v, q)
			if s := p.HealthPath; len(s) == 0 || s[0] != '/' {
				d.errorf(v, q, "bad health check path %q (want a path starting with /)", s)
			}
		},
		"interval":            func(v *yaml.Node, q string) { h.Interval = d.duration(v, q, true) },
		"timeout":             func(v *yaml.Node, q string) { h.Timeout = d.duration(v, q, true) },
		"healthy_threshold":   func(v *yaml.Node, q string) { h.HealthyThreshold = d.integer(v, q, 1) },
		"unhealthy_threshold": func(v *yaml.Node, q string) { h.UnhealthyThreshold = d.integer(v, q, 1) },
	})
	if seen == nil {
		return
	}
	if seen["path"] == nil {
		d.errorf(n, join(path, "path"), "required: the path to GET on each replica, such as /healthz")
	}
	if v := seen["timeout"]; v != nil && h.Interval > 0 && h.Timeout >= h.Interval {
		d.errorf(v, join(path, "timeout"), "must be less than interval (%v), got %v: a check must end before the next one is due", h.Interval, h.Timeout)
	}
	p.Health = h
}

// DefaultHealthInterval is health_check.interval when not written.
const DefaultHealthInterval = 5 * time.Second

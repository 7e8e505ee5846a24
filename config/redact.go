package config

import (
	"maps"
	"slices"
	"strings"
)

// RedactedValue replaces secrets in the Config that Redacted returns.
const RedactedValue = "REDACTED"

// Redacted returns a deep copy of c that is safe to show (the admin API's
// GET /config, logs): admin.token is replaced by RedactedValue; every string
// that came from ${NAME} expansion is shown as written in the file
// (${NAME} or ${NAME:-default}), not with the value of the variable; and
// passwords in URLs are masked. A literal "${" is escaped as "$${", so the
// copy marshalled to YAML parses back to c's values given the same
// environment, except for the masked secrets.
func (c *Config) Redacted() *Config {
	r := c.clone()
	r.eachString(func(path string, s *string) {
		secret := secretPaths[path] && *s != "" // an empty secret shows as written
		if raw, ok := c.env[path]; ok {
			*s = raw
		} else {
			*s = strings.ReplaceAll(*s, "${", "$${")
		}
		if secret {
			*s = RedactedValue
		}
		*s = maskPassword(*s)
	})
	return r
}

// secretPaths are the fields Redacted replaces by RedactedValue whatever
// they hold.
var secretPaths = map[string]bool{
	"admin.token":                true,
	"storage.dlq.password":       true,
	"storage.ratelimit.password": true,
	"storage.breakers.password":  true,
}

// MaskURL returns s with the password of its credentials, if any, replaced
// by xxxxx (redis://user:xxxxx@host), for logs and error messages.
func MaskURL(s string) string { return maskPassword(s) }

// maskPassword hides the password of a URL with credentials
// (redis://user:secret@host → redis://user:xxxxx@host), on the text alone
// so that it also works on an unexpanded ${...} template.
func maskPassword(s string) string {
	i := strings.Index(s, "://")
	if i < 0 {
		return s
	}
	rest := s[i+3:]
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	at := strings.LastIndexByte(rest[:end], '@')
	if at < 0 {
		return s
	}
	user, _, hasPassword := strings.Cut(rest[:at], ":")
	if !hasPassword {
		return s
	}
	return s[:i+3] + user + ":xxxxx" + rest[at:]
}

// eachString calls fn with the field path and address of every free-form
// string in c, the fields a secret or a ${} reference can end up in.
func (c *Config) eachString(fn func(path string, s *string)) {
	fn("listen", &c.Listen)
	fn("admin.listen", &c.Admin.Listen)
	fn("admin.token", &c.Admin.Token)
	c.eachBackend("storage.dlq", &c.Storage.DLQ, fn)
	c.eachBackend("storage.ratelimit", &c.Storage.RateLimit, fn)
	c.eachBackend("storage.breakers", &c.Storage.Breakers, fn)
	fn("log.level", &c.Log.Level)
	fn("log.format", &c.Log.Format)
	list := func(path string, ss []string) {
		for i := range ss {
			fn(index(path, i), &ss[i])
		}
	}
	for i := range c.Routes {
		r := &c.Routes[i]
		p := index("routes", i)
		fn(p+".name", &r.Name)
		fn(p+".match.path_prefix", &r.Match.PathPrefix)
		fn(p+".match.host", &r.Match.Host)
		list(p+".match.methods", r.Match.Methods)
		list(p+".upstreams", r.Upstreams)
		fn(p+".policy", &r.Policy)
		list(p+".retry_methods", r.RetryMethods)
		list(p+".queue_methods", r.QueueMethods)
		if r.RateLimit != nil {
			fn(p+".rate_limit.key", &r.RateLimit.Key)
		}
	}
	for name, pol := range c.Policies {
		if pol.RateLimit != nil {
			fn("policies."+name+".rate_limit.key", &pol.RateLimit.Key)
		}
	}
}

// eachBackend calls fn for the strings of one storage entry. Its URL's
// path is the entry's own when the file wrote the URL alone, and
// path.url when it wrote a mapping.
func (c *Config) eachBackend(path string, b *Backend, fn func(path string, s *string)) {
	urlPath := path + ".url"
	if _, short := c.env[path]; short {
		urlPath = path
	}
	fn(urlPath, &b.URL)
	fn(path+".username", &b.Username)
	fn(path+".password", &b.Password)
	fn(path+".prefix", &b.Prefix)
	if t := b.TLS; t != nil {
		fn(path+".tls.ca_file", &t.CAFile)
		fn(path+".tls.cert_file", &t.CertFile)
		fn(path+".tls.key_file", &t.KeyFile)
		fn(path+".tls.server_name", &t.ServerName)
	}
}

// clone returns a deep copy of c.
func (c *Config) clone() *Config {
	r := *c
	r.env = maps.Clone(c.env)
	for _, b := range []*Backend{&r.Storage.DLQ, &r.Storage.RateLimit, &r.Storage.Breakers} {
		b.TLS = clonePtr(b.TLS)
	}
	if c.Policies != nil {
		r.Policies = make(map[string]Policy, len(c.Policies))
		for name, p := range c.Policies {
			r.Policies[name] = p.clone()
		}
	}
	r.Routes = slices.Clone(c.Routes)
	for i := range r.Routes {
		rt := &r.Routes[i]
		rt.Match.Methods = slices.Clone(rt.Match.Methods)
		rt.Upstreams = slices.Clone(rt.Upstreams)
		rt.RetryMethods = slices.Clone(rt.RetryMethods)
		rt.QueueMethods = slices.Clone(rt.QueueMethods)
		rt.RateLimit = clonePtr(rt.RateLimit)
		rt.Fallback = clonePtr(rt.Fallback)
	}
	return &r
}

func (p Policy) clone() Policy {
	p.Retry = clonePtr(p.Retry)
	if p.Retry != nil {
		p.Retry.Budget = clonePtr(p.Retry.Budget)
		p.Retry.RetryOnStatus = slices.Clone(p.Retry.RetryOnStatus)
	}
	p.CircuitBreaker = clonePtr(p.CircuitBreaker)
	p.Bulkhead = clonePtr(p.Bulkhead)
	p.RateLimit = clonePtr(p.RateLimit)
	return p
}

func clonePtr[T any](p *T) *T {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}

package config

import (
	"cmp"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/sluice-go/sluice/internal/hostname"
	"github.com/sluice-go/sluice/internal/redisurl"
)

// Storage says where state that outlives a request lives: the dead-letter
// queue, and the state a fleet of sidecars shares (rate limits, breakers).
// Each entry is a URL, written alone (`dlq: redis://redis:6379/0`) or as a
// mapping with the connection's options (`dlq: {url: …, timeout: 1s}`).
type Storage struct {
	// DLQ is the dead-letter queue's store: bolt://PATH, an embedded bbolt
	// file for one machine (the default, DefaultDLQ), or a Redis URL for a
	// queue the whole fleet shares.
	DLQ Backend `yaml:"dlq"`
	// RateLimit, if its URL is set, is the Redis the routes' rate limits
	// are kept on, one limit for the fleet; if not, each process keeps its
	// own limits.
	RateLimit Backend `yaml:"ratelimit,omitempty"`
	// Breakers, if its URL is set, is the Redis for circuit breaker state
	// shared by the fleet: the breaker of a route's upstream opens in
	// every instance when it trips in one (Mode shared) or in enough of
	// them (Mode quorum). If not set, each process keeps its own breakers.
	Breakers Backend `yaml:"breakers,omitempty"`
}

// Backend is one storage entry: a URL and, for Redis, how to reach it.
// Only URL is required; the other fields are optional and some apply to
// one entry only, as their comments say.
type Backend struct {
	// URL is bolt://PATH (storage.dlq only) or a Redis URL: redis://,
	// rediss:// (TLS), redis-sentinel://, redis-cluster:// (see
	// docs/config.md for each form).
	URL string `yaml:"url"`
	// Username and Password replace the URL's credentials, so that a
	// secret from ${NAME} needs no percent-encoding. Password is a secret:
	// Redacted replaces it.
	Username string `yaml:"username,omitempty"`
	Password string `yaml:"password,omitempty"`
	// Timeout bounds each call to Redis: no request waits on Redis longer.
	// If zero, DefaultRedisTimeout (DefaultDLQRedisTimeout for the DLQ).
	Timeout time.Duration `yaml:"timeout,omitempty"`
	// Prefix starts every Redis key of the entry. If empty, the entry's
	// default ("sluice:{dlq}" for the DLQ, none before the limits' keys).
	Prefix string `yaml:"prefix,omitempty"`
	// TLS configures a TLS URL's connection.
	TLS *TLS `yaml:"tls,omitempty"`

	// Fallback (storage.dlq with a Redis URL only) is where dead letters
	// go while Redis cannot be reached: bolt://PATH, a local file whose
	// messages move to Redis once it answers again, or FallbackNone for
	// none (a put fails while Redis is away). If empty, DefaultDLQFallback.
	Fallback string `yaml:"fallback,omitempty"`

	// ReplayLease (storage.dlq only) is how long a replaying instance holds
	// the messages it claimed; another instance takes them over once it
	// ends. If zero, the dlq package's default (5 minutes).
	ReplayLease time.Duration `yaml:"replay_lease,omitempty"`

	// OnFailure (storage.ratelimit only) is what the limits do while Redis
	// is unreachable. If empty, DefaultOnFailure.
	OnFailure FailMode `yaml:"on_failure,omitempty"`
	// FallbackShare (storage.ratelimit only, with on_failure: open) is the
	// share of each limit one instance allows on its own while Redis is
	// away: 1/N for a fleet of N keeps the fleet near the limit. If zero,
	// 1.
	FallbackShare float64 `yaml:"fallback_share,omitempty"`
	// RetryInterval (storage.ratelimit only) is how long a limit stays in
	// its fail mode before it asks Redis again. If zero, 1s.
	RetryInterval time.Duration `yaml:"retry_interval,omitempty"`

	// Mode (storage.breakers only) is when the fleet's breaker opens:
	// BreakerShared as soon as one instance trips, BreakerQuorum when
	// enough of them trip within QuorumWindow. If empty, BreakerShared.
	Mode BreakerMode `yaml:"mode,omitempty"`
	// Quorum (storage.breakers, mode quorum) is the number of instances
	// whose trips open the fleet.
	Quorum int `yaml:"quorum,omitempty"`
	// QuorumShare (storage.breakers, mode quorum) is the share of the live
	// instances whose trips open the fleet; with Quorum too, the larger
	// count of the two.
	QuorumShare float64 `yaml:"quorum_share,omitempty"`
	// QuorumWindow (storage.breakers, mode quorum) is how long a trip
	// counts towards the quorum. If zero, one minute.
	QuorumWindow time.Duration `yaml:"quorum_window,omitempty"`
	// CheckInterval (storage.breakers only) is how often each instance
	// re-reads a breaker's shared record (a change whose message it missed
	// reaches it within CheckInterval + 2 × Timeout) and, after a Redis
	// failure, tries again. If zero, 1s.
	CheckInterval time.Duration `yaml:"check_interval,omitempty"`
}

// BreakerMode names when a fleet's shared breaker opens.
type BreakerMode string

// The breaker modes of storage.breakers.
const (
	// BreakerShared opens the breaker in every instance as soon as it
	// trips in one.
	BreakerShared BreakerMode = "shared"
	// BreakerQuorum opens it in every instance once quorum (or
	// quorum_share) of them tripped within quorum_window; until then an
	// instance that tripped rejects alone.
	BreakerQuorum BreakerMode = "quorum"
)

// FallbackNone is storage.dlq's fallback for a Redis queue without a local
// file: while Redis is away a put fails (the route answers 503).
const FallbackNone = "none"

// TLS configures a TLS connection to Redis. Paths are relative to the
// working directory.
type TLS struct {
	// CAFile is a PEM file of the CAs that sign the server's certificate.
	// If empty, the system's roots.
	CAFile string `yaml:"ca_file,omitempty"`
	// CertFile and KeyFile are a client certificate and its key, both or
	// neither.
	CertFile string `yaml:"cert_file,omitempty"`
	KeyFile  string `yaml:"key_file,omitempty"`
	// ServerName is the name the server's certificate must hold, if not
	// the URL's host.
	ServerName string `yaml:"server_name,omitempty"`
	// InsecureSkipVerifyDangerous accepts any certificate, so anyone on
	// the path can read and change the traffic, passwords included. For a
	// test bench only; the sidecar logs a warning when it is set.
	InsecureSkipVerifyDangerous bool `yaml:"insecure_skip_verify_dangerous,omitempty"`
}

// FailMode names what a Redis-backed rate limit does while Redis is away.
type FailMode string

// The fail modes.
const (
	// FailOpen decides with a local limit holding fallback_share of the
	// rate: requests keep flowing, the fleet may exceed the limit.
	FailOpen FailMode = "open"
	// FailClosed refuses every request (429) until Redis answers: the
	// limit is never exceeded, the route is down with Redis.
	FailClosed FailMode = "closed"
	// FailError fails each request (503) until Redis answers.
	FailError FailMode = "error"
)

// Defaults of the storage section.
const (
	// DefaultRedisTimeout bounds each call of the rate limits (and shared
	// breakers) to Redis.
	DefaultRedisTimeout = 50 * time.Millisecond
	// DefaultDLQRedisTimeout bounds each call of a Redis DLQ: a write waits
	// for Redis's fsync, and a queued request's 202 waits for the write.
	DefaultDLQRedisTimeout = 2 * time.Second
	// DefaultOnFailure is storage.ratelimit's on_failure.
	DefaultOnFailure = FailOpen
	// DefaultDLQFallback is the local file a Redis dead-letter queue
	// falls back to while Redis is away, beside the default DLQ file.
	DefaultDLQFallback = "bolt://./sluice-data/dlq-fallback.db"
)

// FallbackPath returns the bolt file a Redis storage.dlq falls back to
// (its fallback, else DefaultDLQFallback), and false for fallback: none
// or an entry that is not a Redis URL.
func (b Backend) FallbackPath() (string, bool) {
	if !b.IsRedis() || b.Fallback == FallbackNone {
		return "", false
	}
	return strings.CutPrefix(cmp.Or(b.Fallback, DefaultDLQFallback), "bolt://")
}

// IsRedis reports whether the entry names a Redis server (any of the
// Redis schemes).
func (b Backend) IsRedis() bool { return redisurl.IsRedis(b.URL) }

// BoltPath returns the file of a bolt:// URL, and false for any other.
func (b Backend) BoltPath() (string, bool) {
	return strings.CutPrefix(b.URL, "bolt://")
}

// Equal reports whether b and o hold the same settings (TLS compared by
// value), so that a reload can tell whether a connection still applies.
func (b Backend) Equal(o Backend) bool {
	bt, ot := b.TLS, o.TLS
	b.TLS, o.TLS = nil, nil
	return b == o && (bt == ot || bt != nil && ot != nil && *bt == *ot)
}

// IsZero reports whether nothing is set, so that an absent entry is left
// out when a Config is marshalled.
func (b Backend) IsZero() bool { return b == Backend{} }

// MarshalYAML writes an entry with only a URL as the URL alone, the form
// most files use.
func (b Backend) MarshalYAML() (any, error) {
	if b == (Backend{URL: b.URL}) {
		return b.URL, nil
	}
	type plain Backend // without the method
	return plain(b), nil
}

// The three entries of storage, for the decoder's rules.
const (
	entryDLQ       = "dlq"
	entryRateLimit = "ratelimit"
	entryBreakers  = "breakers"
)

func (d *decoder) storage(n *yaml.Node, path string, s *Storage) {
	d.mapping(n, path, fields{
		entryDLQ:       func(v *yaml.Node, p string) { s.DLQ = d.backend(v, p, entryDLQ) },
		entryRateLimit: func(v *yaml.Node, p string) { s.RateLimit = d.backend(v, p, entryRateLimit) },
		entryBreakers:  func(v *yaml.Node, p string) { s.Breakers = d.backend(v, p, entryBreakers) },
	})
}

// backend decodes one storage entry, a URL or a mapping, with the keys
// entry allows.
func (d *decoder) backend(n *yaml.Node, path, entry string) Backend {
	var b Backend
	if r := resolve(n); r != nil && r.Kind == yaml.ScalarNode {
		if s, ok := d.text(n, path, "a storage URL or a mapping"); ok {
			b.URL = s
			d.checkBackendURL(n, path, entry, s)
		}
		return b
	}
	fs := fields{
		"url":      func(v *yaml.Node, p string) { b.URL = d.str(v, p) },
		"username": func(v *yaml.Node, p string) { b.Username = d.str(v, p) },
		"password": func(v *yaml.Node, p string) { b.Password = d.str(v, p) },
		"timeout":  func(v *yaml.Node, p string) { b.Timeout = d.duration(v, p, true) },
		"prefix":   func(v *yaml.Node, p string) { b.Prefix = d.str(v, p) },
		"tls":      func(v *yaml.Node, p string) { b.TLS = d.tls(v, p) },
	}
	switch entry {
	case entryDLQ:
		fs["replay_lease"] = func(v *yaml.Node, p string) { b.ReplayLease = d.duration(v, p, true) }
		fs["fallback"] = func(v *yaml.Node, p string) { b.Fallback = d.str(v, p) }
	case entryBreakers:
		fs["mode"] = func(v *yaml.Node, p string) {
			b.Mode = BreakerMode(d.enum(v, p, "breaker mode", string(BreakerShared), string(BreakerQuorum)))
		}
		fs["quorum"] = func(v *yaml.Node, p string) { b.Quorum = d.integer(v, p, 1) }
		fs["quorum_share"] = func(v *yaml.Node, p string) { b.QuorumShare = d.ratio(v, p) }
		fs["quorum_window"] = func(v *yaml.Node, p string) { b.QuorumWindow = d.duration(v, p, true) }
		fs["check_interval"] = func(v *yaml.Node, p string) { b.CheckInterval = d.duration(v, p, true) }
	case entryRateLimit:
		fs["on_failure"] = func(v *yaml.Node, p string) {
			b.OnFailure = FailMode(d.enum(v, p, "on_failure", string(FailOpen), string(FailClosed), string(FailError)))
		}
		fs["fallback_share"] = func(v *yaml.Node, p string) { b.FallbackShare = d.ratio(v, p) }
		fs["retry_interval"] = func(v *yaml.Node, p string) { b.RetryInterval = d.duration(v, p, true) }
	}
	seen := d.mapping(n, path, fs)
	if seen == nil {
		return b
	}
	if seen["url"] == nil {
		d.errorf(n, join(path, "url"), "required: where the %s is kept (%s)", entryNoun(entry), urlForms(entry))
		return b
	}
	if !d.checkBackendURL(seen["url"], join(path, "url"), entry, b.URL) {
		return b
	}
	d.checkBackendOptions(b, seen, path)
	return b
}

func entryNoun(entry string) string {
	switch entry {
	case entryRateLimit:
		return "shared rate limits' state"
	case entryBreakers:
		return "shared breakers' state"
	}
	return "dead-letter queue"
}

func urlForms(entry string) string {
	if entry == entryDLQ {
		return "bolt://PATH or a Redis URL: " + redisurl.Forms
	}
	return "a Redis URL: " + redisurl.Forms
}

// checkBackendURL checks an entry's URL and reports whether it is good.
func (d *decoder) checkBackendURL(n *yaml.Node, path, entry, s string) bool {
	if rest, ok := strings.CutPrefix(s, "bolt://"); ok {
		switch {
		case entry != entryDLQ:
			d.errorf(n, path, "bolt:// holds only the dead-letter queue; storage.%s wants a Redis URL, or leave it out to keep %s in each process", entry, entryNoun(entry))
		case rest == "":
			d.errorf(n, path, "bad storage URL %q: no file path (want bolt://PATH, such as bolt://./sluice-data/dlq.db)", s)
		default:
			return true
		}
		return false
	}
	if !redisurl.IsRedis(s) {
		d.errorf(n, path, "unsupported storage URL %q (want %s)", maskPassword(s), urlForms(entry))
		return false
	}
	if _, err := redisurl.Parse(s); err != nil {
		d.errorf(n, path, "bad storage URL %q: %v", maskPassword(s), err)
		return false
	}
	return true
}

// checkBackendOptions checks the options of a mapping entry whose URL is
// good: Redis options need a Redis URL, TLS a TLS one, and the rate
// limits' fallback_share the open mode.
func (d *decoder) checkBackendOptions(b Backend, seen map[string]*yaml.Node, path string) {
	if !b.IsRedis() {
		for _, k := range []string{"username", "password", "timeout", "prefix", "tls", "fallback"} {
			if v := seen[k]; v != nil {
				d.errorf(v, join(path, k), "applies only to a Redis URL (url is %s)", b.URL)
			}
		}
		return
	}
	if v := seen["tls"]; v != nil && b.TLS != nil {
		if u, _ := redisurl.Parse(b.URL); !u.TLS {
			d.errorf(v, join(path, "tls"), "needs a TLS URL (rediss://, rediss-sentinel:// or rediss-cluster://), not %s", strings.SplitN(b.URL, "://", 2)[0]+"://")
		}
	}
	if v := seen["prefix"]; v != nil {
		if err := checkPrefix(b.Prefix, strings.TrimPrefix(path, "storage.")); err != nil {
			d.errorf(v, join(path, "prefix"), "%v", err)
		}
	}
	if v := seen["fallback_share"]; v != nil && b.OnFailure != "" && b.OnFailure != FailOpen {
		d.errorf(v, join(path, "fallback_share"), "applies only to on_failure: open (on_failure is %s)", b.OnFailure)
	}
	if v := seen["fallback"]; v != nil {
		d.checkFallback(v, join(path, "fallback"), b.Fallback)
	}
	d.checkBreakerMode(b, seen, path)
}

// checkFallback checks storage.dlq's fallback: bolt://PATH or none.
func (d *decoder) checkFallback(n *yaml.Node, path, s string) {
	if s == FallbackNone {
		return
	}
	if rest, ok := strings.CutPrefix(s, "bolt://"); !ok || rest == "" {
		d.errorf(n, path, "bad fallback %q (want bolt://PATH, a local file for the dead letters while Redis is away, or none)", s)
	}
}

// checkBreakerMode checks that the quorum keys of storage.breakers come
// with mode: quorum, and that mode: quorum has a quorum to reach.
func (d *decoder) checkBreakerMode(b Backend, seen map[string]*yaml.Node, path string) {
	if b.Mode == BreakerQuorum {
		if seen["quorum"] == nil && seen["quorum_share"] == nil {
			d.errorf(seen["mode"], join(path, "mode"), "mode quorum needs quorum (a number of instances) or quorum_share (a share of the live ones)")
		}
		return
	}
	for _, k := range []string{"quorum", "quorum_share", "quorum_window"} {
		if v := seen[k]; v != nil {
			d.errorf(v, join(path, k), "applies only to mode: quorum (mode is %s)", cmp.Or(b.Mode, BreakerShared))
		}
	}
}

// checkPrefix checks a key prefix: the DLQ's must hold a hash tag, since
// every store operation is one script over several keys (one Cluster
// slot); the limits' must not, since the route name is their keys' tag.
func checkPrefix(p, entry string) error {
	switch {
	case p == "":
		return errors.New("must not be empty (leave it out for the default)")
	case strings.ContainsAny(p, " \t\r\n"):
		return fmt.Errorf("bad prefix %q: no spaces", p)
	case entry == entryDLQ:
		open := strings.IndexByte(p, '{')
		if open < 0 || strings.IndexByte(p[open:], '}') < 2 {
			return fmt.Errorf("bad prefix %q: needs a hash tag, such as sluice:{dlq}, so that the store's keys share a Cluster slot", p)
		}
	case strings.ContainsAny(p, "{}"):
		return fmt.Errorf("bad prefix %q: no { or }: the route name is the hash tag of each limit's key", p)
	}
	return nil
}

// tls decodes a tls section and checks that its files can be read.
func (d *decoder) tls(n *yaml.Node, path string) *TLS {
	t := &TLS{}
	seen := d.mapping(n, path, fields{
		"ca_file":                        func(v *yaml.Node, p string) { t.CAFile = d.str(v, p) },
		"cert_file":                      func(v *yaml.Node, p string) { t.CertFile = d.str(v, p) },
		"key_file":                       func(v *yaml.Node, p string) { t.KeyFile = d.str(v, p) },
		"server_name":                    func(v *yaml.Node, p string) { t.ServerName = d.str(v, p) },
		"insecure_skip_verify_dangerous": func(v *yaml.Node, p string) { t.InsecureSkipVerifyDangerous = d.boolean(v, p) },
	})
	if seen == nil {
		return t
	}
	if v := seen["ca_file"]; v != nil && t.CAFile != "" {
		if err := checkCAFile(t.CAFile); err != nil {
			d.errorf(v, join(path, "ca_file"), "%v", err)
		}
	}
	switch cv, kv := seen["cert_file"], seen["key_file"]; {
	case cv != nil && kv == nil:
		d.errorf(cv, join(path, "cert_file"), "needs key_file, the client certificate's key")
	case kv != nil && cv == nil:
		d.errorf(kv, join(path, "key_file"), "needs cert_file, the client certificate")
	case cv != nil:
		if _, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile); err != nil {
			d.errorf(cv, join(path, "cert_file"), "cannot load the client certificate and key: %v", err)
		}
	}
	if v := seen["server_name"]; v != nil && !hostname.Valid(t.ServerName) {
		d.errorf(v, join(path, "server_name"), "bad server name %q (want a host name)", t.ServerName)
	}
	return t
}

func checkCAFile(path string) error {
	pem, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("cannot read the CA file: %v", err)
	}
	if !x509.NewCertPool().AppendCertsFromPEM(pem) {
		return fmt.Errorf("%s holds no PEM certificate", path)
	}
	return nil
}

// Limit key sources of rate_limit.key.
const (
	// LimitKeyHeaderPrefix starts a key taken from a request header.
	LimitKeyHeaderPrefix = "header:"
	// LimitKeyClientIP keys a limit by the client's address.
	LimitKeyClientIP = "client_ip"
)

// checkLimitKey checks rate_limit.key: header:NAME or client_ip.
func checkLimitKey(k string) error {
	if k == LimitKeyClientIP {
		return nil
	}
	name, ok := strings.CutPrefix(k, LimitKeyHeaderPrefix)
	if !ok {
		return fmt.Errorf("unknown limit key %q (want header:NAME, such as header:X-Tenant, or client_ip)", k)
	}
	if name == "" || strings.ContainsFunc(name, func(c rune) bool {
		return c <= ' ' || c >= 0x7f || strings.ContainsRune(`"(),/:;<=>?@[\]{}`, c)
	}) {
		return fmt.Errorf("bad header name %q in limit key %q", name, k)
	}
	return nil
}

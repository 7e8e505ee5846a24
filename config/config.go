package config

import (
	"net/url"
	"time"
)

// Config is a whole sidecar configuration: where to listen, the admin
// server, storage, named policies and the routes that use them. Parse, Load
// and Default return one with the defaults of defaults.go applied and every
// value validated; the YAML key of each field is in its tag. Policy knobs
// left zero mean "the policy package's default" and are filled in when the
// policies are built.
//
// A Config marshals with go.yaml.in/yaml/v3 to the file format, durations
// and sizes in their written form. Marshal Redacted() rather than the Config
// itself wherever others can read it (the admin API's GET /config): that
// copy hides secrets and parses back to the same values.
type Config struct {
	// Listen is the proxy's address, host:port.
	Listen string `yaml:"listen"`
	// Admin is the admin server: metrics, health, dashboard, DLQ API.
	Admin Admin `yaml:"admin"`
	// Storage says where durable state lives.
	Storage Storage `yaml:"storage"`
	// InstanceID names this instance to the rest of a fleet (in shared
	// breaker records) and to operators (health report, dashboard). It
	// must be unique in the fleet. If empty, the sidecar uses host:pid.
	InstanceID string `yaml:"instance_id,omitempty"`
	// Log configures the process log.
	Log Log `yaml:"log"`
	// Server bounds the client connections of the proxy and admin servers.
	Server Server `yaml:"server"`
	// ShutdownGrace is how long in-flight requests may run after SIGTERM
	// before they are cut off. Zero cuts them off at once.
	ShutdownGrace time.Duration `yaml:"shutdown_grace"`
	// Policies are the named policy sets that routes refer to.
	Policies map[string]Policy `yaml:"policies,omitempty"`
	// Routes are matched in order; the first match wins.
	Routes []Route `yaml:"routes"`

	// env maps the field path of every value that used ${...} to its
	// text before expansion, for Redacted.
	env map[string]string
}

// Admin configures the admin server.
type Admin struct {
	// Listen is the admin server's address, host:port. An address that is
	// not loopback requires Token.
	Listen string `yaml:"listen"`
	// Token is the bearer token the admin API requires. If empty, the API
	// is open, which is allowed only on a loopback address. It is a secret:
	// Redacted replaces it.
	Token string `yaml:"token,omitempty"`
	// AllowedHosts are the host names and addresses (without a port) the
	// admin API answers to in the Host header, besides the loopback ones
	// (localhost, 127.0.0.0/8, ::1), which it always accepts. If empty:
	// only loopback without a Token, any host with one. A page that
	// rebinds its own DNS name to 127.0.0.1 sends its own name, so it is
	// refused.
	AllowedHosts []string `yaml:"allowed_hosts,omitempty"`
}

// Server bounds what one client connection may hold of the proxy and the
// admin server, so that idle or slow clients cannot pile up. Parse fills in
// the defaults of defaults.go for keys a file leaves out.
type Server struct {
	// ReadHeaderTimeout is how long a client may take to send a request's
	// header.
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout"`
	// IdleTimeout is how long a keep-alive connection may wait for its next
	// request before it is closed.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// WriteTimeout bounds writing one proxied answer, from its header on,
	// to a client. A route's own timeout is used instead when it is longer,
	// so that no answer is cut shorter than its route allows. Zero means
	// the route's timeout alone (no bound for a route without one). The
	// admin server's answers are bounded by DefaultAdminWriteTimeout.
	WriteTimeout time.Duration `yaml:"write_timeout"`
	// MaxHeaderBytes is the largest request line and header a client may
	// send; a bigger one gets 431.
	MaxHeaderBytes Size `yaml:"max_header_bytes"`
	// MaxConnections caps the proxy's open client connections; a
	// connection over the cap waits to be accepted until another closes.
	// Zero means no cap.
	MaxConnections int `yaml:"max_connections,omitempty"`
}

// Log configures the process log.
type Log struct {
	// Level is the least severe level logged: debug, info, warn or error.
	Level string `yaml:"level"`
	// Format is text (logfmt-like, for people) or json (for collectors).
	Format string `yaml:"format"`
}

// Policy is a named set of policies. A nil section means that policy is not
// used; an empty section ({}) means it is used with its package defaults.
type Policy struct {
	// Retry retries failed calls with backoff.
	Retry *Retry `yaml:"retry,omitempty"`
	// CircuitBreaker fails calls fast while the upstream is failing.
	CircuitBreaker *CircuitBreaker `yaml:"circuit_breaker,omitempty"`
	// Bulkhead bounds concurrent calls.
	Bulkhead *Bulkhead `yaml:"bulkhead,omitempty"`
	// RateLimit bounds the rate of calls.
	RateLimit *RateLimit `yaml:"rate_limit,omitempty"`
	// Timeout bounds each call through the policy. Zero means no timeout.
	Timeout time.Duration `yaml:"timeout,omitempty"`
}

// Backoff names a backoff strategy.
type Backoff string

// The backoff strategies.
const (
	BackoffExponential  Backoff = "exponential"  // base × multiplier^n, capped at max_delay
	BackoffLinear       Backoff = "linear"       // base × n, capped at max_delay
	BackoffConstant     Backoff = "constant"     // base every time
	BackoffDecorrelated Backoff = "decorrelated" // each delay drawn at random from a range set by the previous one
)

// Jitter names a way of randomising backoff delays.
type Jitter string

// The jitter modes.
const (
	JitterNone         Jitter = "none"         // the computed delay exactly
	JitterFull         Jitter = "full"         // uniform in [0, delay]
	JitterEqual        Jitter = "equal"        // delay/2 + uniform in [0, delay/2]
	JitterProportional Jitter = "proportional" // delay × (1 ± jitter_ratio)
)

// Retry configures a retry policy. Zero fields take the retry package's
// defaults.
type Retry struct {
	MaxAttempts int           `yaml:"max_attempts,omitempty"` // attempts in all, the first included
	MaxElapsed  time.Duration `yaml:"max_elapsed,omitempty"`  // no new attempt after this long
	Backoff     Backoff       `yaml:"backoff,omitempty"`      // how delays grow
	BaseDelay   time.Duration `yaml:"base_delay,omitempty"`   // the first delay
	MaxDelay    time.Duration `yaml:"max_delay,omitempty"`    // the cap on any delay
	Multiplier  float64       `yaml:"multiplier,omitempty"`   // growth factor of exponential backoff
	Jitter      Jitter        `yaml:"jitter,omitempty"`       // how delays are randomised
	JitterRatio float64       `yaml:"jitter_ratio,omitempty"` // for proportional jitter, in (0, 1]
	// Budget caps retries to a share of recent requests. Nil means the
	// retry package's default budget; Budget.Off disables it.
	Budget *Budget `yaml:"budget,omitempty"`
	// RetryOnStatus lists the upstream HTTP statuses that are retried. If
	// empty, the shared classifier decides (sluice.ClassifyStatus).
	RetryOnStatus []int `yaml:"retry_on_status,omitempty"`
}

// Budget configures a retry budget: retries may be at most Ratio of the
// requests of the last Window, plus MinPerSecond. Zero fields take the retry
// package's defaults.
type Budget struct {
	// Off disables the budget: retries are bounded only by max_attempts.
	// It is written `budget: off`.
	Off          bool          `yaml:"-"`
	Ratio        float64       `yaml:"ratio,omitempty"`          // retries as a share of requests, in (0, 1]
	Window       time.Duration `yaml:"window,omitempty"`         // how far back requests are counted
	MinPerSecond float64       `yaml:"min_per_second,omitempty"` // retries always allowed per second
}

// MarshalYAML writes a disabled budget as `off`, the way it is read.
func (b Budget) MarshalYAML() (any, error) {
	if b.Off {
		return "off", nil
	}
	type plain Budget // without the method
	return plain(b), nil
}

// CircuitBreaker configures a circuit breaker. It trips on FailureThreshold
// consecutive failures, or when FailureRate or SlowCallRate is reached over
// the window (time-based if Window is set, count-based if WindowCalls is)
// once it holds MinimumCalls calls. Zero fields take the breaker package's
// defaults.
type CircuitBreaker struct {
	FailureThreshold int           `yaml:"failure_threshold,omitempty"`  // consecutive failures that trip it
	FailureRate      float64       `yaml:"failure_rate,omitempty"`       // in (0, 1]
	SlowCallDuration time.Duration `yaml:"slow_call_duration,omitempty"` // a call slower than this is slow
	SlowCallRate     float64       `yaml:"slow_call_rate,omitempty"`     // in (0, 1]
	Window           time.Duration `yaml:"window,omitempty"`             // time-based window
	WindowCalls      int           `yaml:"window_calls,omitempty"`       // count-based window
	MinimumCalls     int           `yaml:"minimum_calls,omitempty"`      // calls in the window before rates count
	OpenFor          time.Duration `yaml:"open_for,omitempty"`           // wait before the first probe
	MaxOpenFor       time.Duration `yaml:"max_open_for,omitempty"`       // cap when the wait grows on repeated trips
	HalfOpenCalls    int           `yaml:"half_open_calls,omitempty"`    // probes let through while half-open
	SuccessThreshold int           `yaml:"success_threshold,omitempty"`  // probe successes that close it
	HalfOpenMaxWait  time.Duration `yaml:"half_open_max_wait,omitempty"` // wait for probes before reopening
}

// Bulkhead configures a bulkhead: at most MaxConcurrent calls at once and
// MaxQueue callers waiting, each at most MaxWait. Zero MaxConcurrent and
// MaxWait take the bulkhead package's defaults; zero MaxQueue means no queue,
// and a MaxWait without a queue is refused (nobody could wait).
type Bulkhead struct {
	MaxConcurrent int           `yaml:"max_concurrent,omitempty"` // calls running at once
	MaxQueue      int           `yaml:"max_queue,omitempty"`      // callers that may wait for a slot
	MaxWait       time.Duration `yaml:"max_wait,omitempty"`       // how long a queued caller waits
}

// RateLimit configures a token bucket: Rate tokens every Per, at most Burst
// stored. Smooth spreads the tokens evenly instead of allowing bursts. A
// call that finds no token waits up to MaxWait (zero: it is rejected at
// once).
type RateLimit struct {
	Rate    float64       `yaml:"rate"`               // tokens added every Per; required, > 0
	Per     time.Duration `yaml:"per"`                // DefaultRateLimitPer if not written
	Burst   int           `yaml:"burst,omitempty"`    // if zero, the ratelimit package's default
	Smooth  bool          `yaml:"smooth,omitempty"`   // spread tokens evenly, no bursts
	MaxWait time.Duration `yaml:"max_wait,omitempty"` // wait for a token at most this long
	// Key splits the limit per client: "header:NAME" gives each value of
	// the request header NAME (an API key, a tenant) a limit of its own,
	// "client_ip" each client address. Requests without the header share
	// one limit. If empty, one limit for the route.
	Key string `yaml:"key,omitempty"`
}

// OnExhausted says what a route does with a request when every upstream and
// retry has failed.
type OnExhausted string

// The on_exhausted actions.
const (
	// OnExhaustedFail answers with the upstream's last answer (502 if none).
	OnExhaustedFail OnExhausted = "fail"
	// OnExhaustedQueue stores the request in the DLQ and answers 202.
	OnExhaustedQueue OnExhausted = "queue"
)

// Route sends matching requests to its upstreams through a policy.
type Route struct {
	// Name identifies the route in metrics, logs and the admin API.
	Name string `yaml:"name"`
	// Match selects the requests of the route.
	Match Match `yaml:"match"`
	// Upstreams are absolute http or https URLs. Without Pool the first is
	// the primary, later ones are fallbacks tried in order; with Pool they
	// are the pool's replicas.
	Upstreams []string `yaml:"upstreams"`
	// Pool, set when the route writes balance, outlier or health_check,
	// balances the route's requests over its upstreams. Nil keeps primary
	// and fallbacks.
	Pool *Pool `yaml:"-"`
	// Policy names an entry of Config.Policies. If empty, requests are
	// proxied with no policy.
	Policy string `yaml:"policy,omitempty"`
	// Timeout overrides the policy's timeout for this route when non-zero.
	Timeout time.Duration `yaml:"timeout,omitempty"`
	// RateLimit is a limiter of this route's own, applied in addition to
	// any in the policy.
	RateLimit *RateLimit `yaml:"rate_limit,omitempty"`
	// Fallback adds a stale-cache fallback for GET requests.
	Fallback *Fallback `yaml:"fallback,omitempty"`
	// OnExhausted says what happens when every upstream and retry failed.
	OnExhausted OnExhausted `yaml:"on_exhausted"`
	// MaxRetryBody is the largest request body buffered so that it can be
	// re-sent; a bigger body is sent once, without retries. Zero never
	// buffers.
	MaxRetryBody Size `yaml:"max_retry_body"`
	// RetryMethods are methods, beyond the idempotent ones, that this route
	// declares safe to retry (for example POST to an idempotent API).
	RetryMethods []string `yaml:"retry_methods,omitempty"`
	// BodyTimeout bounds reading a request's body once the route has
	// admitted it; a client that takes longer gets 408 and its bulkhead
	// permit goes back. Zero means the route's timeout (the route's, else
	// the policy's), or DefaultBodyTimeout for a route without one.
	BodyTimeout time.Duration `yaml:"body_timeout,omitempty"`
	// TrustClientHeaders passes the client's Sluice-* request headers (such
	// as Sluice-Queued, which marks a replay) to the upstreams. If false,
	// they are removed, so that a client cannot pass as a replay: set it
	// only where the clients are sluice layers themselves.
	TrustClientHeaders bool `yaml:"trust_client_headers,omitempty"`
	// QueueMethods lists the methods whose requests on_exhausted: queue
	// stores. If empty, every method but the safe ones (GET, HEAD, OPTIONS,
	// TRACE), whose replayed answer nobody would read.
	QueueMethods []string `yaml:"queue_methods,omitempty"`
}

// UpstreamURLs returns Upstreams parsed. Parse has validated them, so the
// result has one entry per upstream.
func (r Route) UpstreamURLs() []*url.URL {
	out := make([]*url.URL, 0, len(r.Upstreams))
	for _, s := range r.Upstreams {
		if u, err := url.Parse(s); err == nil {
			out = append(out, u)
		}
	}
	return out
}

// Match selects the requests of a route. All given conditions must hold.
type Match struct {
	// PathPrefix matches paths that start with it; "/" matches every path.
	PathPrefix string `yaml:"path_prefix"`
	// Host matches the request's host (and port, if given),
	// case-insensitively. If empty, any host.
	Host string `yaml:"host,omitempty"`
	// Methods lists the methods matched. If empty, any method.
	Methods []string `yaml:"methods,omitempty"`
}

// Fallback configures a route's fallbacks.
type Fallback struct {
	// StaleCache is how long the last good answer to a GET is kept and
	// served, marked stale, when the upstreams fail.
	StaleCache time.Duration `yaml:"stale_cache"`
}

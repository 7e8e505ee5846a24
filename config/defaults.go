package config

import (
	_ "embed"
	"time"
)

// The defaults Parse applies to keys a file leaves out. Policy knobs have no
// defaults here: a zero value means the policy package's own default.
const (
	DefaultListen        = "127.0.0.1:8080"
	DefaultAdminListen   = "127.0.0.1:9901"
	DefaultDLQ           = "bolt://./sluice-data/dlq.db"
	DefaultLogLevel      = "info"
	DefaultLogFormat     = "text"
	DefaultShutdownGrace = 15 * time.Second
	DefaultPathPrefix    = "/"
	DefaultOnExhausted   = OnExhaustedFail
	DefaultMaxRetryBody  = 1 * MiB
	DefaultRateLimitPer  = time.Second

	// DefaultReadHeaderTimeout, DefaultIdleTimeout and
	// DefaultMaxHeaderBytes are the server section's defaults.
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultIdleTimeout       = 60 * time.Second
	DefaultMaxHeaderBytes    = 64 * KiB
	// MaxMaxHeaderBytes is the largest server.max_header_bytes accepted.
	MaxMaxHeaderBytes = 1 * MiB
	// DefaultAdminWriteTimeout bounds each answer of the admin server.
	DefaultAdminWriteTimeout = time.Minute
	// DefaultBodyTimeout bounds reading a request body on a route that
	// has neither a timeout nor a body_timeout.
	DefaultBodyTimeout = 60 * time.Second

	// DLQRecordBytes is the largest dead-letter record the proxy opens its
	// bolt store for (the store's MaxMessageBytes): a queued request's body
	// and QueuedRequestOverhead. Parse refuses a queueing route whose
	// max_retry_body would not fit.
	DLQRecordBytes = 64 * MiB
)

// QueuedRequestOverhead is the room a queued request's dead-letter record
// needs besides its body, for a server reading at most maxHeaderBytes of
// request line and header: the header as stored (at most twice what was
// read, net/http's 4 KiB of slack over the limit included) and 8 KiB for the
// method, host, client address, queue name, error text and framing.
func QueuedRequestOverhead(maxHeaderBytes Size) Size {
	return 2*(maxHeaderBytes+4*KiB) + 8*KiB
}

// defaultConfig is the Config a file starts from; the decoder overwrites
// what the file sets. Every default lives here or in its siblings below.
func defaultConfig() Config {
	return Config{
		Listen:  DefaultListen,
		Admin:   Admin{Listen: DefaultAdminListen},
		Storage: Storage{DLQ: Backend{URL: DefaultDLQ}},
		Log:     Log{Level: DefaultLogLevel, Format: DefaultLogFormat},
		Server: Server{
			ReadHeaderTimeout: DefaultReadHeaderTimeout,
			IdleTimeout:       DefaultIdleTimeout,
			MaxHeaderBytes:    DefaultMaxHeaderBytes,
		},
		ShutdownGrace: DefaultShutdownGrace,
	}
}

func defaultRoute() Route {
	return Route{
		Match:        Match{PathPrefix: DefaultPathPrefix},
		OnExhausted:  DefaultOnExhausted,
		MaxRetryBody: DefaultMaxRetryBody,
	}
}

func defaultRateLimit() RateLimit {
	return RateLimit{Per: DefaultRateLimitPer}
}

//go:embed default.yaml
var defaultYAML []byte

// DefaultFile is the name errors from Default carry.
const DefaultFile = "<default config>"

// Default returns the embedded default configuration that `sluice serve`
// runs with when given no file: the proxy on DefaultListen in front of
// ${SLUICE_UPSTREAM} (http://127.0.0.1:9000 if unset), with a conservative
// retry, breaker, bulkhead and timeout policy, and the admin token taken
// from ${SLUICE_ADMIN_TOKEN}. It fails only if those variables hold invalid
// values.
func Default() (*Config, error) { return Parse(DefaultFile, defaultYAML) }

// DefaultYAML returns the text of the embedded default configuration, a
// starting point for a file of one's own.
func DefaultYAML() []byte { return append([]byte(nil), defaultYAML...) }

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
)

// defaultConfig is the Config a file starts from; the decoder overwrites
// what the file sets. Every default lives here or in its siblings below.
func defaultConfig() Config {
	return Config{
		Listen:        DefaultListen,
		Admin:         Admin{Listen: DefaultAdminListen},
		Storage:       Storage{DLQ: DefaultDLQ},
		Log:           Log{Level: DefaultLogLevel, Format: DefaultLogFormat},
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

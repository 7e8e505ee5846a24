package sluiceredis

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sluice-go/sluice/internal/redisurl"
)

// URLForms lists the URL forms Open accepts.
const URLForms = redisurl.Forms

// OpenOptions are what Open needs besides the URL. The zero value is valid:
// the URL's credentials, the system's root CAs for TLS, go-redis's dial
// timeout.
type OpenOptions struct {
	// Username and Password, when set, replace the URL's, so that a
	// secret taken from the environment needs no percent-encoding.
	Username string
	Password string

	// CAFile is a PEM file of the CAs that sign the server's certificate;
	// if empty, the system's roots. CertFile and KeyFile are a client
	// certificate and its key (both or neither), for servers that ask for
	// one. ServerName is the name the server's certificate must hold, if it
	// is not the URL's host. They need a TLS scheme (rediss…).
	CAFile     string
	CertFile   string
	KeyFile    string
	ServerName string

	// InsecureSkipVerify accepts any certificate the server presents, so
	// anyone on the path can read and change the traffic, passwords
	// included. For a test bench only.
	InsecureSkipVerify bool

	// DialTimeout bounds making a connection. If zero, go-redis's (5 s);
	// the Limiter's and Store's per-call timeouts bound each call anyway,
	// since the client Open returns honours context deadlines.
	DialTimeout time.Duration
}

// Open returns a client for a URL of one of the forms of URLForms: a
// redis.Client for redis:// and rediss://, a failover client for
// redis-sentinel:// (the master's name is the path, the database after it;
// the URL's credentials are the master's and the sentinels'), and a cluster
// client for redis-cluster://. Several hosts are separated by commas. The
// client honours context deadlines, as the Limiter and the Store need. It
// does not contact Redis; the caller closes the client.
func Open(rawURL string, opts OpenOptions) (redis.UniversalClient, error) {
	u, err := redisurl.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("sluiceredis: bad Redis URL: %w", err)
	}
	if opts.Username != "" {
		u.Username = opts.Username
	}
	if opts.Password != "" {
		u.Password = opts.Password
	}
	tc, err := tlsConfig(u, opts)
	if err != nil {
		return nil, err
	}
	switch u.Kind {
	case redisurl.Sentinel:
		return redis.NewFailoverClient(&redis.FailoverOptions{
			MasterName: u.Master, SentinelAddrs: u.Addrs,
			SentinelUsername: u.Username, SentinelPassword: u.Password,
			Username: u.Username, Password: u.Password, DB: u.DB,
			TLSConfig: tc, DialTimeout: opts.DialTimeout,
			ContextTimeoutEnabled: true, DisableIdentity: true,
		}), nil
	case redisurl.Cluster:
		return redis.NewClusterClient(&redis.ClusterOptions{
			Addrs: u.Addrs, Username: u.Username, Password: u.Password,
			TLSConfig: tc, DialTimeout: opts.DialTimeout,
			ContextTimeoutEnabled: true, DisableIdentity: true,
		}), nil
	}
	return redis.NewClient(&redis.Options{
		Addr: u.Addrs[0], Username: u.Username, Password: u.Password, DB: u.DB,
		TLSConfig: tc, DialTimeout: opts.DialTimeout,
		ContextTimeoutEnabled: true, DisableIdentity: true,
	}), nil
}

// tlsConfig builds the TLS settings of a rediss URL, or refuses TLS
// options given for a plain one.
func tlsConfig(u redisurl.URL, opts OpenOptions) (*tls.Config, error) {
	if !u.TLS {
		if opts.CAFile != "" || opts.CertFile != "" || opts.KeyFile != "" || opts.ServerName != "" || opts.InsecureSkipVerify {
			return nil, errors.New("sluiceredis: TLS options need a TLS URL (rediss://, rediss-sentinel://, rediss-cluster://)")
		}
		return nil, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: opts.ServerName, InsecureSkipVerify: opts.InsecureSkipVerify}
	if opts.CAFile != "" {
		pem, err := os.ReadFile(opts.CAFile)
		if err != nil {
			return nil, fmt.Errorf("sluiceredis: TLS CA file: %w", err)
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("sluiceredis: TLS CA file %s holds no PEM certificate", opts.CAFile)
		}
	}
	if (opts.CertFile == "") != (opts.KeyFile == "") {
		return nil, errors.New("sluiceredis: a TLS client certificate needs both CertFile and KeyFile")
	}
	if opts.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(opts.CertFile, opts.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("sluiceredis: TLS client certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// Package redisurl parses the Redis URLs of sluice's storage configuration:
// one server, a Sentinel-managed primary or a Cluster, with or without TLS.
// It is the one parser behind both the configuration's checks (package
// config, which must not link go-redis) and the client sluiceredis.Open
// makes, so that what validate accepts is what serve opens.
package redisurl

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"

	"github.com/sluice-go/sluice/internal/hostname"
)

// Kind is the deployment a URL names.
type Kind int

// The deployments.
const (
	Single   Kind = iota // one server (or a proxy in front of several)
	Sentinel             // a primary found through Sentinel
	Cluster              // a Redis Cluster
)

// String returns "single", "sentinel" or "cluster".
func (k Kind) String() string {
	switch k {
	case Sentinel:
		return "sentinel"
	case Cluster:
		return "cluster"
	}
	return "single"
}

// URL is a parsed Redis URL.
type URL struct {
	Kind     Kind
	TLS      bool     // rediss, rediss-sentinel or rediss-cluster
	Username string   // empty: the default user
	Password string   // empty: no AUTH
	Addrs    []string // host:port, at least one (several for Sentinel and Cluster)
	DB       int      // the database number; always 0 for Cluster
	Master   string   // the Sentinel master's name; empty otherwise
}

// Forms lists the accepted URL forms, for error messages and docs.
const Forms = "redis://[USER:PASSWORD@]HOST[:PORT][/DB], rediss://… (TLS), " +
	"redis-sentinel://[USER:PASSWORD@]HOST[:PORT][,HOST[:PORT]…]/MASTER[/DB], " +
	"redis-cluster://[USER:PASSWORD@]HOST[:PORT][,HOST[:PORT]…] (rediss-sentinel://, rediss-cluster:// for TLS)"

// schemes maps each scheme to its kind, TLS and default port.
var schemes = map[string]struct {
	kind Kind
	tls  bool
	port string
}{
	"redis":           {Single, false, "6379"},
	"rediss":          {Single, true, "6379"},
	"redis-sentinel":  {Sentinel, false, "26379"},
	"rediss-sentinel": {Sentinel, true, "26379"},
	"redis-cluster":   {Cluster, false, "6379"},
	"rediss-cluster":  {Cluster, true, "6379"},
}

// IsRedis reports whether s has one of the Redis schemes.
func IsRedis(s string) bool {
	scheme, _, ok := strings.Cut(s, "://")
	_, known := schemes[scheme]
	return ok && known
}

// Parse parses s in one of the forms of Forms. Several addresses are
// separated by commas; a host without a port gets the scheme's default
// (6379, or 26379 for Sentinel); USER and PASSWORD are percent-decoded.
// Query parameters and fragments are refused: options are configuration
// keys of their own, not URL parameters. The error does not repeat the
// password.
func Parse(s string) (URL, error) {
	scheme, rest, ok := strings.Cut(s, "://")
	sc, known := schemes[scheme]
	if !ok || !known {
		return URL{}, fmt.Errorf("unsupported scheme (want %s)", Forms)
	}
	u := URL{Kind: sc.kind, TLS: sc.tls}
	if strings.ContainsAny(rest, "?#") {
		return URL{}, errors.New("query parameters and fragments are not supported (set timeouts, TLS and credentials as keys beside url)")
	}
	authority, path, _ := strings.Cut(rest, "/")
	if at := strings.LastIndexByte(authority, '@'); at >= 0 {
		var err error
		if u.Username, u.Password, err = userinfo(authority[:at]); err != nil {
			return URL{}, err
		}
		authority = authority[at+1:]
	}
	if authority == "" {
		return URL{}, errors.New("no host")
	}
	for _, a := range strings.Split(authority, ",") {
		addr, err := hostPort(a, sc.port)
		if err != nil {
			return URL{}, err
		}
		u.Addrs = append(u.Addrs, addr)
	}
	if len(u.Addrs) > 1 && u.Kind == Single {
		return URL{}, fmt.Errorf("%s:// takes one host; several hosts are for redis-sentinel:// or redis-cluster://", scheme)
	}
	if err := u.path(path); err != nil {
		return URL{}, err
	}
	return u, nil
}

// path reads the part after the host: /DB, /MASTER[/DB], or nothing.
func (u *URL) path(p string) error {
	parts := strings.Split(p, "/")
	if p == "" {
		parts = nil
	}
	switch u.Kind {
	case Cluster:
		if len(parts) > 0 {
			return errors.New("a cluster URL has no path: Redis Cluster has only database 0")
		}
		return nil
	case Sentinel:
		if len(parts) == 0 || parts[0] == "" {
			return errors.New("no master name (want redis-sentinel://HOST:PORT[,HOST:PORT…]/MASTER[/DB])")
		}
		u.Master, parts = parts[0], parts[1:]
	}
	switch len(parts) {
	case 0:
		return nil
	case 1:
		db, err := strconv.Atoi(parts[0])
		if err != nil || db < 0 || parts[0][0] == '+' {
			return fmt.Errorf("database %q is not a number", parts[0])
		}
		u.DB = db
		return nil
	}
	return fmt.Errorf("bad path /%s", p)
}

func userinfo(s string) (user, password string, err error) {
	user, password, _ = strings.Cut(s, ":")
	if user, err = url.PathUnescape(user); err != nil {
		return "", "", errors.New("bad user name: bad percent-encoding")
	}
	if password, err = url.PathUnescape(password); err != nil {
		return "", "", errors.New("bad password: bad percent-encoding")
	}
	return user, password, nil
}

// hostPort checks one address and adds the default port if it has none.
func hostPort(a, defaultPort string) (string, error) {
	host, port := a, defaultPort
	if h, p, err := net.SplitHostPort(a); err == nil {
		host, port = h, p
	} else if strings.Contains(a, ":") && !strings.HasPrefix(a, "[") && strings.Count(a, ":") == 1 {
		return "", fmt.Errorf("bad address %q: %v", a, err)
	} else if strings.HasPrefix(a, "[") && strings.HasSuffix(a, "]") {
		host = a[1 : len(a)-1]
	}
	if host == "" {
		return "", fmt.Errorf("bad address %q: no host", a)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 || port[0] == '+' {
		return "", fmt.Errorf("bad address %q: bad port %q (want 1 to 65535)", a, port)
	}
	if !hostname.Valid(host) {
		return "", fmt.Errorf("bad address %q: bad host %q", a, host)
	}
	return net.JoinHostPort(host, port), nil
}

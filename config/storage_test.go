package config_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sluice-go/sluice/config"
)

// writeCert writes a self-signed certificate and its key as PEM files in
// dir and returns their paths.
func writeCert(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "redis.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

func TestStorageForms(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cert, key := writeCert(t, dir)
	l := config.Loader{LookupEnv: env("PW", "s3cret/pw", "CERT", cert)}
	cfg := mustParse(t, l, `
storage:
  dlq:
    url: redis-sentinel://s1:26379,s2:26379/mymaster/1
    password: ${PW}
    timeout: 1s
    prefix: "app:{dlq}"
    replay_lease: 30s
  ratelimit:
    url: rediss://redis.internal:6380
    username: sidecar
    timeout: 20ms
    prefix: "app:"
    tls: {ca_file: "${CERT}", cert_file: "${CERT}", key_file: "`+key+`", server_name: redis.internal}
    on_failure: open
    fallback_share: 0.34
    retry_interval: 500ms
  breakers: redis-cluster://n1:7000,n2:7001
routes:
  - name: a
    upstreams: [http://127.0.0.1:9000]
    rate_limit: {rate: 10, key: "header:X-Tenant"}
`)
	want := config.Storage{
		DLQ: config.Backend{URL: "redis-sentinel://s1:26379,s2:26379/mymaster/1", Password: "s3cret/pw",
			Timeout: time.Second, Prefix: "app:{dlq}", ReplayLease: 30 * time.Second},
		RateLimit: config.Backend{URL: "rediss://redis.internal:6380", Username: "sidecar", Timeout: 20 * time.Millisecond,
			Prefix: "app:", TLS: &config.TLS{CAFile: cert, CertFile: cert, KeyFile: key, ServerName: "redis.internal"},
			OnFailure: config.FailOpen, FallbackShare: 0.34, RetryInterval: 500 * time.Millisecond},
		Breakers: config.Backend{URL: "redis-cluster://n1:7000,n2:7001"},
	}
	if !reflect.DeepEqual(cfg.Storage, want) {
		t.Errorf("storage =\n%+v\nwant\n%+v", cfg.Storage, want)
	}
	if k := cfg.Routes[0].RateLimit.Key; k != "header:X-Tenant" {
		t.Errorf("rate_limit.key = %q", k)
	}
	r := cfg.Redacted()
	if r.Storage.DLQ.Password != config.RedactedValue || r.Storage.RateLimit.TLS.CAFile != "${CERT}" {
		t.Errorf("redacted: password %q, ca_file %q: want REDACTED and the file as written", r.Storage.DLQ.Password, r.Storage.RateLimit.TLS.CAFile)
	}
	out := dump(t, r)
	if strings.Contains(out, "s3cret") {
		t.Errorf("redacted config shows the password:\n%s", out)
	}
	again := mustParse(t, l, out)
	again.Storage.DLQ.Password = cfg.Storage.DLQ.Password // the one value Redacted hides
	if !reflect.DeepEqual(again.Storage, cfg.Storage) {
		t.Errorf("round trip changed storage:\n%+v\nbecame\n%+v", cfg.Storage, again.Storage)
	}
	if !strings.Contains(out, "breakers: redis-cluster://n1:7000,n2:7001\n") {
		t.Errorf("an entry with only a URL is not written as the URL alone:\n%s", out)
	}
}

// TestStorageFleetKeys checks the keys of a fleet's storage: the DLQ's
// fallback file, the breakers' mode and quorum, and instance_id, with
// their defaults and a round trip through Redacted.
func TestStorageFleetKeys(t *testing.T) {
	t.Parallel()
	cfg := mustParse(t, config.Loader{}, `
instance_id: sidecar-a
storage:
  dlq: {url: redis://r:6379, fallback: bolt:///var/lib/sluice/fallback.db}
  breakers:
    url: redis://r:6379/1
    mode: quorum
    quorum: 2
    quorum_share: 0.5
    quorum_window: 30s
    check_interval: 250ms
`+route)
	want := config.Backend{URL: "redis://r:6379/1", Mode: config.BreakerQuorum, Quorum: 2, QuorumShare: 0.5,
		QuorumWindow: 30 * time.Second, CheckInterval: 250 * time.Millisecond}
	if cfg.Storage.Breakers != want {
		t.Errorf("breakers = %+v, want %+v", cfg.Storage.Breakers, want)
	}
	if p, ok := cfg.Storage.DLQ.FallbackPath(); !ok || p != "/var/lib/sluice/fallback.db" {
		t.Errorf("FallbackPath = %q, %v", p, ok)
	}
	if cfg.InstanceID != "sidecar-a" {
		t.Errorf("instance_id = %q", cfg.InstanceID)
	}
	again := mustParse(t, config.Loader{}, dump(t, cfg.Redacted()))
	if again.Storage != cfg.Storage || again.InstanceID != cfg.InstanceID {
		t.Errorf("round trip changed storage:\n%+v\nbecame\n%+v", cfg.Storage, again.Storage)
	}
	for _, tc := range []struct {
		dlq, want string
		ok        bool
	}{
		{"redis://r", "./sluice-data/dlq-fallback.db", true},
		{"{url: redis://r, fallback: none}", "", false},
		{"bolt://./x.db", "", false},
	} {
		c := mustParse(t, config.Loader{}, "storage: {dlq: "+tc.dlq+"}\n"+route)
		if p, ok := c.Storage.DLQ.FallbackPath(); p != tc.want || ok != tc.ok {
			t.Errorf("dlq %s: FallbackPath = %q, %v; want %q, %v", tc.dlq, p, ok, tc.want, tc.ok)
		}
	}
}

func TestStorageDefaults(t *testing.T) {
	t.Parallel()
	cfg := mustParse(t, config.Loader{}, route)
	if cfg.Storage.DLQ.URL != config.DefaultDLQ || cfg.Storage.RateLimit.IsRedis() || cfg.Storage.Breakers.URL != "" {
		t.Errorf("defaults: %+v", cfg.Storage)
	}
	if p, ok := cfg.Storage.DLQ.BoltPath(); !ok || p != "./sluice-data/dlq.db" {
		t.Errorf("BoltPath = %q, %v", p, ok)
	}
	if out := dump(t, cfg); strings.Contains(out, "ratelimit") || strings.Contains(out, "breakers") {
		t.Errorf("absent entries are written:\n%s", out)
	}
}

func TestStoragePasswordRedacted(t *testing.T) {
	t.Parallel()
	cfg := mustParse(t, config.Loader{}, `storage:
  ratelimit: {url: "redis://u:inline@redis:6379", password: literal-secret}
`+route)
	r := cfg.Redacted()
	if r.Storage.RateLimit.Password != config.RedactedValue || r.Storage.RateLimit.URL != "redis://u:xxxxx@redis:6379" {
		t.Errorf("redacted ratelimit = %+v", r.Storage.RateLimit)
	}
}

func TestStorageErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk.pem")
	if err := os.WriteFile(junk, []byte("junk"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, src, want string }{
		{"bolt for the limits", "storage: {ratelimit: 'bolt://x.db'}",
			`sluice.yaml:1:22: storage.ratelimit: bolt:// holds only the dead-letter queue; storage.ratelimit wants a Redis URL, or leave it out to keep shared rate limits' state in each process`},
		{"bolt for breakers", "storage: {breakers: {url: 'bolt://x.db'}}",
			`sluice.yaml:1:27: storage.breakers.url: bolt:// holds only the dead-letter queue; storage.breakers wants a Redis URL, or leave it out to keep shared breakers' state in each process`},
		{"empty bolt path", "storage: {dlq: 'bolt://'}",
			`sluice.yaml:1:16: storage.dlq: bad storage URL "bolt://": no file path (want bolt://PATH, such as bolt://./sluice-data/dlq.db)`},
		{"unknown scheme", "storage: {ratelimit: 'memcached://m:11211'}",
			`sluice.yaml:1:22: storage.ratelimit: unsupported storage URL "memcached://m:11211" (want a Redis URL: ` + redisForms + `)`},
		{"bad port", "storage: {dlq: 'redis://:pw@redis:99999'}",
			`sluice.yaml:1:16: storage.dlq: bad storage URL "redis://:xxxxx@redis:99999": bad address "redis:99999": bad port "99999" (want 1 to 65535)`},
		{"bad host", "storage: {dlq: 'redis://re_dis!:6379'}",
			`sluice.yaml:1:16: storage.dlq: bad storage URL "redis://re_dis!:6379": bad address "re_dis!:6379": bad host "re_dis!"`},
		{"query", "storage: {dlq: 'redis://redis:6379/0?pool_size=9'}",
			`sluice.yaml:1:16: storage.dlq: bad storage URL "redis://redis:6379/0?pool_size=9": query parameters and fragments are not supported (set timeouts, TLS and credentials as keys beside url)`},
		{"two hosts on one server", "storage: {dlq: 'redis://a:1,b:2'}",
			`sluice.yaml:1:16: storage.dlq: bad storage URL "redis://a:1,b:2": redis:// takes one host; several hosts are for redis-sentinel:// or redis-cluster://`},
		{"sentinel without master", "storage: {ratelimit: 'redis-sentinel://s1:26379'}",
			`sluice.yaml:1:22: storage.ratelimit: bad storage URL "redis-sentinel://s1:26379": no master name (want redis-sentinel://HOST:PORT[,HOST:PORT…]/MASTER[/DB])`},
		{"cluster with a database", "storage: {ratelimit: 'redis-cluster://n1:7000/2'}",
			`sluice.yaml:1:22: storage.ratelimit: bad storage URL "redis-cluster://n1:7000/2": a cluster URL has no path: Redis Cluster has only database 0`},
		{"mapping without url", "storage: {ratelimit: {timeout: 10ms}}",
			`sluice.yaml:1:22: storage.ratelimit.url: required: where the shared rate limits' state is kept (a Redis URL: ` + redisForms + `)`},
		{"unknown key", "storage: {ratelimit: {url: 'redis://r', timout: 10ms}}",
			`sluice.yaml:1:41: storage.ratelimit.timout: unknown key (did you mean timeout?)`},
		{"limiter key in the dlq", "storage: {dlq: {url: 'redis://r', on_failure: open}}",
			`sluice.yaml:1:35: storage.dlq.on_failure: unknown key (want one of fallback, password, prefix, replay_lease, timeout, tls, url, username)`},
		{"zero timeout", "storage: {ratelimit: {url: 'redis://r', timeout: 0s}}",
			`sluice.yaml:1:50: storage.ratelimit.timeout: must be greater than 0, got 0s`},
		{"timeout without unit", "storage: {ratelimit: {url: 'redis://r', timeout: 50}}",
			`sluice.yaml:1:50: storage.ratelimit.timeout: bad duration "50": missing unit (write 50s, 50ms or 1m30s)`},
		{"bad fail mode", "storage: {ratelimit: {url: 'redis://r', on_failure: allow}}",
			`sluice.yaml:1:53: storage.ratelimit.on_failure: unknown on_failure "allow" (want open, closed, error)`},
		{"share above 1", "storage: {ratelimit: {url: 'redis://r', fallback_share: 3}}",
			`sluice.yaml:1:57: storage.ratelimit.fallback_share: must be greater than 0 and at most 1, got 3`},
		{"share without open", "storage: {ratelimit: {url: 'redis://r', on_failure: closed, fallback_share: 0.5}}",
			`sluice.yaml:1:77: storage.ratelimit.fallback_share: applies only to on_failure: open (on_failure is closed)`},
		{"redis options on bolt", "storage: {dlq: {url: 'bolt://x.db', timeout: 1s}}",
			`sluice.yaml:1:46: storage.dlq.timeout: applies only to a Redis URL (url is bolt://x.db)`},
		{"tls on a plain URL", "storage: {dlq: {url: 'redis://r', tls: {server_name: r}}}",
			`sluice.yaml:1:40: storage.dlq.tls: needs a TLS URL (rediss://, rediss-sentinel:// or rediss-cluster://), not redis://`},
		{"missing CA file", "storage: {dlq: {url: 'rediss://r', tls: {ca_file: /nonexistent/ca.pem}}}",
			`sluice.yaml:1:51: storage.dlq.tls.ca_file: cannot read the CA file: open /nonexistent/ca.pem: no such file or directory`},
		{"junk CA file", "storage: {dlq: {url: 'rediss://r', tls: {ca_file: '" + junk + "'}}}",
			`sluice.yaml:1:51: storage.dlq.tls.ca_file: ` + junk + ` holds no PEM certificate`},
		{"cert without key", "storage: {dlq: {url: 'rediss://r', tls: {cert_file: '" + junk + "'}}}",
			`sluice.yaml:1:53: storage.dlq.tls.cert_file: needs key_file, the client certificate's key`},
		{"key without cert", "storage: {dlq: {url: 'rediss://r', tls: {key_file: '" + junk + "'}}}",
			`sluice.yaml:1:52: storage.dlq.tls.key_file: needs cert_file, the client certificate`},
		{"junk cert", "storage: {dlq: {url: 'rediss://r', tls: {cert_file: '" + junk + "', key_file: '" + junk + "'}}}",
			`sluice.yaml:1:53: storage.dlq.tls.cert_file: cannot load the client certificate and key: tls: failed to find any PEM data in certificate input`},
		{"dangerous flag not a bool", "storage: {dlq: {url: 'rediss://r', tls: {insecure_skip_verify_dangerous: yes}}}",
			`sluice.yaml:1:74: storage.dlq.tls.insecure_skip_verify_dangerous: want true or false, got "yes"`},
		{"dlq prefix without hash tag", "storage: {dlq: {url: 'redis://r', prefix: 'app:dlq'}}",
			`sluice.yaml:1:43: storage.dlq.prefix: bad prefix "app:dlq": needs a hash tag, such as sluice:{dlq}, so that the store's keys share a Cluster slot`},
		{"limit prefix with a hash tag", "storage: {ratelimit: {url: 'redis://r', prefix: '{app}:'}}",
			`sluice.yaml:1:49: storage.ratelimit.prefix: bad prefix "{app}:": no { or }: the route name is the hash tag of each limit's key`},
		{"zero replay lease", "storage: {dlq: {url: 'redis://r', replay_lease: 0s}}",
			`sluice.yaml:1:49: storage.dlq.replay_lease: must be greater than 0, got 0s`},
		{"unset password variable", "storage: {dlq: {url: 'redis://r', password: '${NOPE}'}}",
			`sluice.yaml:1:45: storage.dlq.password: environment variable NOPE is not set (write ${NOPE:-default} to give a default)`},
		{"not a URL or mapping", "storage: {breakers: [redis://r]}",
			`sluice.yaml:1:21: storage.breakers: want a mapping, got a list`},
		{"fallback not bolt", "storage: {dlq: {url: 'redis://r', fallback: 'redis://s'}}",
			`sluice.yaml:1:45: storage.dlq.fallback: bad fallback "redis://s" (want bolt://PATH, a local file for the dead letters while Redis is away, or none)`},
		{"fallback on bolt", "storage: {dlq: {url: 'bolt://x.db', fallback: none}}",
			`sluice.yaml:1:47: storage.dlq.fallback: applies only to a Redis URL (url is bolt://x.db)`},
		{"bad breaker mode", "storage: {breakers: {url: 'redis://r', mode: majority}}",
			`sluice.yaml:1:46: storage.breakers.mode: unknown breaker mode "majority" (want shared, quorum)`},
		{"quorum without a count", "storage: {breakers: {url: 'redis://r', mode: quorum}}",
			`sluice.yaml:1:46: storage.breakers.mode: mode quorum needs quorum (a number of instances) or quorum_share (a share of the live ones)`},
		{"quorum in shared mode", "storage: {breakers: {url: 'redis://r', quorum: 2}}",
			`sluice.yaml:1:48: storage.breakers.quorum: applies only to mode: quorum (mode is shared)`},
		{"zero quorum", "storage: {breakers: {url: 'redis://r', mode: quorum, quorum: 0}}",
			`sluice.yaml:1:62: storage.breakers.quorum: must be at least 1, got 0`},
		{"quorum share above 1", "storage: {breakers: {url: 'redis://r', mode: quorum, quorum_share: 1.5}}",
			`sluice.yaml:1:68: storage.breakers.quorum_share: must be greater than 0 and at most 1, got 1.5`},
		{"zero check interval", "storage: {breakers: {url: 'redis://r', check_interval: 0s}}",
			`sluice.yaml:1:56: storage.breakers.check_interval: must be greater than 0, got 0s`},
		{"breaker keys on the limits", "storage: {ratelimit: {url: 'redis://r', mode: quorum}}",
			`sluice.yaml:1:41: storage.ratelimit.mode: unknown key (want one of fallback_share, on_failure, password, prefix, retry_interval, timeout, tls, url, username)`},
		{"instance id with a space", "instance_id: 'a b'",
			`sluice.yaml:1:14: instance_id: bad instance id "a b": no spaces or control characters`},
		{"bad limit key", "routes:\n  - name: a\n    upstreams: [http://127.0.0.1:9000]\n    rate_limit: {rate: 1, key: 'cookie:x'}\n", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := tc.src
			if !strings.Contains(src, "routes:") {
				src += "\n" + route
			}
			got := strings.Join(errorLines(t, src), "\n")
			if tc.want != "" && got != tc.want {
				t.Errorf("errors:\n got: %s\nwant: %s", got, tc.want)
			}
			if tc.want == "" && !strings.Contains(got, `unknown limit key "cookie:x" (want header:NAME, such as header:X-Tenant, or client_ip)`) {
				t.Errorf("errors: %s", got)
			}
		})
	}
}

const redisForms = `redis://[USER:PASSWORD@]HOST[:PORT][/DB], rediss://… (TLS), redis-sentinel://[USER:PASSWORD@]HOST[:PORT][,HOST[:PORT]…]/MASTER[/DB], redis-cluster://[USER:PASSWORD@]HOST[:PORT][,HOST[:PORT]…] (rediss-sentinel://, rediss-cluster:// for TLS)`

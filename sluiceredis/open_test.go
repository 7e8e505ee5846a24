package sluiceredis_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/sluice-go/sluice/internal/redistest"
	"github.com/sluice-go/sluice/sluiceredis"
)

func TestOpenSingle(t *testing.T) {
	srv := redistest.Start(t)
	c, err := sluiceredis.Open(srv.URL()+"/3", sluiceredis.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rc, ok := c.(*redis.Client)
	if !ok || rc.Options().DB != 3 || !rc.Options().ContextTimeoutEnabled {
		t.Fatalf("client %T %+v: want a *redis.Client on DB 3 honouring deadlines", c, rc.Options())
	}
	if err := c.Set(bg, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	direct := srv.Client()
	if err := direct.Do(bg, "SELECT", 3).Err(); err != nil {
		t.Fatal(err)
	}
	if got := direct.Get(bg, "k").Val(); got != "v" {
		t.Fatalf("key written through Open not in DB 3: got %q", got)
	}
}

func TestOpenKinds(t *testing.T) {
	c, err := sluiceredis.Open("redis-sentinel://:pw@s1,s2:26380/mymaster/1", sluiceredis.OpenOptions{Password: "fromenv"})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := c.(*redis.Client); !ok { // a failover client is a *redis.Client
		t.Errorf("sentinel URL gave %T", c)
	}
	c.Close()
	c, err = sluiceredis.Open("redis-cluster://n1:7000,n2:7001", sluiceredis.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cc, ok := c.(*redis.ClusterClient)
	if !ok || len(cc.Options().Addrs) != 2 || !cc.Options().ContextTimeoutEnabled {
		t.Errorf("cluster URL gave %T", c)
	}
	c.Close()
	c, err = sluiceredis.Open("rediss://u:p@cache:6380", sluiceredis.OpenOptions{Password: "override", ServerName: "redis.internal", InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	o := c.(*redis.Client).Options()
	if o.Password != "override" || o.Username != "u" || o.TLSConfig == nil || o.TLSConfig.ServerName != "redis.internal" || !o.TLSConfig.InsecureSkipVerify {
		t.Errorf("rediss options = user %q password %q tls %+v", o.Username, o.Password, o.TLSConfig)
	}
	c.Close()
}

func TestOpenRefuses(t *testing.T) {
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk.pem")
	if err := os.WriteFile(junk, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		url  string
		opts sluiceredis.OpenOptions
		want string
	}{
		{"http://redis", sluiceredis.OpenOptions{}, "unsupported scheme"},
		{"redis://redis:6379?x=1", sluiceredis.OpenOptions{}, "query parameters"},
		{"redis://redis", sluiceredis.OpenOptions{CAFile: junk}, "need a TLS URL"},
		{"rediss://redis", sluiceredis.OpenOptions{CAFile: filepath.Join(dir, "missing.pem")}, "no such file"},
		{"rediss://redis", sluiceredis.OpenOptions{CAFile: junk}, "holds no PEM certificate"},
		{"rediss://redis", sluiceredis.OpenOptions{CertFile: junk}, "both CertFile and KeyFile"},
		{"rediss://redis", sluiceredis.OpenOptions{CertFile: junk, KeyFile: junk}, "client certificate"},
	} {
		c, err := sluiceredis.Open(tc.url, tc.opts)
		if err == nil {
			c.Close()
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Open(%q, %+v) = %v, want an error containing %q", tc.url, tc.opts, err, tc.want)
		}
	}
}

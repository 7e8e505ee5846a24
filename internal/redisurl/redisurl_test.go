package redisurl

import (
	"reflect"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestParseForms(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want URL
	}{
		{"redis://127.0.0.1:6379", URL{Addrs: []string{"127.0.0.1:6379"}}},
		{"redis://redis", URL{Addrs: []string{"redis:6379"}}},
		{"redis://app:p%40ss@redis:7000/3", URL{Username: "app", Password: "p@ss", Addrs: []string{"redis:7000"}, DB: 3}},
		{"redis://:secret@[::1]:6380/0", URL{Password: "secret", Addrs: []string{"[::1]:6380"}}},
		{"rediss://cache.example.com:6380", URL{TLS: true, Addrs: []string{"cache.example.com:6380"}}},
		{"redis-sentinel://s1,s2:26380/mymaster/2", URL{Kind: Sentinel, Addrs: []string{"s1:26379", "s2:26380"}, Master: "mymaster", DB: 2}},
		{"rediss-sentinel://u:p@s1:26379/m", URL{Kind: Sentinel, TLS: true, Username: "u", Password: "p", Addrs: []string{"s1:26379"}, Master: "m"}},
		{"redis-cluster://n1:7000,n2:7001,n3", URL{Kind: Cluster, Addrs: []string{"n1:7000", "n2:7001", "n3:6379"}}},
		{"rediss-cluster://:pw@n1:7000", URL{Kind: Cluster, TLS: true, Password: "pw", Addrs: []string{"n1:7000"}}},
	} {
		got, err := Parse(tc.in)
		if err != nil {
			t.Errorf("Parse(%q): %v", tc.in, err)
			continue
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Parse(%q) = %+v, want %+v", tc.in, got, tc.want)
		}
	}
}

func TestParseRefuses(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"http://redis:6379", "unsupported scheme"},
		{"redis:/redis", "unsupported scheme"},
		{"redis://", "no host"},
		{"redis://:pw@", "no host"},
		{"redis://redis:0", `bad port "0"`},
		{"redis://redis:99999", `bad port "99999"`},
		{"redis://redis:abc", `bad port "abc"`},
		{"redis://re dis:6379", `bad host "re dis"`},
		{"redis://redis:6379/x", `database "x" is not a number`},
		{"redis://redis:6379/-1", `database "-1" is not a number`},
		{"redis://redis:6379/1/2", "bad path"},
		{"redis://a:1,b:2", "takes one host"},
		{"redis://redis:6379?pool_size=3", "query parameters"},
		{"redis://redis:6379#x", "query parameters"},
		{"redis://u:%zz@redis", "bad password: bad percent-encoding"},
		{"redis-sentinel://s1:26379", "no master name"},
		{"redis-sentinel://s1:26379/", "no master name"},
		{"redis-sentinel://s1:26379/m/zero", `database "zero" is not a number`},
		{"redis-cluster://n1:7000/0", "has no path"},
		{"redis-cluster://n1:7000,,n2", "no host"},
	} {
		_, err := Parse(tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%q) = %v, want an error containing %q", tc.in, err, tc.want)
		}
	}
}

func TestParseErrorHidesPassword(t *testing.T) {
	_, err := Parse("redis://u:topsecret@redis:bad")
	if err == nil || strings.Contains(err.Error(), "topsecret") {
		t.Fatalf("error %v: want one without the password", err)
	}
}

func TestIsRedis(t *testing.T) {
	for s, want := range map[string]bool{
		"redis://x": true, "rediss-cluster://x": true, "bolt://x": false, "redis": false, "redisx://a": false,
	} {
		if got := IsRedis(s); got != want {
			t.Errorf("IsRedis(%q) = %v, want %v", s, got, want)
		}
	}
}

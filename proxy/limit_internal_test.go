package proxy

import (
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluice-go/sluice/ratelimit"
)

func TestLimitKey(t *testing.T) {
	r, _ := http.NewRequest("GET", "http://x/", nil)
	r.RemoteAddr = "192.0.2.7:5123"
	r.Header.Set("X-Tenant", "acme")
	long := strings.Repeat("k", maxTenantKey+1)
	for _, tc := range []struct {
		key, header, want string
	}{
		{"header:X-Tenant", "acme", "acme"},
		{"header:x-tenant", "acme", "acme"}, // header names are case-insensitive
		{"header:X-Missing", "", ""},
		{"client_ip", "", "192.0.2.7"},
		{"header:X-Tenant", long, "sha256:"},
		{"header:X-Tenant", "a\x01b", "sha256:"},
	} {
		if tc.header != "" {
			r.Header.Set("X-Tenant", tc.header)
		}
		got := limitKey(tc.key, r)
		if got != tc.want && !(tc.want == "sha256:" && strings.HasPrefix(got, tc.want) && len(got) == len("sha256:")+32) {
			t.Errorf("limitKey(%q) with X-Tenant %q = %q, want %q", tc.key, tc.header, got, tc.want)
		}
	}
	if got := limitKey("client_ip", nil); got != "" {
		t.Errorf("limitKey without a request = %q", got)
	}
}

func TestRouteLimitBoundsKeys(t *testing.T) {
	rl, err := newRouteLimit(limitSpec{cfg: ratelimit.Config{Name: "api", Rate: 1, Per: time.Hour}, key: "client_ip"}, nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	first, err := rl.limiter("k0")
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= maxLimitKeys; i++ {
		if _, err := rl.limiter("k" + strconv.Itoa(i)); err != nil {
			t.Fatal(err)
		}
	}
	if n := rl.lru.Len(); n != maxLimitKeys || len(rl.byKey) != maxLimitKeys {
		t.Fatalf("%d limiters kept (%d indexed), want %d", n, len(rl.byKey), maxLimitKeys)
	}
	if again, _ := rl.limiter("k0"); again == first {
		t.Error("the least recently used key was not dropped")
	}
}

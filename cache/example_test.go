package cache_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"time"

	"github.com/sluice-go/sluice"
	"github.com/sluice-go/sluice/cache"
	"github.com/sluice-go/sluice/sluicetest"
)

// A cache in front of a status lookup: fresh for a minute, and for five more
// minutes the answer to a failed lookup.
func Example() {
	ctx := context.Background()
	clock := sluicetest.NewFakeClock(time.Time{})
	statuses, _ := cache.New[string](cache.Config{
		Name:         "agent-status",
		TTL:          time.Minute,
		StaleIfError: 5 * time.Minute,
		Clock:        clock,
	})
	lookup := func(status string, err error) func(context.Context) (string, error) {
		return func(context.Context) (string, error) { return status, err }
	}

	v, info, err := statuses.Get(ctx, "agent-7", lookup("online", nil))
	fmt.Println(v, info.Outcome, err)

	clock.Advance(30 * time.Second)
	v, info, err = statuses.Get(ctx, "agent-7", lookup("not called", nil))
	fmt.Println(v, info.Outcome, info.Age, err)

	clock.Advance(2 * time.Minute) // expired; the agent service is down
	v, info, err = statuses.Get(ctx, "agent-7", lookup("", &sluice.StatusError{Code: 503}))
	fmt.Println(v, info.Outcome, info.Age, err)

	clock.Advance(5 * time.Minute) // past the stale window too
	v, info, err = statuses.Get(ctx, "agent-7", lookup("", &sluice.StatusError{Code: 503}))
	fmt.Printf("%q %v %v\n", v, info.Outcome, err)

	fmt.Printf("%+v\n", statuses.Stats())
	// Output:
	// online miss <nil>
	// online hit 30s <nil>
	// online stale 2m30s <nil>
	// "" miss HTTP 503 Service Unavailable
	// {Hits:1 Misses:3 Coalesced:0 Stale:1 Evictions:0 Entries:0}
}

// NeverFresh keeps only the last good answer: every request goes to the
// upstream, and the cache answers only when the upstream fails.
func Example_lastGoodAnswer() {
	ctx := context.Background()
	clock := sluicetest.NewFakeClock(time.Time{})
	lastGood, _ := cache.New[int](cache.Config{TTL: cache.NeverFresh, StaleIfError: 5 * time.Minute, Clock: clock})
	up := true
	price := 100
	fetch := func(context.Context) (int, error) {
		if !up {
			return 0, &sluice.StatusError{Code: 502}
		}
		price++
		return price, nil
	}
	for _, step := range []struct {
		after time.Duration
		up    bool
	}{{0, true}, {time.Second, true}, {time.Minute, false}, {3 * time.Minute, false}, {2 * time.Minute, false}} {
		clock.Advance(step.after)
		up = step.up
		v, info, err := lastGood.Get(ctx, "price", fetch)
		fmt.Println(v, info.Outcome, info.Age, err)
	}
	// Output:
	// 101 miss 0s <nil>
	// 102 miss 0s <nil>
	// 102 stale 1m0s <nil>
	// 102 stale 4m0s <nil>
	// 0 miss 0s HTTP 502 Bad Gateway
}

// A cache policy in a pipeline, keyed by URL, reporting what it did so that
// the answer can carry an Age header and a stale-cache mark.
func ExampleCache_Policy() {
	down := false
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if down {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		fmt.Fprint(w, "agents: 12")
	}))
	defer upstream.Close()

	clock := sluicetest.NewFakeClock(time.Time{})
	bodies, _ := cache.New[string](cache.Config{TTL: 10 * time.Second, StaleIfError: 5 * time.Minute, Clock: clock})
	type urlKey struct{}
	p := sluice.NewPipeline(bodies.Policy(func(ctx context.Context) string {
		u, _ := ctx.Value(urlKey{}).(string)
		return u
	}))
	fetch := func(ctx context.Context) (string, error) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, upstream.URL, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return "", &sluice.StatusError{Code: resp.StatusCode}
		}
		var b [64]byte
		n, _ := resp.Body.Read(b[:])
		return string(b[:n]), nil
	}
	serve := func() {
		var info cache.Info
		ctx := cache.WithInfo(context.WithValue(context.Background(), urlKey{}, "/agents"), &info)
		body, err := sluice.Get(ctx, p, fetch)
		h := http.Header{}
		if info.Outcome != cache.Miss {
			h.Set("Age", strconv.Itoa(int(info.Age.Seconds())))
		}
		if info.Outcome == cache.Stale {
			h.Set("Sluice-Fallback", "stale-cache")
		}
		fmt.Printf("%q %v Age=%q Fallback=%q\n", body, err, h.Get("Age"), h.Get("Sluice-Fallback"))
	}

	serve()
	clock.Advance(4 * time.Second)
	serve()
	clock.Advance(time.Minute)
	down = true
	serve()
	// Output:
	// "agents: 12" <nil> Age="" Fallback=""
	// "agents: 12" <nil> Age="4" Fallback=""
	// "agents: 12" <nil> Age="64" Fallback="stale-cache"
}

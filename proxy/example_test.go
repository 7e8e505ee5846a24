package proxy_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"

	"github.com/sluice-go/sluice/config"
	"github.com/sluice-go/sluice/proxy"
)

// get fetches url and returns the status and body.
func get(c *http.Client, method, url string) (*http.Response, string) {
	req, _ := http.NewRequest(method, url, nil)
	resp, err := c.Do(req)
	if err != nil {
		return nil, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// A route with a retry policy in front of an upstream that fails once: the
// client sees only the success.
func Example() {
	var calls atomic.Int64
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			http.Error(w, "warming up", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintf(w, "hello from %s", r.URL.Path)
	}))
	defer upstream.Close()

	dir, _ := os.MkdirTemp("", "sluice-example")
	defer os.RemoveAll(dir)
	cfg, err := config.Parse("sluice.yaml", []byte(`
storage: {dlq: "bolt://`+filepath.ToSlash(filepath.Join(dir, "dlq.db"))+`"}
policies:
  network:
    retry: {max_attempts: 3, base_delay: 10ms, max_delay: 100ms}
    circuit_breaker: {failure_rate: 0.5, window: 60s, minimum_calls: 20}
    timeout: 5s
routes:
  - name: api
    match: {path_prefix: /api/}
    upstreams: [`+upstream.URL+`]
    policy: network
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	srv, err := proxy.New(cfg, proxy.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer srv.Close()
	front := httptest.NewServer(srv.Handler())
	defer front.Close()

	resp, body := get(front.Client(), "GET", front.URL+"/api/agents")
	fmt.Println(resp.StatusCode, body)
	fmt.Println("upstream calls:", calls.Load())
	resp, body = get(front.Client(), "GET", front.URL+"/elsewhere")
	fmt.Print(resp.StatusCode, " ", body)
	// Output:
	// 200 hello from /api/agents
	// upstream calls: 2
	// 404 sluice: no route matches
}

// A route with on_exhausted: queue answers 202 while its upstream is down,
// with the ID of the dead-letter message holding the request; the admin API
// lists it.
func Example_queue() {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
	}))
	defer upstream.Close()

	dir, _ := os.MkdirTemp("", "sluice-example")
	defer os.RemoveAll(dir)
	cfg, err := config.Parse("sluice.yaml", []byte(`
storage: {dlq: "bolt://`+filepath.ToSlash(filepath.Join(dir, "dlq.db"))+`"}
routes:
  - {name: agents, upstreams: [`+upstream.URL+`], on_exhausted: queue}
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	srv, err := proxy.New(cfg, proxy.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer srv.Close()
	front := httptest.NewServer(srv.Handler())
	defer front.Close()
	admin := httptest.NewServer(srv.AdminHandler())
	defer admin.Close()

	resp, _ := get(front.Client(), "POST", front.URL+"/agents/7/reboot")
	id := resp.Header.Get(proxy.HeaderQueued)
	fmt.Println(resp.StatusCode, "queued:", id != "")
	resp, _ = get(admin.Client(), "GET", admin.URL+"/dlq/"+id)
	fmt.Println("GET /dlq/{id}:", resp.StatusCode)
	// Output:
	// 202 queued: true
	// GET /dlq/{id}: 200
}

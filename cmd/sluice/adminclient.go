package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/sluice-go/sluice/config"
	"github.com/sluice-go/sluice/dlq/dlqhttp"
)

// The admin API client's defaults.
const (
	defaultAdminURL = "http://" + config.DefaultAdminListen
	// adminTokenEnv names the environment variable that holds the admin
	// API's bearer token: the server's admin.token.
	adminTokenEnv = "SLUICE_ADMIN_TOKEN"
	// adminTimeout bounds one request to the admin API; replaying a large
	// queue is the slowest.
	adminTimeout = 2 * time.Minute
)

// adminFlags are the flags every admin API client command shares.
type adminFlags struct {
	url string
}

func (f *adminFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.url, "admin", defaultAdminURL, "admin API `URL` (the server's admin.listen); the bearer token is read from $"+adminTokenEnv)
}

// client returns a client of the admin API at f.url. Close it when done.
func (f *adminFlags) client() (*adminClient, error) {
	raw := f.url
	if !strings.Contains(raw, "://") {
		raw = "http://" + raw // host:port, as admin.listen writes it
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, usageError{fmt.Errorf("--admin %q: want an http:// or https:// URL such as %s", f.url, defaultAdminURL)}
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.Proxy = nil // the admin API is local; an HTTP_PROXY must not capture it
	return &adminClient{
		base:  u,
		token: os.Getenv(adminTokenEnv),
		hc:    &http.Client{Transport: t, Timeout: adminTimeout},
	}, nil
}

// adminClient talks to a running sluice's admin API.
type adminClient struct {
	base  *url.URL
	token string
	hc    *http.Client
}

// close drops the client's idle connections.
func (c *adminClient) close() { c.hc.CloseIdleConnections() }

// adminResponse is an admin API answer, read whole: its bodies are small.
type adminResponse struct {
	code   int
	header http.Header
	body   []byte
}

// do sends one request to path (with query q) and reads the answer. It
// turns a refused connection and a 401 into errors that say what to do;
// every other status is the caller's to judge.
func (c *adminClient) do(ctx context.Context, method, path string, q url.Values) (*adminResponse, error) {
	u := *c.base
	u.Path += path
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, method, u.String(), nil)
	if err != nil {
		return nil, err
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	req.Header.Set("Accept", "application/json, text/plain")
	if method != http.MethodGet && method != http.MethodHead {
		// The admin API refuses a state-changing request without it: a
		// cross-origin web page cannot send it.
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, c.connError(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("admin API at %s: reading the answer: %w", c.base, err)
	}
	if resp.StatusCode == http.StatusUnauthorized {
		if c.token == "" {
			return nil, fmt.Errorf("admin API at %s requires a token (401 Unauthorized): set %s to the server's admin.token", c.base, adminTokenEnv)
		}
		return nil, fmt.Errorf("admin API at %s refused the token in %s (401 Unauthorized): it does not match the server's admin.token", c.base, adminTokenEnv)
	}
	return &adminResponse{code: resp.StatusCode, header: resp.Header, body: body}, nil
}

// connError explains a failure to reach the admin API.
func (c *adminClient) connError(err error) error {
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("cannot reach the admin API at %s: connection refused (is 'sluice serve' running, and is --admin its admin.listen?)", c.base)
	case errors.As(err, &ne) && ne.Timeout():
		return fmt.Errorf("admin API at %s did not answer in time: %w", c.base, err)
	}
	return fmt.Errorf("cannot reach the admin API at %s: %w", c.base, err)
}

// apiError is the error for an answer with an unexpected status, carrying
// the server's own message when it sent one ({"error": "..."}).
func (c *adminClient) apiError(r *adminResponse) error {
	var e dlqhttp.ErrorResponse
	msg := strings.TrimSpace(string(r.body))
	if json.Unmarshal(r.body, &e) == nil && e.Error != "" {
		msg = e.Error
	}
	if len(msg) > 300 {
		msg = msg[:300] + "…"
	}
	status := fmt.Sprintf("%d %s", r.code, http.StatusText(r.code))
	if msg == "" {
		return fmt.Errorf("admin API: %s", status)
	}
	return fmt.Errorf("admin API: %s: %s", status, msg)
}

// getJSON GETs path and decodes a 200 answer into v.
func (c *adminClient) getJSON(ctx context.Context, path string, q url.Values, v any) error {
	r, err := c.do(ctx, http.MethodGet, path, q)
	if err != nil {
		return err
	}
	if r.code != http.StatusOK {
		return c.apiError(r)
	}
	if err := json.Unmarshal(r.body, v); err != nil {
		return fmt.Errorf("admin API: cannot decode the answer to %s: %w", path, err)
	}
	return nil
}

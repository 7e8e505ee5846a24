package pool

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// HTTPCheck returns a CheckFunc that sends GET addr+path with client (nil:
// http.DefaultClient) and passes on a 2xx answer. addr is the replica's
// base URL ("http://10.0.0.5:8080"); path must start with "/". Redirects
// are followed as the client follows them. The body is read (at most 64
// KiB, so the connection can be reused) and closed.
func HTTPCheck(client *http.Client, path string) (CheckFunc, error) {
	if !strings.HasPrefix(path, "/") {
		return nil, fmt.Errorf("pool: health check path must start with \"/\", got %q", path)
	}
	if client == nil {
		client = http.DefaultClient
	}
	return func(ctx context.Context, addr string) error {
		url := strings.TrimSuffix(addr, "/") + path
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return fmt.Errorf("pool: health check of %s: %w", addr, err)
		}
		resp, err := client.Do(req)
		if err != nil {
			return fmt.Errorf("pool: health check of %s: %w", addr, err)
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		if resp.StatusCode < 200 || resp.StatusCode > 299 {
			return fmt.Errorf("pool: health check GET %s: status %d", url, resp.StatusCode)
		}
		return nil
	}, nil
}

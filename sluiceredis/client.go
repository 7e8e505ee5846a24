package sluiceredis

import (
	"fmt"

	"github.com/redis/go-redis/v9"
)

// NewClient returns a client for a redis:// or rediss:// URL (user,
// password, database and options as redis.ParseURL reads them) that
// honours context deadlines, as the Limiter and Store need. The caller
// closes it.
func NewClient(url string) (*redis.Client, error) {
	opt, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("sluiceredis: %w", err)
	}
	opt.ContextTimeoutEnabled = true
	opt.DisableIdentity = true // CLIENT SETINFO is noise in older servers' logs
	return redis.NewClient(opt), nil
}

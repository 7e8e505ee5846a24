package sluiceredis_test

import (
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/sluice-go/sluice"
	"github.com/sluice-go/sluice/dlq"
	"github.com/sluice-go/sluice/dlq/dlqtest"
	"github.com/sluice-go/sluice/internal/redistest"
	"github.com/sluice-go/sluice/sluiceredis"
)

var prefixes atomic.Int64

// newStore returns a Store on srv with a prefix of its own, so that stores
// sharing one server start empty and never meet.
func newStore(t *testing.T, srv *redistest.Server, opt sluiceredis.StoreOptions) *sluiceredis.Store {
	t.Helper()
	opt.Client = srv.Client()
	if opt.Prefix == "" {
		opt.Prefix = fmt.Sprintf("sluice:{dlq-%d}", prefixes.Add(1))
	}
	s, err := sluiceredis.NewStore(opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// The Redis store passes the same conformance suite as the bbolt store.
func TestStoreConformance(t *testing.T) {
	srv := redistest.Start(t)
	dlqtest.RunConformance(t, func(t *testing.T, clock sluice.Clock) dlq.Store {
		return newStore(t, srv, sluiceredis.StoreOptions{Clock: clock})
	})
}

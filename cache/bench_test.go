package cache_test

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-go/sluice"
	"github.com/sluice-go/sluice/cache"
)

// BenchmarkCacheHit measures fresh hits spread over 1024 keys, the common
// case of a cache in front of many resources.
func BenchmarkCacheHit(b *testing.B) {
	c, _ := cache.New[int](cache.Config{TTL: time.Hour})
	keys := make([]string, 1024)
	for i := range keys {
		keys[i] = "agent-" + strconv.Itoa(i)
		c.Put(keys[i], i)
	}
	fn := func(context.Context) (int, error) { panic("miss in a hit benchmark") }
	ctx := context.Background()
	var seed atomic.Uint32
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := int(seed.Add(7919))
		for pb.Next() {
			if _, _, err := c.Get(ctx, keys[i&1023], fn); err != nil {
				b.Error(err)
			}
			i++
		}
	})
}

// BenchmarkCacheHitOneKey measures fresh hits on one hot key: every caller
// takes the same shard's read lock.
func BenchmarkCacheHitOneKey(b *testing.B) {
	c, _ := cache.New[int](cache.Config{TTL: time.Hour})
	c.Put("hot", 1)
	fn := func(context.Context) (int, error) { panic("miss in a hit benchmark") }
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, _, err := c.Get(ctx, "hot", fn); err != nil {
				b.Error(err)
			}
		}
	})
}

// BenchmarkPolicyHit measures a fresh hit through a one-policy pipeline under
// sluice.Get (whose own result carrier is one allocation).
func BenchmarkPolicyHit(b *testing.B) {
	c, _ := cache.New[int](cache.Config{TTL: time.Hour})
	c.Put("hot", 1)
	p := sluice.NewPipeline(c.Policy(func(context.Context) string { return "hot" }))
	fn := func(context.Context) (int, error) { panic("miss in a hit benchmark") }
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := sluice.Get(ctx, p, fn); err != nil {
				b.Error(err)
			}
		}
	})
}

// BenchmarkCacheMiss measures a miss that stores: one goroutine, a flight and
// an entry per call, with eviction once the cache is full.
func BenchmarkCacheMiss(b *testing.B) {
	c, _ := cache.New[int](cache.Config{TTL: time.Hour, MaxEntries: 4096})
	fn := func(context.Context) (int, error) { return 1, nil }
	keys := make([]string, 1<<16)
	for i := range keys {
		keys[i] = "k" + strconv.Itoa(i)
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		c.Get(ctx, keys[i&(len(keys)-1)], fn)
	}
}

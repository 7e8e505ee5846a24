package sluiceredis_test

import (
	"context"
	"errors"
	"log"

	"github.com/sluice-go/sluice"
	"github.com/sluice-go/sluice/breaker"
	"github.com/sluice-go/sluice/sluiceredis"
)

// A breaker that every instance of a program shares: when two instances
// have tripped within a minute (the quorum), all of them reject, the fleet
// sends one probe at a time in total once the open period ends, and
// three probe successes anywhere close it everywhere. With Redis away each
// instance goes on by its own rules.
func ExampleNewBreakerSync() {
	client, err := sluiceredis.NewClient("redis://127.0.0.1:6379")
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()
	sync, err := sluiceredis.NewBreakerSync(sluiceredis.SyncConfig{
		Client: client,
		Key:    sluiceredis.BreakerKey("payments"),
		Mode:   sluiceredis.SyncQuorum,
		Quorum: 2,
	})
	if err != nil {
		log.Fatal(err)
	}
	b, err := breaker.New(breaker.Config{Name: "payments", FailureRateThreshold: 0.5, Shared: sync})
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close() // closes the sync too

	p := sluice.NewPipeline(b)
	err = p.Do(context.Background(), func(context.Context) error { return nil })
	if errors.Is(err, breaker.ErrOpen) {
		var remote *sluiceredis.RemoteTripError
		if errors.As(err, &remote) {
			log.Printf("rejected: the fleet's breaker was opened by %s", remote.Instance)
		}
	}
	if sync.Degraded() {
		log.Printf("breaker on local rules: %v", sync.LastError())
	}
}

package sluicetest_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sluice-go/sluice"
	"github.com/sluice-go/sluice/breaker"
	"github.com/sluice-go/sluice/sluicetest"
)

// A FakeClock lets a test walk a breaker through its open period without
// sleeping: the breaker reads the fake time, and the test moves it.
func ExampleFakeClock() {
	clock := sluicetest.NewFakeClock(time.Time{})
	br := breaker.MustNew(breaker.Config{Name: "db", FailureThreshold: 2, OpenFor: 30 * time.Second, SuccessThreshold: 1, Clock: clock})
	defer br.Close()
	p := sluice.NewPipeline(br)
	down := errors.New("connection refused")

	for range 2 {
		_ = p.Do(context.Background(), func(context.Context) error { return down })
	}
	err := p.Do(context.Background(), func(context.Context) error { return nil })
	fmt.Println(br.State(), errors.Is(err, breaker.ErrOpen))

	clock.Advance(30 * time.Second)
	fmt.Println(br.State())
	_ = p.Do(context.Background(), func(context.Context) error { return nil })
	fmt.Println(br.State())
	// Output:
	// open true
	// half-open
	// closed
}

package fallback_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sluice-go/sluice"
	"github.com/sluice-go/sluice/breaker"
	"github.com/sluice-go/sluice/fallback"
	"github.com/sluice-go/sluice/sluicetest"
)

// The primary fails; the first alternative fails too; the replica answers.
func Example() {
	f, err := fallback.New(fallback.Config[string]{
		Name: "status",
		Alternatives: []fallback.Alternative[string]{
			{Name: "alt-endpoint", Timeout: time.Second, Fn: func(ctx context.Context) (string, error) {
				return "", errors.New("connection refused")
			}},
			{Name: "replica", Timeout: time.Second, Fn: func(ctx context.Context) (string, error) {
				return "online (from replica)", nil
			}},
		},
	})
	if err != nil {
		panic(err)
	}
	p := sluice.NewPipeline(f)

	var o fallback.Outcome
	ctx := fallback.WithOutcome(context.Background(), &o)
	v, err := sluice.Get(ctx, p, func(ctx context.Context) (string, error) {
		return "", &sluice.StatusError{Code: 503}
	})
	fmt.Println(v, err)
	fmt.Println("answered by:", o.Branch, o.Alternative, "after:", o.Err)
	s := f.Stats()
	fmt.Println("alternatives:", s.Alternatives)
	// Output:
	// online (from replica) <nil>
	// answered by: alternative replica after: HTTP 503 Service Unavailable
	// alternatives: [{alt-endpoint 0 1} {replica 1 0}]
}

// The last good result stands in for a failed call until its TTL runs out;
// then the default answers.
func Example_lastGood() {
	clock := sluicetest.NewFakeClock(time.Time{})
	unknown := "unknown"
	f, err := fallback.New(fallback.Config[string]{
		LastGoodTTL: 5 * time.Minute,
		Default:     &unknown,
		Clock:       clock,
	})
	if err != nil {
		panic(err)
	}
	p := sluice.NewPipeline(f)
	up := true
	fetch := func(ctx context.Context) (string, error) {
		if up {
			return "v42", nil
		}
		return "", errors.New("upstream down")
	}

	for _, step := range []time.Duration{0, 2 * time.Minute, 3 * time.Minute} {
		clock.Advance(step)
		var o fallback.Outcome
		v, err := sluice.Get(fallback.WithOutcome(context.Background(), &o), p, fetch)
		fmt.Printf("%v later: %s %v (%s, age %v)\n", step, v, err, o.Branch, o.Age)
		up = false
	}
	// Output:
	// 0s later: v42 <nil> (primary, age 0s)
	// 2m0s later: v42 <nil> (last-good, age 2m0s)
	// 3m0s later: unknown <nil> (default, age 0s)
}

// When every branch is spent, the error wraps the primary's failure and
// lists what the alternatives said.
func Example_exhausted() {
	f, err := fallback.New(fallback.Config[int]{
		Alternatives: []fallback.Alternative[int]{{Name: "replica", Fn: func(context.Context) (int, error) {
			return 0, errors.New("replica lagging")
		}}},
	})
	if err != nil {
		panic(err)
	}
	_, err = sluice.Get(context.Background(), sluice.NewPipeline(f), func(context.Context) (int, error) {
		return 0, &sluice.StatusError{Code: 502}
	})
	var se *sluice.StatusError
	fmt.Println(err)
	fmt.Println(errors.Is(err, fallback.ErrExhausted), errors.As(err, &se) && se.Code == 502)
	// Output:
	// fallback: exhausted: HTTP 502 Bad Gateway; alternative "replica": replica lagging
	// true true
}

// An alternative given as FnErr answers knowing why the primary failed:
// here an open breaker's rejection, which wraps the failure that opened it,
// and the partial value the primary returned.
func Example_fnErr() {
	b := breaker.MustNew(breaker.Config{Name: "search", FailureThreshold: 1, OpenFor: time.Minute})
	defer b.Close()
	f, err := fallback.New(fallback.Config[[]string]{
		Alternatives: []fallback.Alternative[[]string]{{
			Name: "explain",
			FnErr: func(ctx context.Context, partial []string, err error) ([]string, error) {
				var se *sluice.StatusError
				switch {
				case errors.Is(err, breaker.ErrOpen) && errors.As(err, &se):
					return []string{fmt.Sprintf("search is off: it answered %d", se.Code)}, nil
				case len(partial) > 0:
					return append(partial, "(incomplete)"), nil
				}
				return nil, err
			},
		}},
	})
	if err != nil {
		panic(err)
	}
	p := sluice.NewPipeline(f, b)
	search := func(ctx context.Context) ([]string, error) {
		return []string{"first hit"}, &sluice.StatusError{Code: 503}
	}
	v, err := sluice.Get(context.Background(), p, search) // fails, and opens the breaker
	fmt.Println(v, err)
	v, err = sluice.Get(context.Background(), p, search) // rejected by the open breaker
	fmt.Println(v, err)
	// Output:
	// [first hit (incomplete)] <nil>
	// [search is off: it answered 503] <nil>
}

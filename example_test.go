package sluice_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"regexp"

	"github.com/sluice-go/sluice"
)

// A policy is anything with Execute; here, one that logs each call and a
// crude retry. Policies run outermost first.
func ExampleNewPipeline() {
	logging := sluice.PolicyFunc(func(ctx context.Context, next sluice.Next) error {
		err := next.Run(ctx)
		fmt.Println("call finished:", err)
		return err
	})
	retryTwice := sluice.PolicyFunc(func(ctx context.Context, next sluice.Next) error {
		err := next.Run(ctx)
		if sluice.Classify(ctx, err).Retryable {
			fmt.Println("retrying after:", err)
			err = next.Run(ctx)
		}
		return err
	})
	p := sluice.NewPipeline(logging, retryTwice)

	attempts := 0
	err := p.Do(context.Background(), func(ctx context.Context) error {
		attempts++
		if attempts == 1 {
			return &sluice.StatusError{Code: 503}
		}
		return nil
	})
	fmt.Println(attempts, err)
	// Output:
	// retrying after: HTTP 503 Service Unavailable
	// call finished: <nil>
	// 2 <nil>
}

// Get runs a call that returns a value. A policy can read the value, or
// substitute one, through Next.Result.
func ExampleGet() {
	orDefault := sluice.PolicyFunc(func(ctx context.Context, next sluice.Next) error {
		if err := next.Run(ctx); err != nil {
			*next.Result().(*string) = "unknown"
		}
		return nil
	})
	p := sluice.NewPipeline(orDefault)

	v, err := sluice.Get(context.Background(), p, func(ctx context.Context) (string, error) {
		return "online", nil
	})
	fmt.Println(v, err)
	v, err = sluice.Get(context.Background(), p, func(ctx context.Context) (string, error) {
		return "", errors.New("agent unreachable")
	})
	fmt.Println(v, err)
	// Output:
	// online <nil>
	// unknown <nil>
}

// Classify maps errors to a failure type and says whether a retry may help.
func ExampleClassify() {
	ctx := context.Background()
	canceled, cancel := context.WithCancel(ctx)
	cancel()

	for _, c := range []struct {
		ctx context.Context
		err error
	}{
		{ctx, &sluice.StatusError{Code: 503}},
		{ctx, &sluice.StatusError{Code: 401}},
		{ctx, &net.DNSError{Err: "server misbehaving", Name: "agents.internal", IsTemporary: true}},
		{ctx, context.DeadlineExceeded},
		{canceled, context.Canceled},
		{ctx, errors.New("something else")},
	} {
		f := sluice.Classify(c.ctx, c.err)
		fmt.Printf("%-43v %-14v retryable=%v\n", c.err, f.Type, f.Retryable)
	}
	// Output:
	// HTTP 503 Service Unavailable                unavailable    retryable=true
	// HTTP 401 Unauthorized                       authentication retryable=false
	// lookup agents.internal: server misbehaving  network        retryable=true
	// context deadline exceeded                   timeout        retryable=true
	// context canceled                            canceled       retryable=false
	// something else                              unknown        retryable=true
}

// User rules come before the built-in ones; the first that matches decides.
func ExampleClassifier() {
	c := &sluice.Classifier{Rules: []sluice.Rule{
		{Pattern: regexp.MustCompile(`deadlock`), Type: sluice.FailureUnavailable, Retryable: true},
		{Statuses: []int{500}, Type: sluice.FailureUnknown, Retryable: true},
	}}
	for _, err := range []error{
		errors.New("Error 1213: deadlock found"),
		&sluice.StatusError{Code: 500},
		&sluice.StatusError{Code: 403},
	} {
		f := c.Classify(context.Background(), err)
		fmt.Println(f.Type, f.Retryable)
	}
	// Output:
	// unavailable true
	// unknown true
	// authentication false
}

package breaker

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/sluice-go/sluice"
)

// Outcome judges errors as Execute counts them: each error is passed through
// Execute on a fresh breaker, whose statistics must show the outcome that
// Outcome returned.
func TestOutcomeIsWhatExecuteCounts(t *testing.T) {
	live := context.Background()
	done, cancel := context.WithCancel(live)
	cancel()
	errDown := errors.New("down")
	custom := func(_ context.Context, err error) bool { return errors.Is(err, errDown) }
	cases := []struct {
		name      string
		ctx       context.Context
		err       error
		isFailure func(context.Context, error) bool
		want      Outcome
	}{
		{"nil", live, nil, nil, Success},
		{"unavailable", live, &sluice.StatusError{Code: 503}, nil, Failure},
		{"client error", live, &sluice.StatusError{Code: 404}, nil, Success},
		{"unknown error", live, errDown, nil, Failure},
		{"deadline, caller still there", live, context.DeadlineExceeded, nil, Failure},
		{"deadline, caller gone", done, context.DeadlineExceeded, nil, Ignored},
		{"canceled, caller gone", done, context.Canceled, nil, Ignored},
		{"local rejection", live, fmt.Errorf("shed: %w", sluice.ErrRejected), nil, Success},
		{"IsFailure yes", live, errDown, custom, Failure},
		{"IsFailure no", live, &sluice.StatusError{Code: 503}, custom, Success},
		{"IsFailure, caller gone", done, context.Canceled, custom, Ignored},
	}
	for _, c := range cases {
		b := MustNew(Config{Name: c.name, IsFailure: c.isFailure})
		if got := b.Outcome(c.ctx, c.err); got != c.want {
			t.Errorf("%s: Outcome = %v, want %v", c.name, got, c.want)
		}
		// A caller gone before the call starts gets no call at all; this
		// one leaves while the call runs.
		ctx, leave := context.WithCancel(live)
		_ = sluice.NewPipeline(b).Do(ctx, func(context.Context) error {
			if c.ctx == done {
				leave()
			}
			return c.err
		})
		leave()
		st := b.Stats()
		got := map[Outcome]int64{Success: st.Successes, Failure: st.Failures, Ignored: st.Ignored}
		if st.Calls != 1 || got[c.want] != 1 {
			t.Errorf("%s: Execute counted %d successes, %d failures, %d ignored; want one %v", c.name, st.Successes, st.Failures, st.Ignored, c.want)
		}
	}
}

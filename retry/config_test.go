package retry

import (
	"context"
	"errors"
	"math"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sluice-go/sluice"
)

func TestNewRejectsBadConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string // the error must contain this
	}{
		{"negative attempts", Config{MaxAttempts: -1}, "Config.MaxAttempts must be >= 0 (0 means 3), got -1"},
		{"negative elapsed", Config{MaxElapsed: -time.Second}, "Config.MaxElapsed must be >= 0, got -1s"},
		{"negative attempt timeout", Config{AttemptTimeout: -1}, "Config.AttemptTimeout must be >= 0"},
		{"negative sample", Config{SampleEvery: -2}, "Config.SampleEvery must be >= 0"},
		{"negative base", Config{Backoff: Exponential(-time.Second, 2, time.Minute)}, "Config.Backoff.Base must be >= 0, got -1s"},
		{"multiplier below 1", Config{Backoff: Exponential(time.Second, 0.5, time.Minute)}, "Config.Backoff.Multiplier must be >= 1, got 0.5"},
		{"NaN multiplier", Config{Backoff: Exponential(time.Second, math.NaN(), time.Minute)}, "Config.Backoff.Multiplier must be >= 1, got NaN"},
		{"infinite multiplier", Config{Backoff: Exponential(time.Second, math.Inf(1), time.Minute)}, "Config.Backoff.Multiplier must be finite"},
		{"cap below base", Config{Backoff: Exponential(time.Second, 2, 0)}, "Config.Backoff.Cap must be >= Base (1s), got 0s"},
		{"negative step", Config{Backoff: Linear(time.Second, -time.Second, time.Minute)}, "Config.Backoff.Step must be >= 0, got -1s"},
		{"linear cap below base", Config{Backoff: Linear(time.Second, time.Second, 500*time.Millisecond)}, "Config.Backoff.Cap must be >= Base (1s), got 500ms"},
		{"negative linear base", Config{Backoff: Linear(-time.Second, time.Second, time.Minute)}, "Config.Backoff.Base must be >= 0, got -1s"},
		{"decorrelated cap below base", Config{Backoff: Decorrelated(time.Second, time.Millisecond)}, "Config.Backoff.Cap must be >= Base (1s), got 1ms"},
		{"negative constant", Config{Backoff: Constant(-time.Millisecond)}, "Config.Backoff.Base must be >= 0, got -1ms"},
		{"zero decorrelated base", Config{Backoff: Decorrelated(0, time.Second)}, "Config.Backoff.Base must be > 0 for a decorrelated backoff"},
		{"jitter above 1", Config{Jitter: Proportional(1.5)}, "Config.Jitter range must be within [0, 1], got 1.5"},
		{"negative jitter", Config{Jitter: Proportional(-0.1)}, "Config.Jitter range must be within [0, 1], got -0.1"},
		{"NaN jitter", Config{Jitter: Proportional(math.NaN())}, "Config.Jitter range must be within [0, 1], got NaN"},
		{"unknown backoff kind", Config{Backoff: Backoff{kind: 99}}, "Config.Backoff has unknown kind"},
		{"nil ratio budget", Config{Budget: (*RatioBudget)(nil)}, "Config.Budget is a nil *RatioBudget"},
		{"nil token budget", Config{Budget: (*TokenBudget)(nil)}, "Config.Budget is a nil *TokenBudget"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := New(tt.cfg)
			if err == nil || r != nil {
				t.Fatalf("New(%+v) = %v, %v; want an error", tt.cfg, r, err)
			}
			if !strings.HasPrefix(err.Error(), "retry: ") || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestMustNew(t *testing.T) {
	if r := MustNew(Config{Name: "db"}); r.Config().Name != "db" {
		t.Errorf("MustNew name %q", r.Config().Name)
	}
	defer func() {
		if recover() == nil {
			t.Error("MustNew with an invalid Config did not panic")
		}
	}()
	MustNew(Config{MaxAttempts: -1})
}

func TestZeroConfigDefaults(t *testing.T) {
	r, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := r.Config()
	if cfg.Name != "retry" || cfg.MaxAttempts != 3 || cfg.SampleEvery != 16 {
		t.Errorf("defaults: name %q, attempts %d, sample %d; want retry, 3, 16", cfg.Name, cfg.MaxAttempts, cfg.SampleEvery)
	}
	if cfg.Backoff != DefaultBackoff() || cfg.Jitter != FullJitter {
		t.Errorf("defaults: backoff %v jitter %v; want %v full", cfg.Backoff, cfg.Jitter, DefaultBackoff())
	}
	if cfg.Budget != nil {
		t.Errorf("Config().Budget = %v, want nil (the default stays implicit)", cfg.Budget)
	}
	if _, ok := r.Budget().(*RatioBudget); !ok {
		t.Errorf("Budget() = %T, want the default *RatioBudget", r.Budget())
	}
	r2, _ := New(Config{})
	if r.Budget() == r2.Budget() {
		t.Error("two Retry policies share a default budget; each must get its own")
	}
}

func TestReadyMadeConfigs(t *testing.T) {
	tests := []struct {
		cfg      Config
		name     string
		attempts int
		backoff  Backoff
	}{
		{Network(), "network", 5, Exponential(time.Second, 2, 30*time.Second)},
		{Database(), "database", 3, Exponential(500*time.Millisecond, 2, 10*time.Second)},
		{API(), "api", 4, Exponential(2*time.Second, 1.5, 60*time.Second)},
	}
	for _, tt := range tests {
		if tt.cfg.Name != tt.name || tt.cfg.MaxAttempts != tt.attempts || tt.cfg.Backoff != tt.backoff || tt.cfg.Jitter != Proportional(0.1) {
			t.Errorf("%s: got %q %d %v %v", tt.name, tt.cfg.Name, tt.cfg.MaxAttempts, tt.cfg.Backoff, tt.cfg.Jitter)
		}
		if _, err := New(tt.cfg); err != nil {
			t.Errorf("%s: New: %v", tt.name, err)
		}
	}
}

func TestAPIRetriesOnlyItsStatuses(t *testing.T) {
	r, err := New(API())
	if err != nil {
		t.Fatal(err)
	}
	s := r.s.Load()
	for code, want := range map[int]bool{429: true, 502: true, 503: true, 504: true, 408: false, 500: false, 401: false, 404: false} {
		if got := s.retryable(context.Background(), &sluice.StatusError{Code: code}); got != want {
			t.Errorf("API retries %d: %v, want %v", code, got, want)
		}
	}
	if !s.retryable(context.Background(), syscall.ECONNREFUSED) {
		t.Error("API does not retry a refused connection")
	}
	if s.retryable(context.Background(), sluice.ErrRejected) {
		t.Error("API retries a sluice rejection")
	}
}

func TestResultMatches(t *testing.T) {
	pred := ResultMatches(func(n int) bool { return n < 0 })
	neg, pos := -1, 1
	if !pred(&neg) || pred(&pos) || pred("x") || pred((*int)(nil)) || pred(nil) {
		t.Error("ResultMatches does not match exactly the *int results its predicate accepts")
	}
}

func TestErrAttemptTimeout(t *testing.T) {
	if !errors.Is(ErrAttemptTimeout, context.DeadlineExceeded) {
		t.Error("ErrAttemptTimeout does not match context.DeadlineExceeded")
	}
	var te interface{ Timeout() bool }
	if !errors.As(ErrAttemptTimeout, &te) || !te.Timeout() {
		t.Error("ErrAttemptTimeout does not report Timeout() true")
	}
}

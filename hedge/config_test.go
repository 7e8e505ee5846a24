package hedge_test

import (
	"strings"
	"testing"
	"time"

	"github.com/sluice-go/sluice/hedge"
)

func TestConfigValidate(t *testing.T) {
	cases := []struct {
		cfg  hedge.Config
		want string // in the error; "" for valid
	}{
		{hedge.Config{Delay: ms}, ""},
		{hedge.Config{Delay: ms, Percentile: 0.95, MinDelay: ms, MaxDelay: time.Second, Window: time.Minute, MinSamples: 10, MaxHedges: hedge.MaxMaxHedges}, ""},
		{hedge.Config{}, "Config.Delay must be > 0"},
		{hedge.Config{Delay: -ms}, "Config.Delay must be > 0"},
		{hedge.Config{Delay: ms, Percentile: 1}, "Config.Percentile must be within (0, 1)"},
		{hedge.Config{Delay: ms, Percentile: -0.5}, "Config.Percentile must be within (0, 1)"},
		{hedge.Config{Delay: ms, Percentile: nan()}, "Config.Percentile must be within (0, 1), or 0 for the fixed Delay, got NaN"},
		{hedge.Config{Delay: ms, Percentile: 0.9, MinDelay: -1}, "Config.MinDelay must be >= 0"},
		{hedge.Config{Delay: ms, Percentile: 0.9, MaxDelay: -1}, "Config.MaxDelay must be >= 0"},
		{hedge.Config{Delay: ms, Percentile: 0.9, MinDelay: time.Second, MaxDelay: ms}, "Config.MaxDelay (1ms) must not be below Config.MinDelay (1s)"},
		{hedge.Config{Delay: ms, Percentile: 0.9, Window: -time.Second}, "Config.Window must be >= 0"},
		{hedge.Config{Delay: ms, Percentile: 0.9, MinSamples: -1}, "Config.MinSamples must be >= 0"},
		{hedge.Config{Delay: ms, MaxHedges: -1}, "Config.MaxHedges must be within [0, 10]"},
		{hedge.Config{Delay: ms, MaxHedges: hedge.MaxMaxHedges + 1}, "Config.MaxHedges must be within [0, 10] (0 means 1), got 11"},
		{hedge.Config{Delay: ms, MaxDelay: time.Second}, "apply only with Config.Percentile"},
	}
	for _, tc := range cases {
		err := tc.cfg.Validate()
		_, newErr := hedge.New(tc.cfg)
		switch {
		case tc.want == "" && (err != nil || newErr != nil):
			t.Errorf("%+v: Validate = %v, New = %v; want valid", tc.cfg, err, newErr)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%+v: Validate = %v, want an error containing %q", tc.cfg, err, tc.want)
		case tc.want != "" && (newErr == nil || newErr.Error() != err.Error()):
			t.Errorf("%+v: New = %v, want Validate's error", tc.cfg, newErr)
		case tc.want != "" && !strings.HasPrefix(err.Error(), "hedge: "):
			t.Errorf("error %q does not name the package", err)
		}
	}
}

func nan() float64 { z := 0.0; return z / z }

func TestMustNewPanicsOnBadConfig(t *testing.T) {
	defer func() {
		if r := recover(); r == nil || !strings.Contains(r.(error).Error(), "Config.Delay") {
			t.Fatalf("recovered %v, want the Delay error", r)
		}
	}()
	hedge.MustNew(hedge.Config{})
}

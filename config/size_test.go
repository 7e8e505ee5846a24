package config_test

import (
	"math"
	"testing"

	"github.com/sluice-go/sluice/config"
	"pgregory.net/rapid"
)

func TestParseSize(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want config.Size
		err  string
	}{
		{in: "0", want: 0},
		{in: "1024", want: 1024},
		{in: "512KB", want: 512000},
		{in: "1MiB", want: 1 << 20},
		{in: "1 mib", want: 1 << 20},
		{in: "1.5KiB", want: 1536},
		{in: "2GB", want: 2e9},
		{in: "3TiB", want: 3 << 40},
		{in: "10B", want: 10},
		{in: "0.5MB", want: 500000},
		{in: "8388607TiB", want: 8388607 << 40},
		{in: "8388608TiB", err: `size "8388608TiB" is too large (max 9223372036854775807 bytes)`},
		{in: "9223372036854775808", err: `size "9223372036854775808" is too large (max 9223372036854775807 bytes)`},
		{in: "", err: "empty size"},
		{in: "-1KB", err: `size "-1KB" is negative`},
		{in: "1.5B", err: `bad size "1.5B": not a whole number of bytes`},
		{in: "1M", err: `bad size "1M": unknown unit "M" (want B, KB, MB, GB, TB, KiB, MiB, GiB or TiB)`},
		{in: "MiB", err: `bad size "MiB" (want a number of bytes, optionally with a unit: 1024, 512KB, 1MiB)`},
		{in: "1.", err: `bad size "1." (want a number of bytes, optionally with a unit: 1024, 512KB, 1MiB)`},
		{in: "1.2.3", err: `bad size "1.2.3" (want a number of bytes, optionally with a unit: 1024, 512KB, 1MiB)`},
		{in: "1e3", err: `bad size "1e3": unknown unit "e3" (want B, KB, MB, GB, TB, KiB, MiB, GiB or TiB)`},
	}
	for _, tt := range tests {
		got, err := config.ParseSize(tt.in)
		switch {
		case tt.err != "" && (err == nil || err.Error() != tt.err):
			t.Errorf("ParseSize(%q) = %v, %v; want error %q", tt.in, got, err, tt.err)
		case tt.err == "" && (err != nil || got != tt.want):
			t.Errorf("ParseSize(%q) = %v, %v; want %d", tt.in, got, err, tt.want)
		}
	}
}

func TestSizeString(t *testing.T) {
	t.Parallel()
	for s, want := range map[config.Size]string{0: "0", 1: "1", 1024: "1KiB", 1536: "1536", 2000: "2KB", 1 << 20: "1MiB", 3 << 40: "3TiB", 5e12: "5TB"} {
		if got := s.String(); got != want {
			t.Errorf("Size(%d).String() = %q, want %q", int64(s), got, want)
		}
	}
}

func TestSizeRoundTrip(t *testing.T) {
	t.Parallel()
	rapid.Check(t, func(t *rapid.T) {
		s := config.Size(rapid.Int64Range(0, math.MaxInt64).Draw(t, "size"))
		if shift := rapid.IntRange(0, 40).Draw(t, "shift"); s < 1<<(62-shift) {
			s <<= shift // reach the unit forms often
		}
		back, err := config.ParseSize(s.String())
		if err != nil || back != s {
			t.Fatalf("ParseSize(%q) = %d, %v; want %d", s.String(), back, err, s)
		}
	})
}

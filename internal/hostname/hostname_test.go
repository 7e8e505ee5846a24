package hostname

import (
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestValid(t *testing.T) {
	for h, want := range map[string]bool{
		"127.0.0.1":                     true,
		"::1":                           true,
		"redis":                         true,
		"redis.internal.":               true,
		"my_host-1.example.com":         true,
		"":                              false,
		"-leading.example":              false,
		"trailing-.example":             false,
		"a..b":                          false,
		"sp ace":                        false,
		"host:6379":                     false,
		strings.Repeat("a", 64):         false,
		strings.Repeat("a.", 127) + "a": false,
	} {
		if got := Valid(h); got != want {
			t.Errorf("Valid(%q) = %v, want %v", h, got, want)
		}
	}
}

package httpstatus

import (
	"net/http"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// Text must spell every code as net/http does: StatusError's message and
// sluicehttp's answers depend on it.
func TestTextMatchesNetHTTP(t *testing.T) {
	for code := -1; code <= 1000; code++ {
		if got, want := Text(code), http.StatusText(code); got != want {
			t.Errorf("Text(%d) = %q, want %q", code, got, want)
		}
	}
}

func TestNamedCodes(t *testing.T) {
	for got, want := range map[int]int{
		RequestTimeout: http.StatusRequestTimeout, TooManyRequests: http.StatusTooManyRequests,
		BadGateway: http.StatusBadGateway, ServiceUnavailable: http.StatusServiceUnavailable,
		GatewayTimeout: http.StatusGatewayTimeout, Unauthorized: http.StatusUnauthorized, Forbidden: http.StatusForbidden,
	} {
		if got != want {
			t.Errorf("constant %d, net/http has %d", got, want)
		}
	}
}

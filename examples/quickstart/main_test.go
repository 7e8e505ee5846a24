package main

import (
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestQuickstartRetriesThenSucceeds(t *testing.T) {
	var out strings.Builder
	if err := run(&out); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	if n := strings.Count(got, "failed after"); n != 3 {
		t.Errorf("want 3 failed attempts reported, got %d:\n%s", n, got)
	}
	for _, want := range []string{"waiting ", `succeeded after`, `"agent 42: online"`, "attempts=4 retries=3 successes=1"} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
}

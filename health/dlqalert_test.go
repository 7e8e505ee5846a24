package health_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sluice-go/sluice/dlq"
	"github.com/sluice-go/sluice/health"
)

func TestDLQThresholdsCheck(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	q := dlq.QueueStats{Queue: "agents", Ready: 90, Parked: 20, OldestReady: now.Add(-2 * time.Hour), OldestParked: now.Add(-3 * time.Hour)}
	for i, tc := range []struct {
		th   health.DLQThresholds
		want []string
	}{
		{health.DLQThresholds{}, nil},
		{health.DLQThresholds{MaxAge: 3 * time.Hour, MaxDepth: 110, MaxParked: 20}, nil}, // at the limits is fine
		{health.DLQThresholds{MaxAge: time.Hour}, []string{`age 10800/3600 dead-letter queue "agents": oldest message has waited 3h0m0s, more than 1h0m0s`}},
		{health.DLQThresholds{MaxDepth: 100, MaxParked: 10}, []string{
			`depth 110/100 dead-letter queue "agents": 110 messages, more than 100`,
			`parked 20/10 dead-letter queue "agents": 20 messages parked, more than 10`,
		}},
	} {
		var got []string
		for _, a := range tc.th.CheckAllAt(now, []dlq.QueueStats{q, {Queue: "empty"}}) {
			got = append(got, fmt.Sprintf("%v %v/%v %s", strings.TrimPrefix(a.Type, "dlq_"), a.Value, a.Threshold, a.Message))
		}
		if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
			t.Errorf("step %d: alerts\n%s\nwant\n%s", i, strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
		}
	}
}

// Every DLQ alert is a warning about its queue.
func TestDLQThresholdsAlertShape(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	q := dlq.QueueStats{Queue: "agents", Ready: 5, Parked: 5, OldestParked: now.Add(-time.Minute)}
	got := health.DLQThresholds{MaxAge: time.Second, MaxDepth: 1, MaxParked: 1}.CheckAt(now, q)
	if len(got) != 3 {
		t.Fatalf("alerts %+v, want age, depth and parked", got)
	}
	for i, typ := range []string{health.AlertDLQAge, health.AlertDLQDepth, health.AlertDLQParked} {
		if a := got[i]; a.Type != typ || a.Severity != health.SeverityWarning || a.Subject != "agents" || !a.Since.IsZero() {
			t.Errorf("alert %d: %+v, want a %s warning about agents", i, a, typ)
		}
	}
}

// The health monitor turns queue stats into alerts.
func ExampleDLQThresholds_CheckAt() {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	q := dlq.QueueStats{Queue: "agents", Ready: 1200, Parked: 3, OldestReady: now.Add(-45 * time.Minute)}
	th := health.DLQThresholds{MaxAge: 30 * time.Minute, MaxDepth: 1000}
	for _, a := range th.CheckAt(now, q) {
		fmt.Println(a.Type, a.Severity, "-", a.Message)
	}
	// Output:
	// dlq_age warning - dead-letter queue "agents": oldest message has waited 45m0s, more than 30m0s
	// dlq_depth warning - dead-letter queue "agents": 1203 messages, more than 1000
}

package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/sluice-go/sluice/dlq/dlqhttp"
)

// dlq show labels its counts for what they are: a message's Attempts are
// every attempt so far (those before it was queued plus one per failed
// replay) and Replays the failed replays, so a request sent once and then
// replayed three times shows 1 send before queueing and 3 failed replays,
// not "4 attempts before it was queued".
func TestDLQShowLabelsItsCounts(t *testing.T) {
	last := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		rule             string
		attempts, replay int
		want, notWant    []string
	}{
		{"sent once, replayed three times", 4, 3,
			[]string{"sent before queueing: 1\n", "failed replays:       3 (4 attempts in all; the last failed at " + last.Local().Format(time.RFC3339) + ")\n"},
			[]string{"before it was queued"}},
		{"never replayed", 2, 0,
			[]string{"sent before queueing: 2\n", "failed replays:       0\n"}, nil},
		{"counts that do not add up are shown as stored", 1, 3,
			[]string{"attempts:             1 in all\n", "failed replays:       3 (1 attempts in all; the last failed at "}, []string{"sent before queueing"}},
	} {
		var b bytes.Buffer
		writeMessage(&b, dlqhttp.MessageView{ID: "01J9Z3K4Q8W2M6T5R7Y1X0V3BN", Queue: "jobs", State: "ready",
			Attempts: tc.attempts, Replays: tc.replay, LastFailure: last})
		out := b.String()
		for _, w := range tc.want {
			if !strings.Contains(out, w) {
				t.Errorf("%s: output lacks %q:\n%s", tc.rule, w, out)
			}
		}
		for _, w := range tc.notWant {
			if strings.Contains(out, w) {
				t.Errorf("%s: output has %q:\n%s", tc.rule, w, out)
			}
		}
	}
}

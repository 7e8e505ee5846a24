package main

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestDemo runs the quick start end to end on loopback and reads its
// summary: requests went through, the outage queued some of them, and the
// dead-letter queue's tally adds up (queued = replayed + parked + waiting).
func TestDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("runs for 6 seconds")
	}
	start := time.Now()
	code, out, errOut := runCmd(t, "demo", "--duration", "6s")
	if code != 0 {
		t.Fatalf("demo: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	if took := time.Since(start); took < 6*time.Second {
		t.Errorf("demo returned after %v; want at least its 6s", took)
	}
	t.Logf("demo output:\n%s", out)

	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^  admin API  http://127\.0\.0\.1:\d+ `),
		regexp.MustCompile(`(?m)^ +\d+\.\ds  -- outage: the upstream answers every request with 503$`),
		regexp.MustCompile(`(?m)^ +\d+\.\ds  \S.* req \d+  ok \d+  retried \d+  fast-failed \d+  queued \d+  replayed \d+  breakers agents \S+, api \S+$`),
		regexp.MustCompile(`(?m)^summary after \d+\.\ds: \d+ requests`),
	} {
		if !want.MatchString(out) {
			t.Errorf("the output lacks a line matching %s", want)
		}
	}
	if strings.Contains(out, "\r") {
		t.Errorf("the output redraws a status line (\\r) although it is not a terminal")
	}

	requests := number(t, out, `(?m)^  requests\s+(\d+)\s+(\d+)\s+(\d+)`, 3)
	if requests < 100 {
		t.Errorf("%d requests in 6s at 40/s; want at least 100", requests)
	}
	tally := regexp.MustCompile(`dead-letter queue: queued (\d+), replayed (\d+), parked (\d+), waiting (\d+)`).FindStringSubmatch(out)
	if tally == nil {
		t.Fatalf("no dead-letter tally in the summary")
	}
	n := make([]int, 4)
	for i := range n {
		n[i], _ = strconv.Atoi(tally[i+1])
	}
	queued, replayed, parked, waiting := n[0], n[1], n[2], n[3]
	if queued == 0 {
		t.Errorf("nothing was queued during the outage")
	}
	if queued != replayed+parked+waiting {
		t.Errorf("queued %d != replayed %d + parked %d + waiting %d", queued, replayed, parked, waiting)
	}
	if replayed == 0 {
		t.Errorf("nothing was replayed after the upstream recovered")
	}
	if q := number(t, out, `(?m)^  queued\s+(\d+)\s+(\d+)\s+(\d+)`, 3); q != queued {
		t.Errorf("the table says %d queued, the tally %d", q, queued)
	}
}

// number returns submatch i of re in s as an int.
func number(t *testing.T, s, re string, i int) int {
	t.Helper()
	m := regexp.MustCompile(re).FindStringSubmatch(s)
	if m == nil {
		t.Fatalf("no match for %s", re)
	}
	n, err := strconv.Atoi(m[i])
	if err != nil {
		t.Fatal(err)
	}
	return n
}

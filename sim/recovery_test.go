package sim

import (
	"bytes"
	"context"
	"testing"
)

// With health checks every 200 ms that put an open breaker on trial when
// one passes, the default policy's goodput is back to 95 % within a second
// of the upstream's recovery, where without them it waits out the
// breaker's open time; the checks cost at most one per instance per
// interval, and the outage's amplification, checks included, stays within
// 1.1.
func TestRecoveryHealthChecks(t *testing.T) {
	t.Parallel()
	rep, err := Run(context.Background(), Options{Scenario: ScenarioRecovery, Seed: 1, Clients: 2})
	if err != nil {
		t.Fatal(err)
	}
	get := func(name string) *Result {
		t.Helper()
		res := rep.Result(name, "")
		if res == nil || res.Recovery95S == nil || res.GoodputLostS == nil {
			t.Fatalf("no recovery figures for %s: %+v", name, res)
		}
		return res
	}
	checks, def, naive := get(PolicySluiceDefaultChecks), get(PolicySluiceDefault), get(PolicyNaive)
	if b := *checks.Recovery95S; b < 0 || b > 1 {
		t.Errorf("%s: back to 95 %% after %v s, want within 1 s", checks.Name, b)
	}
	if b := *def.Recovery95S; b >= 0 && b < 5 {
		t.Errorf("%s: back to 95 %% after %v s; without checks it should wait for its breaker (several seconds), or the test cannot tell checks from none", def.Name, b)
	}
	if b := *naive.Recovery95S; b < 0 || b > 1 {
		t.Errorf("%s: back to 95 %% after %v s, want at once", naive.Name, b)
	}
	if *checks.GoodputLostS >= *def.GoodputLostS {
		t.Errorf("goodput lost after recovery: %s %v s, not below %s's %v s", checks.Name, *checks.GoodputLostS, def.Name, *def.GoodputLostS)
	}
	if a := checks.AmplificationIncident; a > 1.1 {
		t.Errorf("%s: amplification during the outage %v (checks included), want <= 1.1", checks.Name, a)
	}
	if checks.ProbeCallsIncident == 0 {
		t.Errorf("%s sent no health checks during the outage", checks.Name)
	}
	if c := checks.ChecksPerInterval; c != 1 {
		t.Errorf("%s: %d checks of one instance within one interval, want 1", checks.Name, c)
	}
	if def.ProbeCalls != 0 || naive.ProbeCalls != 0 {
		t.Errorf("policies without checks sent checks: %s %d, %s %d", def.Name, def.ProbeCalls, naive.Name, naive.ProbeCalls)
	}
	if a := naive.AmplificationIncident; a < 3.9 {
		t.Errorf("naive amplification during the outage %v, want about 4", a)
	}
}

// The recovery scenario repeats for a seed, byte for byte, and its table
// names the figures it measures.
func TestRecoveryDeterministic(t *testing.T) {
	t.Parallel()
	out := func() (string, string) {
		rep, err := Run(context.Background(), Options{Scenario: ScenarioRecovery, Seed: 3, Clients: 1, Policies: []string{PolicySluiceDefaultChecks}})
		if err != nil {
			t.Fatal(err)
		}
		var j, tb bytes.Buffer
		if err := rep.WriteJSON(&j); err != nil {
			t.Fatal(err)
		}
		if err := rep.WriteTable(&tb); err != nil {
			t.Fatal(err)
		}
		return j.String(), tb.String()
	}
	j1, t1 := out()
	j2, _ := out()
	if j1 != j2 {
		t.Error("two runs of the same seed differ")
	}
	for _, want := range []string{"back to 95 %", "goodput lost", "checks per instance per interval", PolicySluiceDefaultChecks} {
		if !bytes.Contains([]byte(t1), []byte(want)) {
			t.Errorf("table lacks %q:\n%s", want, t1)
		}
	}
	for _, want := range []string{`"recovery_95_s"`, `"goodput_lost_s"`, `"checks_per_interval"`} {
		if !bytes.Contains([]byte(j1), []byte(want)) {
			t.Errorf("JSON lacks %s", want)
		}
	}
}

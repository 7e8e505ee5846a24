package sim

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"time"
)

// These tests run the scenarios at a reduced size: fewer clients, with the
// upstream's capacity scaled to match, so each client (and its policy
// instance) sees the same load as in the full run. The bounds are those
// the simulator was specified with.

func runT(t *testing.T, opts Options) *Report {
	t.Helper()
	rep, err := Run(context.Background(), opts)
	if err != nil {
		t.Fatalf("Run(%+v): %v", opts, err)
	}
	return rep
}

func result(t *testing.T, rep *Report, name, caseName string) *Result {
	t.Helper()
	r := rep.Result(name, caseName)
	if r == nil {
		t.Fatalf("no result for %s %q", name, caseName)
	}
	return r
}

func table(rep *Report) string {
	var b strings.Builder
	rep.WriteTable(&b)
	return b.String()
}

func TestDeterministic(t *testing.T) {
	t.Parallel()
	opts := Options{Scenario: ScenarioOutage, Seed: 7, Clients: 1, Policies: []string{PolicyNaive, PolicySluiceDefault}}
	render := func(rep *Report) (j, tab, svg string) {
		var a, b, c bytes.Buffer
		if err := rep.WriteJSON(&a); err != nil {
			t.Fatal(err)
		}
		if err := rep.WriteTable(&b); err != nil {
			t.Fatal(err)
		}
		if err := rep.WriteSVG(&c); err != nil {
			t.Fatal(err)
		}
		return a.String(), b.String(), c.String()
	}
	j1, t1, s1 := render(runT(t, opts))
	j2, t2, s2 := render(runT(t, opts))
	if j1 != j2 || t1 != t2 || s1 != s2 {
		t.Fatal("two runs with the same seed differ")
	}
	opts.Seed = 8
	if j3, _, _ := render(runT(t, opts)); j3 == j1 {
		t.Fatal("runs with different seeds gave the same JSON")
	}
	for _, key := range []string{`"scenario": "outage"`, `"seed": 7`, `"policies": [`, `"name": "sluice-default"`,
		`"offered"`, `"upstream_calls"`, `"amplification"`, `"amplification_incident"`, `"goodput"`,
		`"success_rate"`, `"p50_ms"`, `"p99_ms"`, `"p999_ms"`, `"recovery_s"`} {
		if !strings.Contains(j1, key) {
			t.Errorf("JSON lacks %s", key)
		}
	}
}

func TestOutage(t *testing.T) {
	t.Parallel()
	rep := runT(t, Options{Scenario: ScenarioOutage, Seed: 1, Clients: 2,
		Policies: []string{PolicyNaive, PolicyNoBudgetExponential, PolicySluiceDefault}})
	t.Log("\n" + table(rep))
	def := result(t, rep, PolicySluiceDefault, "")
	if def.AmplificationIncident > 1.1 {
		t.Errorf("sluice-default: amplification during the outage %v, want at most 1.1", def.AmplificationIncident)
	}
	// Recovery within the breaker's open time plus one probe round (a
	// probe takes well under a second; the series has 1 s buckets).
	sp, _ := builtinSpec(PolicySluiceDefault)
	bound := (sp.breaker.OpenFor + 2*time.Second).Seconds()
	if def.RecoveryS < 0 || def.RecoveryS > bound {
		t.Errorf("sluice-default: recovery %v s after the outage, want within %v s", def.RecoveryS, bound)
	}
	if a := result(t, rep, PolicyNaive, "").AmplificationIncident; a < 3.9 || a > 4 {
		t.Errorf("naive: amplification during the outage %v, want about 4", a)
	}
	orig := result(t, rep, PolicyNoBudgetExponential, "")
	if orig.UpstreamCalls == 0 || orig.Rejected == 0 {
		t.Errorf("no-budget-exponential: %d upstream calls, %d rejected; its breaker should have opened", orig.UpstreamCalls, orig.Rejected)
	}
}

func TestBrownout(t *testing.T) {
	t.Parallel()
	rep := runT(t, Options{Scenario: ScenarioBrownout, Seed: 1, Clients: 2, Policies: []string{PolicyNone, PolicySluiceDefault}})
	inc := rep.Incidents[0]
	failed := func(r *Result) float64 { return float64(r.Offered) * (1 - r.SuccessRate) }
	var during int64
	for _, n := range result(t, rep, PolicyNone, "").Series.Offered[int(inc.StartS):int(inc.EndS)] {
		during += n
	}
	// With 10 % of calls failing at random, at least 99 % still succeed:
	// nearly every failure is retried within the budget.
	if f := failed(result(t, rep, PolicySluiceDefault, "")); f > 0.01*float64(during) {
		t.Errorf("sluice-default: %.0f calls failed, more than 1%% of the %d offered during the brownout", f, during)
	}
	if f := failed(result(t, rep, PolicyNone, "")); f < 0.08*float64(during) || f > 0.12*float64(during) {
		t.Errorf("none: %.0f calls failed of %d offered during the brownout, want about 10%%", f, during)
	}
}

func TestLatency(t *testing.T) {
	t.Parallel()
	rep := runT(t, Options{Scenario: ScenarioLatency, Seed: 1, Clients: 1, Policies: []string{PolicyNone, PolicySluiceDefault}})
	none, def := result(t, rep, PolicyNone, ""), result(t, rep, PolicySluiceDefault, "")
	if none.Wasted == 0 || none.P99ms < 999 {
		t.Errorf("none: %d wasted answers, p99 %v ms; the latency spike should push attempts past the 1 s timeout", none.Wasted, none.P99ms)
	}
	if def.SuccessRate <= none.SuccessRate {
		t.Errorf("sluice-default succeeds %v, no retry %v: retrying timed-out attempts should help", def.SuccessRate, none.SuccessRate)
	}
}

func TestMetastable(t *testing.T) {
	t.Parallel()
	rep := runT(t, Options{Scenario: ScenarioMetastable, Seed: 1, Clients: 2, Policies: []string{PolicyNaive, PolicySluiceDefault}})
	t.Log("\n" + table(rep))
	if len(rep.Incidents) != 2 {
		t.Fatalf("incidents %v, want the spike and the outage", rep.Incidents)
	}
	for _, inc := range rep.Incidents {
		def := result(t, rep, PolicySluiceDefault, inc.Case)
		bound := 2 * (inc.EndS - inc.StartS)
		if def.RecoveryS < 0 || def.RecoveryS > bound {
			t.Errorf("%s: sluice-default recovered %v s after the trigger, want within %v s", inc.Case, def.RecoveryS, bound)
		}
		naive := result(t, rep, PolicyNaive, inc.Case)
		if naive.RecoveryS != -1 {
			t.Errorf("%s: naive recovered after %v s; its retries should sustain the overload", inc.Case, naive.RecoveryS)
		}
		// Still collapsed at the end: under half the offered calls succeed.
		n := len(naive.Series.Offered)
		var off, good int64
		for i := n - 30; i < n; i++ {
			off += naive.Series.Offered[i]
			good += naive.Series.Goodput[i]
		}
		if float64(good) > 0.5*float64(off) {
			t.Errorf("%s: naive serves %d of %d calls in the last 30 s; want it still collapsed", inc.Case, good, off)
		}
		if naive.Wasted <= def.Wasted {
			t.Errorf("%s: naive wasted %d answers, sluice-default %d", inc.Case, naive.Wasted, def.Wasted)
		}
	}
}

func TestLayers(t *testing.T) {
	t.Parallel()
	rep := runT(t, Options{Scenario: ScenarioLayers, Seed: 1, Clients: 1, Policies: []string{PolicyNaive, PolicySluiceDefault}})
	t.Log("\n" + table(rep))
	def := result(t, rep, PolicySluiceDefault, "")
	if def.AmplificationIncident > 1.3 {
		t.Errorf("sluice-default at every layer: the bottom sees %v× the logical calls during the outage, want at most 1.3", def.AmplificationIncident)
	}
	naive := result(t, rep, PolicyNaive, "")
	if naive.AmplificationIncident < 60 || naive.AmplificationIncident > 64 {
		t.Errorf("naive at every layer: the bottom sees %v× during the outage, want nearly 4×4×4 = 64", naive.AmplificationIncident)
	}
	if len(naive.LayerCalls) != 3 || naive.LayerCalls[2] != naive.UpstreamCalls ||
		!(naive.LayerCalls[0] < naive.LayerCalls[1] && naive.LayerCalls[1] < naive.LayerCalls[2]) {
		t.Errorf("naive: calls per layer %v, want three growing counts ending with %d", naive.LayerCalls, naive.UpstreamCalls)
	}
}

// The contention experiment of Brooker (2015) at 100 clients: full jitter
// makes at most 0.45× the calls and takes at most 0.10× the time of
// exponential backoff without jitter; equal jitter is slower than full;
// decorrelated jitter is a little faster but makes more calls.
func TestBackoffPublishedExperiment(t *testing.T) {
	t.Parallel()
	rep := runT(t, Options{Scenario: ScenarioBackoff, Seed: 1, Clients: 100, Trials: 40})
	t.Log("\n" + table(rep))
	s := rep.Summary
	if s == nil {
		t.Fatal("no summary at 100 clients")
	}
	if s.FullCallsRatio > 0.45 || s.FullCompletionRatio > 0.10 {
		t.Errorf("full jitter vs exponential: %.3f× the calls, %.3f× the time; want at most 0.45× and 0.10×", s.FullCallsRatio, s.FullCompletionRatio)
	}
	p := func(name string) *BackoffPoint {
		b := rep.Strategy(name)
		if b == nil || b.Point(100) == nil {
			t.Fatalf("no point for %s at 100 clients", name)
		}
		return b.Point(100)
	}
	none, exp, full, equal, dec := p(StrategyNone), p(StrategyExponential), p(StrategyFull), p(StrategyEqual), p(StrategyDecorrelated)
	if equal.CompletionMs <= full.CompletionMs {
		t.Errorf("equal jitter %v ms, full %v ms: want equal slower", equal.CompletionMs, full.CompletionMs)
	}
	if dec.CompletionMs >= full.CompletionMs || dec.Calls <= full.Calls {
		t.Errorf("decorrelated %v ms / %v calls, full %v ms / %v calls: want decorrelated faster with more calls",
			dec.CompletionMs, dec.Calls, full.CompletionMs, full.Calls)
	}
	if none.Calls <= exp.Calls || exp.CompletionMs <= none.CompletionMs {
		t.Errorf("no backoff %v calls / %v ms, exponential %v / %v: want more calls without backoff, more time with it",
			none.Calls, none.CompletionMs, exp.Calls, exp.CompletionMs)
	}
}

func TestBackoffSweep(t *testing.T) {
	t.Parallel()
	// A small sweep: every client count of the published experiment, two
	// trials each, just to see that the whole sweep runs and is ordered.
	rep := runT(t, Options{Scenario: ScenarioBackoff, Seed: 2, Trials: 1})
	for _, s := range rep.Backoff {
		if len(s.Points) != 19 || s.Points[0].Clients != 10 || s.Points[18].Clients != 190 {
			t.Fatalf("%s: points %v, want 10 to 190 clients", s.Name, s.Points)
		}
	}
	none := rep.Strategy(StrategyNone)
	if !(none.Points[18].Calls > none.Points[0].Calls*20) {
		t.Errorf("no backoff: %v calls at 190 clients vs %v at 10; contention should grow about quadratically", none.Points[18].Calls, none.Points[0].Calls)
	}
}

func TestClosedLoop(t *testing.T) {
	t.Parallel()
	rep := runT(t, Options{Scenario: ScenarioOutage, Seed: 1, Clients: 1, ClosedLoop: true, Policies: []string{PolicyNaive}})
	if !rep.ClosedLoop || !strings.Contains(rep.Description, "closed-loop") {
		t.Errorf("report does not say closed loop: %q", rep.Description)
	}
	r := result(t, rep, PolicyNaive, "")
	// Healthy, a client's users offer about 50 calls/s; failing fast during
	// the outage they offer more.
	if perS := float64(r.Series.Offered[30]+r.Series.Offered[31]+r.Series.Offered[32]) / 3; perS < 35 || perS > 65 {
		t.Errorf("closed loop offers %v calls/s while healthy, want about 50", perS)
	}
}

func TestRunErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cases := []struct {
		opts Options
		want string
	}{
		{Options{Scenario: "bogus"}, `unknown scenario "bogus"`},
		{Options{Scenario: ScenarioOutage, Clients: -1}, "Options.Clients must be >= 0"},
		{Options{Scenario: ScenarioBackoff, Trials: -1}, "Options.Trials must be >= 0"},
		{Options{Scenario: ScenarioOutage, Policies: []string{"bogus"}}, `unknown policy "bogus"`},
		{Options{Scenario: ScenarioOutage, PolicyFiles: []string{"testdata/nonexistent.yaml"}}, "nonexistent.yaml"},
	}
	for _, c := range cases {
		if _, err := Run(ctx, c.opts); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Run(%+v): err = %v, want one containing %q", c.opts, err, c.want)
		}
	}
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	for _, sc := range []string{ScenarioOutage, ScenarioBackoff} {
		if _, err := Run(canceled, Options{Scenario: sc, Clients: 1, Trials: 1}); !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a canceled context: err = %v", sc, err)
		}
	}
}

func TestProgress(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	runT(t, Options{Scenario: ScenarioBackoff, Clients: 10, Trials: 1, Progress: &buf})
	want := "sim backoff: 0/1 10 clients\nsim backoff: 1/1 done\n"
	if buf.String() != want {
		t.Errorf("progress = %q, want %q", buf.String(), want)
	}
}

// The plot is well-formed XML with one line per policy and panel.
func TestWriteSVG(t *testing.T) {
	t.Parallel()
	for _, rep := range []*Report{
		runT(t, Options{Scenario: ScenarioMetastable, Seed: 1, Clients: 1, Policies: []string{PolicyNone}}),
		runT(t, Options{Scenario: ScenarioBackoff, Seed: 1, Clients: 10, Trials: 2}),
	} {
		var buf bytes.Buffer
		if err := rep.WriteSVG(&buf); err != nil {
			t.Fatal(err)
		}
		dec := xml.NewDecoder(&buf)
		lines := 0
		for {
			tok, err := dec.Token()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("%s: SVG is not well-formed: %v", rep.Scenario, err)
			}
			if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "polyline" {
				lines++
			}
		}
		want := 2 * len(rep.Backoff) // two panels of strategies
		if rep.Backoff == nil {
			want = len(rep.Incidents) * (2*len(rep.Results)/len(rep.Incidents) + 1) // two panels per case, plus the offered line
		}
		if lines != want {
			t.Errorf("%s: %d lines, want %d", rep.Scenario, lines, want)
		}
	}
}

// TestFullSize checks the bounds at the published size: 10 clients, and the
// backoff experiment's whole sweep (10 to 190 clients, 100 trials each). It
// takes a minute or two; set SLUICE_SIM_FULL=1 to run it.
func TestFullSize(t *testing.T) {
	if os.Getenv("SLUICE_SIM_FULL") == "" {
		t.Skip("set SLUICE_SIM_FULL=1 to run the scenarios at full size")
	}
	out := runT(t, Options{Scenario: ScenarioOutage, Seed: 1})
	if a := result(t, out, PolicySluiceDefault, "").AmplificationIncident; a > 1.1 {
		t.Errorf("outage: sluice-default amplification %v during the incident, want at most 1.1", a)
	}
	meta := runT(t, Options{Scenario: ScenarioMetastable, Seed: 1})
	for _, inc := range meta.Incidents {
		if r := result(t, meta, PolicySluiceDefault, inc.Case).RecoveryS; r < 0 || r > 2*(inc.EndS-inc.StartS) {
			t.Errorf("metastable %s: sluice-default recovered after %v s", inc.Case, r)
		}
		if r := result(t, meta, PolicyNaive, inc.Case).RecoveryS; r != -1 {
			t.Errorf("metastable %s: naive recovered after %v s", inc.Case, r)
		}
	}
	lay := runT(t, Options{Scenario: ScenarioLayers, Seed: 1})
	if a := result(t, lay, PolicySluiceDefault, "").AmplificationIncident; a > 1.3 {
		t.Errorf("layers: sluice-default bottom amplification %v, want at most 1.3", a)
	}
	bo := runT(t, Options{Scenario: ScenarioBackoff, Seed: 1})
	if s := bo.Summary; s == nil || s.FullCallsRatio > 0.45 || s.FullCompletionRatio > 0.10 {
		t.Errorf("backoff at 100 clients: %+v, want at most 0.45× and 0.10×", s)
	}
	t.Log("\n" + table(out) + table(meta) + table(lay) + table(bo))
}

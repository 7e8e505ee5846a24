package sim

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
)

// Report is the outcome of one Run: the scenario, its parameters and one
// Result per policy (per policy and case, for scenarios with several
// cases), or, for the backoff experiment, one BackoffResult per strategy.
type Report struct {
	// Scenario and Seed say what was run; the same pair gives the same
	// Report, byte for byte.
	Scenario string
	Seed     uint64
	// Description is a one-line summary of the scenario's model.
	Description string
	// Clients is the number of clients (for backoff, the largest count run).
	Clients int
	// Trials is the number of trials per point of the backoff experiment.
	Trials int
	// ClosedLoop reports whether clients were closed-loop.
	ClosedLoop bool
	// Incidents are the triggers, one per case.
	Incidents []Incident
	// Results holds one entry per policy and case (all scenarios but backoff).
	Results []Result
	// Backoff holds one entry per strategy (the backoff scenario).
	Backoff []BackoffResult
	// Summary compares full jitter with un-jittered exponential backoff at
	// 100 clients (the backoff scenario, when 100 clients were run).
	Summary *BackoffSummary
}

// Incident describes the trigger of one case of a scenario.
type Incident struct {
	Case   string  `json:"case,omitempty"`
	Kind   string  `json:"kind"`
	StartS float64 `json:"start_s"`
	EndS   float64 `json:"end_s"`
	Detail string  `json:"detail"`
	// DurationS is the simulated time of the case, in seconds, not counting
	// the drain that lets the last calls finish.
	DurationS float64 `json:"duration_s"`
}

// Result is what one policy did in one case of a scenario.
type Result struct {
	// Name is the policy's name; Case the scenario's case ("" if it has one).
	Name string `json:"name"`
	Case string `json:"case,omitempty"`
	// Offered is the number of logical calls the clients made, and
	// UpstreamCalls the number of attempts that reached the upstream server
	// (the bottom service, in the layers scenario).
	Offered       int64 `json:"offered"`
	UpstreamCalls int64 `json:"upstream_calls"`
	// Amplification is UpstreamCalls / Offered; AmplificationIncident the
	// same ratio for the calls offered and attempts sent during the
	// incident. AmplificationPeak is the highest ratio over any 5 s
	// window within the incident: what the upstream bore before a breaker
	// (if any) opened.
	Amplification         float64 `json:"amplification"`
	AmplificationIncident float64 `json:"amplification_incident"`
	AmplificationPeak     float64 `json:"amplification_peak"`
	// Goodput is successful calls per second of the run; SuccessRate the
	// share of offered calls that succeeded.
	Goodput     float64 `json:"goodput"`
	SuccessRate float64 `json:"success_rate"`
	// Latency percentiles of every logical call, success or failure: how
	// long callers waited for an answer.
	P50ms  float64 `json:"p50_ms"`
	P99ms  float64 `json:"p99_ms"`
	P999ms float64 `json:"p999_ms"`
	// RecoveryS is the time from the end of the incident until goodput was
	// back within 5 % of the offered rate (over 5 s windows) for good; -1 if
	// it never was before the run ended.
	RecoveryS float64 `json:"recovery_s"`
	// Rejected counts calls that failed because a policy shed them (open
	// breaker, full bulkhead, rate limit, or a "do not retry" answer from
	// the next hop); BudgetRefused retries the retry budget refused; Queued
	// attempts that waited for a bulkhead permit or a rate-limit token.
	Rejected      int64 `json:"rejected"`
	Queued        int64 `json:"queued"`
	BudgetRefused int64 `json:"budget_refused"`
	// Wasted counts answers the upstream computed after the client had given
	// up on the attempt: work done for nothing.
	Wasted int64 `json:"wasted"`
	// LayerCalls is, in the layers scenario, the attempts sent by each
	// layer, top first; the last is UpstreamCalls.
	LayerCalls []int64 `json:"layer_calls,omitempty"`
	// ProbeCalls counts the health checks sent to the upstream (they are
	// in UpstreamCalls and the amplifications too), ProbeCallsIncident
	// those sent during the incident; ChecksPerInterval is the most
	// checks one instance sent within one check interval. Zero for a
	// policy without checks.
	ProbeCalls         int64 `json:"probe_calls,omitempty"`
	ProbeCallsIncident int64 `json:"probe_calls_incident,omitempty"`
	ChecksPerInterval  int   `json:"checks_per_interval,omitempty"`
	// Recovery95S is, in the recovery scenario, the seconds from the end
	// of the incident until the calls arriving succeed again at 95 % (over
	// every 500 ms window of arrivals from then on), at 100 ms resolution;
	// -1 if never before the run ends. GoodputLostS is the calls that
	// failed from the end of the incident to the end of the run, in
	// seconds of the offered rate: the goodput lost after recovery. Both
	// are absent from other scenarios.
	Recovery95S  *float64 `json:"recovery_95_s,omitempty"`
	GoodputLostS *float64 `json:"goodput_lost_s,omitempty"`
	// Series holds per-second counts for plotting.
	Series Series `json:"series"`
}

// Series holds per-bucket counts: calls offered, attempts reaching the
// upstream, and successful calls completed.
type Series struct {
	StepS    float64 `json:"step_s"`
	Offered  []int64 `json:"offered"`
	Upstream []int64 `json:"upstream"`
	Goodput  []int64 `json:"goodput"`
}

// BackoffResult is one strategy of the backoff experiment.
type BackoffResult struct {
	Name   string         `json:"name"`
	Points []BackoffPoint `json:"points"`
}

// BackoffPoint is the mean over the trials at one client count: write calls
// made and time until every client had written.
type BackoffPoint struct {
	Clients      int     `json:"clients"`
	Calls        float64 `json:"calls"`
	CompletionMs float64 `json:"completion_ms"`
}

// BackoffSummary compares full jitter with exponential backoff without
// jitter at one client count, the figures of Brooker (2015).
type BackoffSummary struct {
	Clients int `json:"clients"`
	// FullCallsRatio and FullCompletionRatio are full jitter's calls and
	// completion time divided by those of exponential backoff.
	FullCallsRatio      float64 `json:"full_calls_ratio"`
	FullCompletionRatio float64 `json:"full_completion_ratio"`
}

// Result returns the result for a policy and case, or nil.
func (r *Report) Result(name, caseName string) *Result {
	for i := range r.Results {
		if r.Results[i].Name == name && r.Results[i].Case == caseName {
			return &r.Results[i]
		}
	}
	return nil
}

// Strategy returns the backoff result of a strategy, or nil.
func (r *Report) Strategy(name string) *BackoffResult {
	for i := range r.Backoff {
		if r.Backoff[i].Name == name {
			return &r.Backoff[i]
		}
	}
	return nil
}

// Point returns the point for n clients, or nil.
func (b *BackoffResult) Point(n int) *BackoffPoint {
	for i := range b.Points {
		if b.Points[i].Clients == n {
			return &b.Points[i]
		}
	}
	return nil
}

// jsonReport is the JSON shape: policies holds Results, or BackoffResults
// for the backoff experiment.
type jsonReport struct {
	Scenario    string          `json:"scenario"`
	Seed        uint64          `json:"seed"`
	Description string          `json:"description"`
	Clients     int             `json:"clients"`
	Trials      int             `json:"trials,omitempty"`
	ClosedLoop  bool            `json:"closed_loop,omitempty"`
	Incidents   []Incident      `json:"incidents,omitempty"`
	Policies    any             `json:"policies"`
	Summary     *BackoffSummary `json:"summary,omitempty"`
}

// WriteJSON writes the report as one indented JSON object with scenario,
// seed and policies (see Result and BackoffResult for the fields).
func (r *Report) WriteJSON(w io.Writer) error {
	j := jsonReport{
		Scenario: r.Scenario, Seed: r.Seed, Description: r.Description,
		Clients: r.Clients, Trials: r.Trials, ClosedLoop: r.ClosedLoop,
		Incidents: r.Incidents, Summary: r.Summary,
	}
	if r.Backoff != nil {
		j.Policies = r.Backoff
	} else {
		j.Policies = r.Results
	}
	b, err := json.MarshalIndent(j, "", "  ")
	if err != nil {
		return err
	}
	b = append(compactNumberLists(b), '\n')
	_, err = w.Write(b)
	return err
}

// compactNumberLists puts lists of numbers, which MarshalIndent writes one
// element per line, on one line each: the series stay readable.
func compactNumberLists(b []byte) []byte {
	lines := strings.Split(string(b), "\n")
	out := make([]string, 0, len(lines))
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		if !strings.HasSuffix(line, "[") {
			out = append(out, line)
			continue
		}
		j := i + 1
		var elems []string
		for ; j < len(lines); j++ {
			e := strings.TrimSuffix(strings.TrimSpace(lines[j]), ",")
			if !isNumber(e) {
				break
			}
			elems = append(elems, e)
		}
		closing := ""
		if j < len(lines) {
			closing = strings.TrimSpace(lines[j])
		}
		if len(elems) == 0 || (closing != "]" && closing != "],") {
			out = append(out, line)
			continue
		}
		out = append(out, line+strings.Join(elems, ", ")+closing)
		i = j
	}
	return []byte(strings.Join(out, "\n"))
}

func isNumber(s string) bool {
	_, err := strconv.ParseFloat(s, 64)
	return err == nil && s != ""
}

// WriteTable writes the report as aligned text tables for people.
func (r *Report) WriteTable(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "scenario %s, seed %d: %s\n", r.Scenario, r.Seed, r.Description)
	if r.Backoff != nil {
		r.backoffTable(&b)
	} else {
		r.resultTable(&b)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func (r *Report) resultTable(b *strings.Builder) {
	if r.Scenario == ScenarioRecovery {
		r.recoveryTable(b)
		return
	}
	for _, inc := range r.Incidents {
		b.WriteString("\n")
		if inc.Case != "" {
			fmt.Fprintf(b, "case %s: ", inc.Case)
		}
		fmt.Fprintf(b, "%s from %gs to %gs (%s)\n", inc.Kind, inc.StartS, inc.EndS, inc.Detail)
		tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "policy\toffered\tupstream\tampl\tampl(inc)\tpeak\tgoodput/s\tsuccess\tp50 ms\tp99 ms\tp999 ms\trecovery\trejected\tqueued\tbudget-refused\twasted\t")
		for _, res := range r.Results {
			if res.Case != inc.Case {
				continue
			}
			rec := "never"
			if res.RecoveryS >= 0 {
				rec = strconv.FormatFloat(res.RecoveryS, 'f', 0, 64) + " s"
			}
			fmt.Fprintf(tw, "%s\t%d\t%d\t%.2f\t%.2f\t%.2f\t%.1f\t%.2f%%\t%.1f\t%.1f\t%.1f\t%s\t%d\t%d\t%d\t%d\t\n",
				res.Name, res.Offered, res.UpstreamCalls, res.Amplification, res.AmplificationIncident, res.AmplificationPeak,
				res.Goodput, 100*res.SuccessRate, res.P50ms, res.P99ms, res.P999ms, rec,
				res.Rejected, res.Queued, res.BudgetRefused, res.Wasted)
		}
		tw.Flush()
		for _, res := range r.Results {
			if res.Case == inc.Case && len(res.LayerCalls) > 0 {
				fmt.Fprintf(b, "  %s: attempts per layer, top first: %v\n", res.Name, res.LayerCalls)
			}
		}
	}
}

func (r *Report) backoffTable(b *strings.Builder) {
	b.WriteString("\nmean write calls and completion time (ms) per client count\n")
	tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprint(tw, "clients\t")
	for _, s := range r.Backoff {
		fmt.Fprintf(tw, "%s calls\t%s ms\t", s.Name, s.Name)
	}
	fmt.Fprintln(tw)
	if len(r.Backoff) > 0 {
		for i, p := range r.Backoff[0].Points {
			fmt.Fprintf(tw, "%d\t", p.Clients)
			for _, s := range r.Backoff {
				q := s.Points[i]
				fmt.Fprintf(tw, "%.1f\t%.1f\t", q.Calls, q.CompletionMs)
			}
			fmt.Fprintln(tw)
		}
	}
	tw.Flush()
	if s := r.Summary; s != nil {
		fmt.Fprintf(b, "\nat %d clients, full jitter makes %.3f× the calls and takes %.3f× the time of exponential backoff without jitter\n",
			s.Clients, s.FullCallsRatio, s.FullCompletionRatio)
	}
}

// recoveryTable is the recovery scenario's table: how fast goodput returns
// after the upstream does, beside the load the policy put on it during the
// outage.
func (r *Report) recoveryTable(b *strings.Builder) {
	for _, inc := range r.Incidents {
		fmt.Fprintf(b, "\n%s from %gs to %gs (%s)\n", inc.Kind, inc.StartS, inc.EndS, inc.Detail)
		outage := inc.EndS - inc.StartS
		tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "policy\tback to 95 %\tgoodput lost\tampl(outage)\tchecks/s\tchecks per instance per interval\tsuccess\trejected\t")
		for _, res := range r.Results {
			back, lost := "never", "-"
			if res.Recovery95S != nil && *res.Recovery95S >= 0 {
				back = strconv.FormatFloat(*res.Recovery95S, 'f', 1, 64) + " s"
			}
			if res.GoodputLostS != nil {
				lost = strconv.FormatFloat(*res.GoodputLostS, 'f', 2, 64) + " s"
			}
			perInterval := "-"
			if res.ProbeCalls > 0 {
				perInterval = strconv.Itoa(res.ChecksPerInterval)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%.3f\t%.1f\t%s\t%.2f%%\t%d\t\n",
				res.Name, back, lost, res.AmplificationIncident, float64(res.ProbeCallsIncident)/outage,
				perInterval, 100*res.SuccessRate, res.Rejected)
		}
		tw.Flush()
	}
}

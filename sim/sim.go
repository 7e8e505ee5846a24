package sim

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
)

// The scenarios.
const (
	ScenarioOutage     = "outage"
	ScenarioBrownout   = "brownout"
	ScenarioLatency    = "latency"
	ScenarioMetastable = "metastable"
	ScenarioLayers     = "layers"
	ScenarioBackoff    = "backoff"
	ScenarioRecovery   = "recovery"
)

// Scenarios returns the names of the scenarios Run knows.
func Scenarios() []string {
	return []string{ScenarioOutage, ScenarioBrownout, ScenarioLatency, ScenarioMetastable, ScenarioLayers, ScenarioBackoff, ScenarioRecovery}
}

// Options says what Run simulates. The zero value of every field but
// Scenario has a meaning.
type Options struct {
	// Scenario is one of Scenarios().
	Scenario string

	// Seed seeds every random stream of the run. The same Scenario, Seed
	// and Options give the same Report, byte for byte.
	Seed uint64

	// Policies names the built-in policies to compare (BuiltinPolicies).
	// If empty, all of them; for the recovery scenario, naive,
	// sluice-default and PolicySluiceDefaultChecks, which may also be
	// named here for any scenario. Ignored by the backoff scenario, which
	// compares backoff strategies.
	Policies []string

	// PolicyFiles are configuration files in the sidecar's YAML schema;
	// every policy they define is simulated too, under its name. A file may
	// hold only a policies section. Ignored by backoff.
	PolicyFiles []string

	// Clients is the number of clients. If zero, 10 (each with its own
	// policy instance, offering 50 calls/s; the upstream's capacity grows
	// with it, 100 calls/s per client). For backoff it picks one client
	// count instead of the sweep of 10 to 190.
	Clients int

	// Trials is the number of trials per client count of the backoff
	// experiment. If zero, 100.
	Trials int

	// ClosedLoop makes each client a fixed set of users who each wait for
	// their call's answer, then think, instead of open-loop Poisson
	// arrivals. Ignored by backoff, whose clients are closed-loop already.
	ClosedLoop bool

	// Progress, if not nil, receives a progress line while the run goes on
	// (rewritten in place on a terminal).
	Progress io.Writer
}

// Run simulates opts.Scenario for each policy and returns the report. It
// returns early with ctx's error if ctx ends. Run is deterministic: it uses
// virtual time and seeded random streams only.
func Run(ctx context.Context, opts Options) (*Report, error) {
	if !slices.Contains(Scenarios(), opts.Scenario) {
		return nil, fmt.Errorf("sim: unknown scenario %q (want one of %s)", opts.Scenario, strings.Join(Scenarios(), ", "))
	}
	if opts.Clients < 0 {
		return nil, fmt.Errorf("sim: Options.Clients must be >= 0, got %d", opts.Clients)
	}
	if opts.Trials < 0 {
		return nil, fmt.Errorf("sim: Options.Trials must be >= 0, got %d", opts.Trials)
	}
	p := newProgress(opts.Progress, opts.Scenario)
	defer p.close()
	if opts.Scenario == ScenarioBackoff {
		return runBackoff(ctx, opts, p)
	}
	names := opts.Policies
	if len(names) == 0 && opts.Scenario == ScenarioRecovery {
		names = recoveryPolicies()
	}
	specs, err := resolvePolicies(names, opts.PolicyFiles)
	if err != nil {
		return nil, err
	}
	return runIncident(ctx, opts, specs, p)
}

// progress writes "sim outage: 3/8 sluice-default" lines, in place on a
// terminal.
type progress struct {
	w     io.Writer
	tty   bool
	label string
	width int
}

func newProgress(w io.Writer, label string) *progress {
	p := &progress{w: w, label: label}
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			p.tty = true
		}
	}
	return p
}

func (p *progress) update(done, total int, what string) {
	if p.w == nil {
		return
	}
	line := fmt.Sprintf("sim %s: %d/%d %s", p.label, done, total, what)
	if p.tty {
		pad := max(p.width-len(line), 0)
		p.width = len(line)
		fmt.Fprintf(p.w, "\r%s%s", line, strings.Repeat(" ", pad))
		return
	}
	fmt.Fprintln(p.w, line)
}

func (p *progress) close() {
	if p.w != nil && p.tty && p.width > 0 {
		fmt.Fprintln(p.w)
	}
}

package main

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/sluice-go/sluice/sim"
)

// simOptions are the inputs of `sluice sim`.
type simOptions struct {
	scenario    string
	seed        uint64
	policies    []string
	policyFiles []string
	clients     int
	trials      int
	closedLoop  bool
	asJSON      bool
	plot        string
	quiet       bool
}

func newSimCommand(o *simOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "sim --scenario NAME [--seed N] [--policy FILE]... [--json] [--plot FILE]",
		Short: "Simulate policies against a failing upstream, in virtual time",
		Long: `Sim runs a deterministic discrete-event simulation that drives sluice's own
retry, breaker, bulkhead and rate-limit state machines in virtual time, and
reports what each policy does to a struggling upstream: amplification
(upstream calls per offered call, overall and during the incident), goodput,
success rate, latency percentiles, time to recover, and the calls rejected,
queued and refused by the retry budget. The same scenario and seed give the
same numbers, byte for byte.

Scenarios:
  outage      a full outage window, then recovery
  brownout    a share of calls fail for a while
  latency     a latency spike
  metastable  overload where timed-out work is still done (a 2x spike, a 30 s outage)
  layers      three services in a chain, the bottom one failing
  backoff     the contention experiment of Brooker (2015): backoff and jitter strategies
  recovery    the outage, measured as goodput lost after the upstream recovers,
              with and without health checks that put an open breaker on trial

Policies compared: the built-in none, naive, no-budget-exponential (5
attempts, exponential backoff with jitter, no retry budget) and
sluice-default (--policies picks some), plus every policy of each --policy
file, written in the sidecar's configuration schema. The recovery scenario
compares naive, sluice-default and sluice-default-checks (the default policy
with a health check every 200 ms per instance) unless --policies says
otherwise.`,
		Example: `  sluice sim --scenario outage --plot outage.svg
  sluice sim --scenario outage --policy my-sluice.yaml --json
  sluice sim --scenario backoff --clients 100 --trials 20
  sluice sim --scenario recovery`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !slices.Contains(sim.Scenarios(), o.scenario) {
				return usageError{fmt.Errorf("--scenario %q: want one of %s", o.scenario, strings.Join(sim.Scenarios(), ", "))}
			}
			if err := o.check(cmd.Flags().Changed); err != nil {
				return usageError{err}
			}
			return o.run(cmd)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.scenario, "scenario", "", "the `NAME` of the scenario: "+strings.Join(sim.Scenarios(), ", "))
	f.Uint64Var(&o.seed, "seed", 1, "seed of every random stream; the same seed gives the same report")
	f.StringSliceVar(&o.policies, "policies", nil, "built-in `NAMES` to compare (default all: "+strings.Join(sim.BuiltinPolicies(), ", ")+")")
	f.StringArrayVar(&o.policyFiles, "policy", nil, "a configuration `FILE` whose policies are simulated too (repeatable)")
	f.IntVar(&o.clients, "clients", 0, "number of clients, at least 1 (default 10; for backoff, one client count instead of the sweep)")
	f.IntVar(&o.trials, "trials", 0, "trials per client count of the backoff experiment, at least 1 (default 100)")
	f.BoolVar(&o.closedLoop, "closed-loop", false, "closed-loop clients (each waits for its answer, then thinks) instead of Poisson arrivals")
	f.BoolVar(&o.asJSON, "json", false, "print the report as JSON instead of tables")
	f.StringVar(&o.plot, "plot", "", "write an SVG plot of upstream load and goodput over time to `FILE`")
	f.BoolVarP(&o.quiet, "quiet", "q", false, "no progress line on stderr")
	_ = cmd.MarkFlagRequired("scenario")
	_ = cmd.MarkFlagFilename("policy", "yaml", "yml")
	_ = cmd.MarkFlagFilename("plot", "svg")
	_ = cmd.RegisterFlagCompletionFunc("scenario", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return sim.Scenarios(), cobra.ShellCompDirectiveNoFileComp
	})
	_ = cmd.RegisterFlagCompletionFunc("policies", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return append(sim.BuiltinPolicies(), sim.PolicySluiceDefaultChecks), cobra.ShellCompDirectiveNoFileComp
	})
	return cmd
}

// check refuses a flag given a value that would silently stand for its
// default: sim.Options reads 0 clients or trials, no policies and no plot
// file as "the default", which a user who typed --clients 0 did not ask for.
func (o *simOptions) check(changed func(flag string) bool) error {
	switch {
	case changed("clients") && o.clients < 1:
		return fmt.Errorf("--clients must be at least 1, got %d", o.clients)
	case changed("trials") && o.trials < 1:
		return fmt.Errorf("--trials must be at least 1, got %d", o.trials)
	case changed("policies") && len(o.policies) == 0:
		return fmt.Errorf("--policies names no policy: want one or more of %s, or leave it out for all", strings.Join(sim.BuiltinPolicies(), ", "))
	case changed("plot") && o.plot == "":
		return errors.New("--plot needs a file name")
	}
	return nil
}

// run simulates and prints the report. The plot file is created first, so
// that a path that cannot be written fails before a long simulation; it is
// removed again if the run fails.
func (o *simOptions) run(cmd *cobra.Command) (err error) {
	var plot *os.File
	if o.plot != "" {
		if plot, err = os.Create(o.plot); err != nil {
			return fmt.Errorf("--plot: %w", err)
		}
		defer func() {
			if cerr := plot.Close(); err == nil && cerr != nil {
				err = fmt.Errorf("--plot: %w", cerr)
			}
			if err != nil {
				_ = os.Remove(o.plot)
			}
		}()
	}
	opts := sim.Options{
		Scenario:    o.scenario,
		Seed:        o.seed,
		Policies:    o.policies,
		PolicyFiles: o.policyFiles,
		Clients:     o.clients,
		Trials:      o.trials,
		ClosedLoop:  o.closedLoop,
	}
	if !o.quiet {
		opts.Progress = cmd.ErrOrStderr()
	}
	rep, err := sim.Run(cmd.Context(), opts)
	if err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	if o.asJSON {
		err = rep.WriteJSON(out)
	} else {
		err = rep.WriteTable(out)
	}
	if err != nil {
		return err
	}
	if plot != nil {
		if err := rep.WriteSVG(plot); err != nil {
			return fmt.Errorf("--plot: %w", err)
		}
		if !o.quiet {
			fmt.Fprintf(cmd.ErrOrStderr(), "plot written to %s\n", o.plot)
		}
	}
	return nil
}

package sim_test

import (
	"context"
	"fmt"

	"github.com/sluice-go/sluice/sim"
)

// Compare naive retries with sluice's defaults during a full outage of the
// upstream: how many attempts reach it for each call the clients make.
func ExampleRun() {
	rep, err := sim.Run(context.Background(), sim.Options{
		Scenario: sim.ScenarioOutage,
		Seed:     1,
		Clients:  1, // a small run; the default is 10
		Policies: []string{sim.PolicyNaive, sim.PolicySluiceDefault},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, r := range rep.Results {
		fmt.Printf("%s: %.1f attempts per call during the outage, at most 1.1: %t\n",
			r.Name, r.AmplificationIncident, r.AmplificationIncident <= 1.1)
	}
	// Output:
	// naive: 4.0 attempts per call during the outage, at most 1.1: false
	// sluice-default: 0.2 attempts per call during the outage, at most 1.1: true
}

// The contention experiment of Brooker's "Exponential Backoff And Jitter"
// at one client count.
func ExampleRun_backoff() {
	rep, err := sim.Run(context.Background(), sim.Options{Scenario: sim.ScenarioBackoff, Seed: 1, Clients: 100, Trials: 10})
	if err != nil {
		fmt.Println(err)
		return
	}
	s := rep.Summary
	fmt.Printf("full jitter: %.2fx the calls, %.2fx the time of exponential backoff\n", s.FullCallsRatio, s.FullCompletionRatio)
	// Output:
	// full jitter: 0.43x the calls, 0.07x the time of exponential backoff
}

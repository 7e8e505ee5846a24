// Package demo is `sluice demo`, the quick start: a flaky upstream whose
// schedule (healthy, outage, recovery, brownout, latency spike) is scaled
// to the run, the sidecar in front of it, and load, all on loopback ports,
// with live progress and a summary that tallies the dead-letter queue.
//
// It is a package of its own so that the command stays a thin set of flags
// and the demo's parts (upstream, load, view) read and test on their own.
// The command hands it `sluice serve` (Options.Serve), so the demo runs the
// same server a user runs.
package demo

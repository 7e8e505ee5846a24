package sim

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/sluice-go/sluice/retry"
)

// The backoff experiment of Brooker, "Exponential Backoff And Jitter" (AWS
// Architecture Blog, 2015): N clients race to update one row under
// optimistic concurrency. Each reads the row's version, then writes
// conditionally on it; a write that finds another version fails, and the
// client backs off before reading again. Every message crosses the network
// in |Normal(10 ms, 2 ms)|. Backoff waits come from retry.Config.Delay, the
// retry policy's own computation, with base 5 ms and cap 2 s.
const (
	occNetMean = 10 * time.Millisecond
	occNetSD   = 2 * time.Millisecond
	occBase    = 5 * time.Millisecond
	occCap     = 2 * time.Second
)

// Backoff strategy names, as listed in the report.
const (
	StrategyNone         = "no-backoff"
	StrategyExponential  = "exponential"
	StrategyFull         = "full-jitter"
	StrategyEqual        = "equal-jitter"
	StrategyDecorrelated = "decorrelated-jitter"
)

type strategy struct {
	name string
	cfg  *retry.Config // nil: retry at once
}

func backoffStrategies() []strategy {
	exp := retry.Exponential(2*occBase, 2, occCap)
	return []strategy{
		{StrategyNone, nil},
		{StrategyExponential, &retry.Config{Backoff: exp, Jitter: retry.NoJitter}},
		{StrategyFull, &retry.Config{Backoff: exp, Jitter: retry.FullJitter}},
		{StrategyEqual, &retry.Config{Backoff: exp, Jitter: retry.EqualJitter}},
		{StrategyDecorrelated, &retry.Config{Backoff: retry.Decorrelated(occBase, occCap)}},
	}
}

// backoffClientCounts is the sweep of the published experiment.
func backoffClientCounts() []int {
	var ns []int
	for n := 10; n <= 190; n += 10 {
		ns = append(ns, n)
	}
	return ns
}

const summaryClients = 100

func runBackoff(ctx context.Context, opts Options, p *progress) (*Report, error) {
	trials := opts.Trials
	if trials == 0 {
		trials = 100
	}
	counts := backoffClientCounts()
	if opts.Clients > 0 {
		counts = []int{opts.Clients}
	}
	strats := backoffStrategies()
	rep := &Report{
		Scenario: ScenarioBackoff,
		Seed:     opts.Seed,
		Description: fmt.Sprintf("clients race to update one row with optimistic concurrency (read, then conditional write); network |N(%v, %v)| per message; backoff base %v, cap %v; mean of %d trials per point",
			occNetMean, occNetSD, occBase, occCap, trials),
		Clients: counts[len(counts)-1],
		Trials:  trials,
		Backoff: make([]BackoffResult, len(strats)),
	}
	for i, s := range strats {
		rep.Backoff[i] = BackoffResult{Name: s.name, Points: []BackoffPoint{}}
	}
	for ci, n := range counts {
		p.update(ci, len(counts), fmt.Sprintf("%d clients", n))
		for si, s := range strats {
			var calls, end float64
			for trial := range trials {
				if ctx.Err() != nil {
					return nil, ctx.Err()
				}
				// The same stream for every strategy at one trial: common
				// random numbers make the comparison sharper.
				rng := newRand(opts.Seed, uint64(n), uint64(trial))
				c, t := occTrial(n, s, rng)
				calls += float64(c)
				end += float64(t)
			}
			rep.Backoff[si].Points = append(rep.Backoff[si].Points, BackoffPoint{
				Clients:      n,
				Calls:        round(calls/float64(trials), 2),
				CompletionMs: round(end/float64(trials)/1e6, 2),
			})
		}
	}
	p.update(len(counts), len(counts), "done")
	exp, full := rep.Strategy(StrategyExponential).Point(summaryClients), rep.Strategy(StrategyFull).Point(summaryClients)
	if exp != nil && full != nil && exp.Calls > 0 && exp.CompletionMs > 0 {
		rep.Summary = &BackoffSummary{
			Clients:             summaryClients,
			FullCallsRatio:      round(full.Calls/exp.Calls, 4),
			FullCompletionRatio: round(full.CompletionMs/exp.CompletionMs, 4),
		}
	}
	return rep, nil
}

// occ events.
const (
	occReadAtServer uint8 = iota
	occReadReply
	occWriteAtServer
	occWriteReply
)

type occEvent struct {
	kind    uint8
	ok      bool
	client  int32
	version int64
}

type occClient struct {
	attempt int
	prevRaw time.Duration
}

// occTrial runs one trial with n clients and returns the write calls made
// and the time the last client learned its write had succeeded.
func occTrial(n int, s strategy, rng *rand.Rand) (calls int64, end int64) {
	var q eventQueue[occEvent]
	net := func() int64 { return absNormal(rng, occNetMean, occNetSD) }
	clients := make([]occClient, n)
	for i := range n {
		q.push(net(), occEvent{kind: occReadAtServer, client: int32(i)})
	}
	var version int64
	for q.len() > 0 {
		now, ev := q.pop()
		end = now
		switch ev.kind {
		case occReadAtServer:
			q.push(now+net(), occEvent{kind: occReadReply, client: ev.client, version: version})
		case occReadReply:
			q.push(now+net(), occEvent{kind: occWriteAtServer, client: ev.client, version: ev.version})
		case occWriteAtServer:
			calls++
			ok := ev.version == version
			if ok {
				version++
			}
			q.push(now+net(), occEvent{kind: occWriteReply, client: ev.client, ok: ok})
		case occWriteReply:
			if ev.ok {
				continue
			}
			c := &clients[ev.client]
			c.attempt++
			var wait time.Duration
			if s.cfg != nil {
				wait, c.prevRaw = s.cfg.Delay(c.attempt, c.prevRaw, rng)
			}
			q.push(now+net()+int64(wait), occEvent{kind: occReadAtServer, client: ev.client})
		}
	}
	return calls, end
}

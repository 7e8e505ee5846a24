package pool

import (
	"time"

	"github.com/sluice-go/sluice/breaker"
)

// Stats is a snapshot of a pool.
type Stats struct {
	// Balancer is the configured balancer.
	Balancer Balancer
	// Out is the number of replicas out of rotation (ejected or down, on
	// trial included), and MaxEjected the most that ejection may take out.
	Out, MaxEjected int
	// Replicas are the replicas in configuration order.
	Replicas []ReplicaStats
}

// ReplicaStats is a snapshot of one replica.
type ReplicaStats struct {
	Addr   string
	Weight int
	// Outstanding is the requests picked and not yet done.
	Outstanding int64
	// Latency is the peak-EWMA latency estimate.
	Latency time.Duration
	// Out says the replica is out of rotation: ejected by its traffic or
	// down by its checks. Down says the checks marked it down. Trial says
	// its ejection has ended and it takes trial requests.
	Out, Down, Trial bool
	// Ejections is the multiplier of its next ejection time, less one:
	// ejections not yet forgiven.
	Ejections int
	// EjectionsTotal counts the times it went out of rotation (trial
	// failures included); Capped the ejections MaxEjectionPercent refused.
	EjectionsTotal, Capped int64
	// ConsecutiveFailures is the current run of failed attempts.
	ConsecutiveFailures int64
	// LastCheckError is the latest failed health check's error, "" if none.
	LastCheckError string
	// Breaker is the replica's breaker: its state is the replica's
	// ejection state.
	Breaker breaker.Stats
}

// StatsAt returns a snapshot of the pool at now, applying the changes due
// by then (a trial given up after the breaker's HalfOpenMaxWait).
func (p *Pool) StatsAt(now time.Time) Stats {
	st := Stats{Balancer: p.set.cfg.Balancer, Out: int(p.ejected.Load()), MaxEjected: int(p.set.maxEjected)}
	ns := now.UnixNano()
	for _, r := range p.replicas {
		bs := r.br.StatsAt(now) // applies the breaker's timed changes
		if r.reports.Load() {
			r.settleAt(now)
			bs = r.br.StatsAt(now)
		}
		r.mu.Lock()
		rs := ReplicaStats{
			Addr: r.addr, Weight: r.weight, Outstanding: r.outstanding.Load(),
			Latency: time.Duration(r.latencyAt(ns)),
			Out:     r.out.Load(), Down: r.down,
			Ejections: r.ejections, EjectionsTotal: r.ejectTotal, Capped: r.capped,
			ConsecutiveFailures: r.consecutive.Load(),
		}
		rs.Trial = rs.Out && ns >= r.trialAt.Load()
		if r.lastErr != nil {
			rs.LastCheckError = r.lastErr.Error()
		}
		r.mu.Unlock()
		rs.Breaker = bs
		st.Replicas = append(st.Replicas, rs)
	}
	return st
}

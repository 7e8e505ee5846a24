package sluiceredis

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// maxInFlight is how many pipelines one Limiter keeps on the wire at once.
// Two let the client gather the next batch while the server runs one; more
// only split the same callers into smaller batches.
const maxInFlight = 2

// request is one decision waiting for its round trip: the script's
// arguments and, once done is closed, its reply.
type request struct {
	n     int
	bound int64 // longest acceptable wait in µs, -1 for none
	extra int   // lease tokens asked for beyond n
	ret   int   // unused lease tokens handed back before the take

	reply []any
	err   error
	done  chan struct{}
}

// batcher gathers the Take calls that arrive while a round trip is on the
// wire and sends them together, one pipeline of takeScript calls per round
// trip. There is no goroutine of its own: the first caller to find a free
// pipeline slot sends its batch itself, and if callers queued behind it, a
// goroutine sends their batches one after another until none are left.
// Each call in a pipeline is its own script run, atomic on the server, so
// batching changes no decision.
type batcher struct {
	l        *Limiter
	single   bool // one script call per round trip: the benchmarks' baseline
	mu       sync.Mutex
	pending  []*request
	inFlight int
}

// do sends r (in a batch with whatever else is pending) and waits for its
// reply, at most until wait ends or ctx is done. It returns the reply, the
// round trip's error, or errWaitTimeout / the context's error if it gave up
// first (the decision may still be made on the server: its tokens are lost,
// as with a timed-out single call).
func (b *batcher) do(ctx context.Context, r *request, wait time.Duration) ([]any, error) {
	r.done = make(chan struct{})
	if b.single {
		b.flush(ctx, r, []*request{r})
		return r.reply, r.err
	}
	b.mu.Lock()
	b.pending = append(b.pending, r)
	lead := b.inFlight < maxInFlight
	if lead {
		b.inFlight++
	}
	b.mu.Unlock()
	if lead {
		b.flush(ctx, r, b.take())
		b.handOff()
	}
	select {
	case <-r.done:
		return r.reply, r.err
	default:
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-r.done:
		return r.reply, r.err
	case <-t.C:
		b.abandon(r)
		return nil, errWaitTimeout
	case <-ctx.Done():
		b.abandon(r)
		return nil, context.Cause(ctx)
	}
}

// errWaitTimeout is what do returns when the reply did not come within the
// Limiter's Timeout.
var errWaitTimeout = errors.New("no reply within the timeout")

// take removes and returns every pending request.
func (b *batcher) take() []*request {
	b.mu.Lock()
	defer b.mu.Unlock()
	batch := b.pending
	b.pending = nil
	return batch
}

// handOff is called by a caller whose batch is done: if callers queued
// meanwhile, a goroutine sends their batches (so that the caller returns
// now), else the pipeline slot is freed.
func (b *batcher) handOff() {
	b.mu.Lock()
	if len(b.pending) == 0 {
		b.inFlight--
		b.mu.Unlock()
		return
	}
	b.mu.Unlock()
	go func() {
		for {
			b.mu.Lock()
			if len(b.pending) == 0 {
				b.inFlight--
				b.mu.Unlock()
				return
			}
			batch := b.pending
			b.pending = nil
			b.mu.Unlock()
			b.flush(context.Background(), nil, batch)
		}
	}()
}

// abandon removes r from the pending batch if it is still there (its
// caller gave up before it was sent).
func (b *batcher) abandon(r *request) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i, p := range b.pending {
		if p == r {
			b.pending = append(b.pending[:i], b.pending[i+1:]...)
			return
		}
	}
}

// flush sends batch as one pipeline, bounded by the Limiter's Timeout, and
// hands each request its reply. A batch of one is a plain EVALSHA; if that
// one is own, the request of the caller flushing, the caller's ctx bounds
// it too (a batch of others' requests is not cut short by it).
func (b *batcher) flush(ctx context.Context, own *request, batch []*request) {
	if len(batch) == 0 {
		return
	}
	if len(batch) != 1 || batch[0] != own {
		ctx = context.Background()
	}
	l := b.l
	ctx, cancel := context.WithTimeout(ctx, l.cfg.Timeout)
	defer cancel()
	if len(batch) == 1 {
		r := batch[0]
		r.reply, r.err = takeScript.Run(ctx, l.client, l.keys, l.takeArgs(r)...).Slice()
		close(r.done)
		return
	}
	cmds := make([]*redis.Cmd, len(batch))
	pipe := l.client.Pipeline()
	for i, r := range batch {
		cmds[i] = takeScript.EvalSha(ctx, pipe, l.keys, l.takeArgs(r)...)
	}
	_, _ = pipe.Exec(ctx)
	retry := false
	for _, c := range cmds {
		retry = retry || redis.HasErrorPrefix(c.Err(), "NOSCRIPT")
	}
	if retry { // the server lost the script: send it in full once
		pipe = l.client.Pipeline()
		for i, r := range batch {
			if redis.HasErrorPrefix(cmds[i].Err(), "NOSCRIPT") {
				cmds[i] = takeScript.Eval(ctx, pipe, l.keys, l.takeArgs(r)...)
			}
		}
		_, _ = pipe.Exec(ctx)
	}
	for i, r := range batch {
		r.reply, r.err = cmds[i].Slice()
		close(r.done)
	}
}

// takeArgs are takeScript's arguments for r.
func (l *Limiter) takeArgs(r *request) []any {
	return []any{l.ivArg, l.burst, r.n, r.bound, l.smooth, r.extra, r.ret}
}

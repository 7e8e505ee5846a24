package pool

import (
	"context"
	"errors"
	"sync"
	"time"
)

// CheckFunc checks one replica, named by its Addr, within ctx's deadline
// (Health.Timeout): nil means healthy. HTTPCheck returns one.
type CheckFunc func(ctx context.Context, addr string) error

// schedule decides when each replica is checked: never more than one check
// of a replica at a time, and two checks of a replica start at least
// Interval apart. The first checks are spread over the first Interval, so
// that a pool's checks do not go out in one burst. It is pure: the Checker
// drives it with the system clock, tests and simulations with theirs.
type schedule struct {
	interval time.Duration
	next     []time.Time
	busy     []bool
}

func newSchedule(start time.Time, n int, interval time.Duration) *schedule {
	s := &schedule{interval: interval, next: make([]time.Time, n), busy: make([]bool, n)}
	for i := range s.next {
		s.next[i] = start.Add(time.Duration(i) * interval / time.Duration(n))
	}
	return s
}

// dueAt appends to buf the replicas whose check starts at now and marks
// them busy until doneAt.
func (s *schedule) dueAt(now time.Time, buf []int) []int {
	for i, t := range s.next {
		if !s.busy[i] && !now.Before(t) {
			s.busy[i] = true
			s.next[i] = now.Add(s.interval)
			buf = append(buf, i)
		}
	}
	return buf
}

// doneAt notes that replica i's check finished.
func (s *schedule) doneAt(i int) { s.busy[i] = false }

// nextAt returns when the next check is due, and false when every replica
// is being checked.
func (s *schedule) nextAt() (time.Time, bool) {
	var at time.Time
	ok := false
	for i, t := range s.next {
		if !s.busy[i] && (!ok || t.Before(at)) {
			at, ok = t, true
		}
	}
	return at, ok
}

// Checker runs a pool's active health checks on the system clock: one
// goroutine schedules, and each check runs in a goroutine of its own,
// bounded by Health.Timeout. Close stops it.
type Checker struct {
	p       *Pool
	check   CheckFunc
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	results chan int
	once    sync.Once
}

// StartChecks starts checking every replica with check, every
// Health.Interval; results go to CheckResultAt. It returns an error when
// Health.Interval is zero or check is nil.
func (p *Pool) StartChecks(check CheckFunc) (*Checker, error) {
	if p.set.check.Interval <= 0 {
		return nil, errors.New("pool: StartChecks needs Config.Health.Interval > 0")
	}
	if check == nil {
		return nil, errors.New("pool: StartChecks needs a check function")
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &Checker{p: p, check: check, cancel: cancel, results: make(chan int, len(p.replicas))}
	c.wg.Add(1)
	go c.loop(ctx)
	return c, nil
}

// Close stops the checks and waits for the goroutines to end; checks in
// flight are cancelled and their results dropped. It is idempotent.
func (c *Checker) Close() error {
	c.once.Do(func() {
		c.cancel()
		c.wg.Wait()
	})
	return nil
}

func (c *Checker) loop(ctx context.Context) {
	defer c.wg.Done()
	s := newSchedule(time.Now(), len(c.p.replicas), c.p.set.check.Interval)
	timer := time.NewTimer(0)
	defer timer.Stop()
	var due []int
	for {
		due = s.dueAt(time.Now(), due[:0])
		for _, i := range due {
			c.wg.Add(1)
			go c.run(ctx, i)
		}
		var wake <-chan time.Time
		if at, ok := s.nextAt(); ok {
			timer.Reset(time.Until(at))
			wake = timer.C
		}
		select {
		case <-ctx.Done():
			return
		case i := <-c.results:
			s.doneAt(i)
		case <-wake:
		}
	}
}

// run checks replica i once and reports the result.
func (c *Checker) run(ctx context.Context, i int) {
	defer c.wg.Done()
	r := c.p.replicas[i]
	cctx, cancel := context.WithTimeout(ctx, c.p.set.check.Timeout)
	err := c.check(cctx, r.addr)
	late := cctx.Err()
	cancel()
	if ctx.Err() != nil {
		return
	}
	if err == nil && late != nil {
		err = late // a check that ignored its deadline passed too late
	}
	c.p.CheckResultAt(time.Now(), r, err)
	c.results <- i // buffered for every replica: never blocks
}

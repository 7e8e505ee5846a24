package fallback

import (
	"cmp"
	"context"
	"fmt"
	"reflect"
	"sync/atomic"
	"time"

	"github.com/sluice-go/sluice"
	"github.com/sluice-go/sluice/internal/stripe"
)

// DefaultMaxKeys is the number of keys whose last good result is kept when
// Config.MaxKeys is zero.
const DefaultMaxKeys = 10000

// Alternative is one substitute for the primary call.
type Alternative[T any] struct {
	// Name identifies the alternative in errors, outcomes and statistics. If
	// empty, it is "alternative-<n>", n counting from 1. Names must be
	// unique within a Config.
	Name string

	// Fn produces the substitute value. It runs on the caller's goroutine
	// under the caller's context, narrowed by Timeout. Exactly one of Fn and
	// FnErr must be set.
	Fn func(ctx context.Context) (T, error)

	// FnErr is Fn for a substitute that depends on why the primary failed:
	// err is the primary's failure, as Execute saw it (errors.Is and
	// errors.As reach what it wraps, such as the failure that opened a
	// breaker), and res is the value the primary returned with it under
	// sluice.Get[T] — a partial result, say — or the zero T under Do. It runs
	// as Fn does.
	FnErr func(ctx context.Context, res T, err error) (T, error)

	// Timeout bounds Fn, usually more tightly than the primary, since a
	// degraded path should answer fast or not at all. If zero, Fn has no
	// limit of its own. It must not be negative.
	Timeout time.Duration
}

// Config configures a Fallback. The zero Config is valid: no alternatives,
// no last good results, no default, so every eligible failure is returned as
// an *ExhaustedError.
type Config[T any] struct {
	// Name identifies the Fallback in errors, outcomes and statistics. If
	// empty, errors carry no name.
	Name string

	// Alternatives are tried in order after the primary fails. The slice is
	// copied. If empty, the chain goes straight to the last good result.
	Alternatives []Alternative[T]

	// LastGoodTTL is how long a successful primary result stays available as
	// a substitute for the same key. If zero, results are not kept (the
	// SysManage resilience document kept them for 5 minutes). It must not be
	// negative.
	// Values produced by alternatives and defaults are never kept.
	LastGoodTTL time.Duration

	// Key returns the key under which the call's last good result is kept
	// and looked up, for example an agent id put in the context. If nil,
	// every call shares one key.
	Key func(ctx context.Context) string

	// MaxKeys bounds the number of keys kept, as cache.Config.MaxEntries
	// does: keys are spread over up to 16 shards whose capacities add up to
	// MaxKeys, and when a shard is full an expired result, or one not
	// stored or read since the shard's sweep last passed it, leaves first.
	// If zero, DefaultMaxKeys. It must not be negative.
	MaxKeys int

	// Default is the value of last resort. It is copied by New. If nil,
	// there is no default and a call that reaches this branch is exhausted.
	Default *T

	// ShouldFallback decides whether the primary's failure err falls back.
	// If nil, a failure falls back when sluice.Classify(ctx, err).Failed()
	// (rejections by other policies included). Either way, nothing falls
	// back once the caller's context has ended.
	ShouldFallback func(ctx context.Context, err error) bool

	// OnFallback, if not nil, is called on the caller's goroutine after a
	// branch other than the primary answered or every branch was spent.
	OnFallback func(ctx context.Context, o Outcome)

	// Clock is read for the age of last good results. If nil, the system
	// clock.
	Clock sluice.Clock
}

// Branch says which part of a Fallback answered a call.
type Branch uint8

// The branches, in the order they are tried. BranchNone is the zero value of
// an Outcome that no Fallback has written.
const (
	BranchNone Branch = iota
	BranchPrimary
	BranchAlternative
	BranchLastGood
	BranchDefault
	BranchExhausted
)

var branchNames = [...]string{"none", "primary", "alternative", "last-good", "default", "exhausted"}

// String returns the branch's name as used in logs and metrics.
func (b Branch) String() string {
	if int(b) < len(branchNames) {
		return branchNames[b]
	}
	return fmt.Sprintf("Branch(%d)", b)
}

// Outcome describes how one call through a Fallback was answered. See
// WithOutcome.
type Outcome struct {
	// Fallback is the Config.Name of the Fallback that wrote the outcome.
	Fallback string
	// Branch is the branch that answered, or BranchExhausted. When the
	// primary failed with an error that does not fall back, Branch is
	// BranchPrimary and Err is that error.
	Branch Branch
	// Alternative is the name of the alternative that answered, when Branch
	// is BranchAlternative.
	Alternative string
	// Err is the primary's failure; nil when the primary succeeded.
	Err error
	// Age is how old the value was, when Branch is BranchLastGood.
	Age time.Duration
}

type outcomeKey struct{}

// WithOutcome returns a context that makes every Fallback the call passes
// through record in o how the call was answered. o is reset when the call
// enters a Fallback; with nested Fallbacks, the outermost one that fell back
// has the last word. Use a fresh Outcome per call, read after the call
// returns.
func WithOutcome(ctx context.Context, o *Outcome) context.Context {
	return context.WithValue(ctx, outcomeKey{}, o)
}

// Stats are the counters of a Fallback since it was made. Every call is
// counted in exactly one of Primary, Skipped, an alternative's Answered,
// LastGood, Default or Exhausted.
type Stats struct {
	// Calls is the total number of calls.
	Calls int64
	// Primary counts calls the primary answered.
	Primary int64
	// Skipped counts primary failures returned unchanged because they did
	// not fall back (ShouldFallback said no, or the caller's context ended).
	Skipped int64
	// Alternatives holds the counts of each alternative, in Config order.
	Alternatives []AlternativeStats
	// LastGood counts calls answered by a last good result.
	LastGood int64
	// Default counts calls answered by the default value.
	Default int64
	// Exhausted counts calls for which every branch was spent.
	Exhausted int64
}

// AlternativeStats are the counts of one alternative.
type AlternativeStats struct {
	Name string
	// Answered counts calls this alternative answered.
	Answered int64
	// Failed counts times it was tried and failed.
	Failed int64
}

// Fallback is a sluice.Policy that substitutes a value when the rest of the
// pipeline fails. It is safe for concurrent use; one Fallback[T] may sit in
// many pipelines run by Get[T] (or Do).
type Fallback[T any] struct {
	name       string
	alts       []alternative[T]
	key        func(context.Context) string
	def        T
	hasDef     bool
	should     func(context.Context, error) bool
	onFallback func(context.Context, Outcome)
	clock      sluice.Clock
	store      *lastGood[T] // nil when LastGoodTTL is zero

	primary, skipped           stripe.Counter
	lastGood, deflt, exhausted atomic.Int64
}

type alternative[T any] struct {
	Alternative[T]
	cause            *AlternativeError // context cause when Timeout passes; shared, read-only
	answered, failed atomic.Int64
}

var _ sluice.Policy = (*Fallback[int])(nil)

// New validates cfg and returns a Fallback.
func New[T any](cfg Config[T]) (*Fallback[T], error) {
	if cfg.LastGoodTTL < 0 {
		return nil, fmt.Errorf("fallback: Config.LastGoodTTL must be >= 0, got %v", cfg.LastGoodTTL)
	}
	if cfg.MaxKeys < 0 {
		return nil, fmt.Errorf("fallback: Config.MaxKeys must be >= 0, got %d", cfg.MaxKeys)
	}
	f := &Fallback[T]{
		name:       cfg.Name,
		alts:       make([]alternative[T], len(cfg.Alternatives)),
		key:        cfg.Key,
		should:     cfg.ShouldFallback,
		onFallback: cfg.OnFallback,
		clock:      sluice.ClockOr(cfg.Clock),
	}
	seen := make(map[string]int, len(cfg.Alternatives))
	for i, a := range cfg.Alternatives {
		if (a.Fn == nil) == (a.FnErr == nil) {
			return nil, fmt.Errorf("fallback: Config.Alternatives[%d]: exactly one of Fn and FnErr must be set", i)
		}
		if a.Timeout < 0 {
			return nil, fmt.Errorf("fallback: Config.Alternatives[%d].Timeout must be >= 0, got %v", i, a.Timeout)
		}
		a.Name = cmp.Or(a.Name, fmt.Sprintf("alternative-%d", i+1))
		if j, dup := seen[a.Name]; dup {
			return nil, fmt.Errorf("fallback: Config.Alternatives[%d].Name %q must be unique, repeats Alternatives[%d]", i, a.Name, j)
		}
		seen[a.Name] = i
		f.alts[i].Alternative = a
		f.alts[i].cause = &AlternativeError{Name: a.Name, TimedOut: true, Limit: a.Timeout}
	}
	if cfg.Default != nil {
		f.def, f.hasDef = *cfg.Default, true
	}
	if cfg.LastGoodTTL > 0 {
		maxKeys := cfg.MaxKeys
		maxKeys = cmp.Or(maxKeys, DefaultMaxKeys)
		f.store = newLastGood[T](cfg.LastGoodTTL, maxKeys)
	}
	return f, nil
}

// MustNew is like New but panics on an invalid Config; for configurations
// written in code.
func MustNew[T any](cfg Config[T]) *Fallback[T] {
	f, err := New(cfg)
	if err != nil {
		panic(err)
	}
	return f
}

// Name returns Config.Name.
func (f *Fallback[T]) Name() string { return f.name }

// Stats returns the counters. Increments racing with Stats may or may not be
// included.
func (f *Fallback[T]) Stats() Stats {
	s := Stats{
		Primary:      f.primary.Load(),
		Skipped:      f.skipped.Load(),
		Alternatives: make([]AlternativeStats, len(f.alts)),
		LastGood:     f.lastGood.Load(),
		Default:      f.deflt.Load(),
		Exhausted:    f.exhausted.Load(),
	}
	s.Calls = s.Primary + s.Skipped + s.LastGood + s.Default + s.Exhausted
	for i := range f.alts {
		a := &f.alts[i]
		s.Alternatives[i] = AlternativeStats{Name: a.Name, Answered: a.answered.Load(), Failed: a.failed.Load()}
		s.Calls += s.Alternatives[i].Answered
	}
	return s
}

// LastGoodKeys returns the number of keys holding a last good result,
// expired ones not yet dropped included.
func (f *Fallback[T]) LastGoodKeys() int {
	if f.store == nil {
		return 0
	}
	return f.store.len()
}

// Forget drops the last good result kept for key, for example after the
// data behind it changed.
func (f *Fallback[T]) Forget(key string) {
	if f.store != nil {
		f.store.forget(key)
	}
}

// ForgetAll drops every last good result.
func (f *Fallback[T]) ForgetAll() {
	if f.store != nil {
		f.store.forgetAll()
	}
}

// Execute runs the primary (next) and, if it fails with a failure that falls
// back, the alternatives, the last good result and the default in turn. See
// the package documentation.
//
// Execute returns an error without running anything when the pipeline's
// result is not a *T: the Fallback was put in a pipeline run by Get with
// another type.
func (f *Fallback[T]) Execute(ctx context.Context, next sluice.Next) error {
	var out *T
	if slot := next.Result(); slot != nil {
		p, ok := slot.(*T)
		if !ok {
			return fmt.Errorf("fallback: %s: Fallback[%v] in a pipeline run by Get[%v]",
				f.label(), reflect.TypeFor[T](), reflect.TypeOf(slot).Elem())
		}
		out = p
	}
	o, _ := ctx.Value(outcomeKey{}).(*Outcome)
	if o != nil {
		*o = Outcome{}
	}

	err := next.Run(ctx)
	if err == nil {
		f.primary.Inc()
		if f.store != nil && out != nil {
			f.store.put(f.keyOf(ctx), *out, f.clock.Now())
		}
		if o != nil && o.Branch == BranchNone {
			*o = Outcome{Fallback: f.name, Branch: BranchPrimary}
		}
		return nil
	}
	if ctx.Err() != nil || !f.shouldFallback(ctx, err) {
		f.skipped.Inc()
		if o != nil && o.Branch == BranchNone {
			*o = Outcome{Fallback: f.name, Branch: BranchPrimary, Err: err}
		}
		return err
	}
	res, ret := f.fallBack(ctx, err, out)
	if o != nil {
		*o = res
	}
	if f.onFallback != nil {
		f.onFallback(ctx, res)
	}
	return ret
}

// fallBack runs the chain after the primary failed with err.
func (f *Fallback[T]) fallBack(ctx context.Context, err error, out *T) (Outcome, error) {
	res := Outcome{Fallback: f.name, Err: err}
	var failed []*AlternativeError
	var last T // the primary's value, for FnErr
	if out != nil {
		last = *out
	}
	for i := range f.alts {
		if ctx.Err() != nil {
			break // the caller has gone; the branches below need no context
		}
		a := &f.alts[i]
		v, aerr := a.run(ctx, last, err)
		if aerr == nil {
			a.answered.Add(1)
			if out != nil {
				*out = v
			}
			res.Branch, res.Alternative = BranchAlternative, a.Name
			return res, nil
		}
		a.failed.Add(1)
		failed = append(failed, aerr)
	}
	if f.store != nil {
		if v, age, ok := f.store.get(f.keyOf(ctx), f.clock.Now()); ok {
			f.lastGood.Add(1)
			if out != nil {
				*out = v
			}
			res.Branch, res.Age = BranchLastGood, age
			return res, nil
		}
	}
	if f.hasDef {
		f.deflt.Add(1)
		if out != nil {
			*out = f.def
		}
		res.Branch = BranchDefault
		return res, nil
	}
	f.exhausted.Add(1)
	res.Branch = BranchExhausted
	return res, &ExhaustedError{Name: f.name, Primary: err, Alternatives: failed}
}

// call calls Fn or FnErr.
func (a *alternative[T]) call(ctx context.Context, last T, primary error) (T, error) {
	if a.FnErr != nil {
		return a.FnErr(ctx, last, primary)
	}
	return a.Fn(ctx)
}

// run calls the alternative under its own timeout; last and primary are the
// primary's value and failure.
func (a *alternative[T]) run(ctx context.Context, last T, primary error) (T, *AlternativeError) {
	if a.Timeout <= 0 {
		v, err := a.call(ctx, last, primary)
		if err != nil {
			return v, &AlternativeError{Name: a.Name, Err: err}
		}
		return v, nil
	}
	actx, cancel := context.WithTimeoutCause(ctx, a.Timeout, a.cause)
	defer cancel()
	v, err := a.call(actx, last, primary)
	switch {
	case err == nil:
		return v, nil // a late success still answers
	case context.Cause(actx) != error(a.cause):
		return v, &AlternativeError{Name: a.Name, Err: err}
	case err == error(a.cause):
		return v, a.cause
	default:
		return v, &AlternativeError{Name: a.Name, Err: err, TimedOut: true, Limit: a.Timeout}
	}
}

func (f *Fallback[T]) shouldFallback(ctx context.Context, err error) bool {
	if f.should != nil {
		return f.should(ctx, err)
	}
	return sluice.Classify(ctx, err).Failed()
}

func (f *Fallback[T]) keyOf(ctx context.Context) string {
	if f.key == nil {
		return ""
	}
	return f.key(ctx)
}

func (f *Fallback[T]) label() string {
	if f.name == "" {
		return "unnamed"
	}
	return fmt.Sprintf("%q", f.name)
}

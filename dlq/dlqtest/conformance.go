// Package dlqtest holds what every dlq.Store implementation is tested with:
// RunConformance, the suite a store must pass to be used by the Replayer,
// the health monitor and the admin API, and Memory, the in-memory reference
// store that the suite compares stores against (also handy in users' tests).
package dlqtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/sluice-go/sluice"
	"github.com/sluice-go/sluice/dlq"
	"github.com/sluice-go/sluice/sluicetest"
)

// RunConformance runs the Store conformance suite as subtests of t. newStore
// must return a new, empty store that stamps IDs and Put's default times
// with clock; the suite closes it. Subtests run in parallel, so newStore must
// be safe to call concurrently and give each call its own store (a temporary
// file, a fresh Redis key prefix...). The suite assumes nothing about how
// the store keeps its data.
func RunConformance(t *testing.T, newStore func(t *testing.T, clock sluice.Clock) dlq.Store) {
	open := func(t *testing.T) (dlq.Store, *sluicetest.FakeClock) {
		t.Helper()
		clock := sluicetest.NewFakeClock(time.Time{})
		s := newStore(t, clock)
		t.Cleanup(func() { _ = s.Close() })
		return s, clock
	}
	tests := []struct {
		name string
		fn   func(t *testing.T, s dlq.Store, clock *sluicetest.FakeClock)
	}{
		{"PutGet", testPutGet},
		{"PutDefaults", testPutDefaults},
		{"PutInvalid", testPutInvalid},
		{"IDsIncrease", testIDsIncrease},
		{"NotFound", testNotFound},
		{"ListPaging", testListPaging},
		{"ListDefaultLimit", testListDefaultLimit},
		{"Delete", testDelete},
		{"ParkReschedule", testParkReschedule},
		{"Claim", testClaim},
		{"Fail", testFail},
		{"Purge", testPurge},
		{"Stats", testStats},
		{"Concurrent", testConcurrent},
		{"Context", testContext},
		{"Closed", testClosed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, clock := open(t)
			tc.fn(t, s, clock)
		})
	}
	t.Run("Model", func(t *testing.T) {
		t.Parallel()
		s, clock := open(t)
		testModel(t, s, clock)
	})
}

var bg = context.Background()

func put(t *testing.T, s dlq.Store, m dlq.Message) dlq.ID {
	t.Helper()
	id, err := s.Put(bg, m)
	if err != nil {
		t.Fatalf("Put(%q): %v", m.Queue, err)
	}
	if id.IsZero() {
		t.Fatalf("Put(%q) returned the zero ID", m.Queue)
	}
	return id
}

func get(t *testing.T, s dlq.Store, id dlq.ID) dlq.Message {
	t.Helper()
	m, err := s.Get(bg, id)
	if err != nil {
		t.Fatalf("Get(%s): %v", id, err)
	}
	return m
}

func list(t *testing.T, s dlq.Store, q dlq.Query) []dlq.Message {
	t.Helper()
	ms, err := s.List(bg, q)
	if err != nil {
		t.Fatalf("List(%+v): %v", q, err)
	}
	return ms
}

func ids(ms []dlq.Message) []dlq.ID {
	out := make([]dlq.ID, len(ms))
	for i, m := range ms {
		out[i] = m.ID
	}
	return out
}

func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: err = %v, want %v", what, err, target)
	}
}

func wantIDs(t *testing.T, what string, got, want []dlq.ID) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Fatalf("%s: got ids %v, want %v", what, got, want)
	}
}

// diff describes how two messages differ (times by Equal, empty and nil
// payloads and headers alike), or returns "" if they do not.
func diff(got, want dlq.Message) string {
	var d []string
	add := func(field string, g, w any) { d = append(d, fmt.Sprintf("%s = %v, want %v", field, g, w)) }
	if got.ID != want.ID {
		add("ID", got.ID, want.ID)
	}
	if got.Queue != want.Queue {
		add("Queue", got.Queue, want.Queue)
	}
	if !bytes.Equal(got.Payload, want.Payload) {
		add("Payload", got.Payload, want.Payload)
	}
	if len(got.Headers) != len(want.Headers) || !maps.Equal(got.Headers, want.Headers) {
		add("Headers", got.Headers, want.Headers)
	}
	if got.Attempts != want.Attempts {
		add("Attempts", got.Attempts, want.Attempts)
	}
	if got.Replays != want.Replays {
		add("Replays", got.Replays, want.Replays)
	}
	if !got.FirstFailure.Equal(want.FirstFailure) {
		add("FirstFailure", got.FirstFailure, want.FirstFailure)
	}
	if !got.LastFailure.Equal(want.LastFailure) {
		add("LastFailure", got.LastFailure, want.LastFailure)
	}
	if got.LastError != want.LastError {
		add("LastError", got.LastError, want.LastError)
	}
	if !got.NextReplay.Equal(want.NextReplay) {
		add("NextReplay", got.NextReplay, want.NextReplay)
	}
	if got.State != want.State {
		add("State", got.State, want.State)
	}
	return strings.Join(d, "; ")
}

func wantMessage(t *testing.T, what string, got, want dlq.Message) {
	t.Helper()
	if d := diff(got, want); d != "" {
		t.Fatalf("%s: %s", what, d)
	}
}

func testPutGet(t *testing.T, s dlq.Store, clock *sluicetest.FakeClock) {
	now := clock.Now()
	m := dlq.Message{
		ID:           dlq.ID{1, 2, 3}, // ignored
		Queue:        "agents",
		Payload:      []byte{0, 1, 2, 0xff, 0, 'x'},
		Headers:      map[string]string{"Method": "POST", "X-Empty": "", "": "empty key"},
		Attempts:     5,
		Replays:      2,
		FirstFailure: now.Add(-time.Hour),
		LastFailure:  now.Add(-time.Minute),
		LastError:    "connection refused ✗",
		NextReplay:   now.Add(time.Minute + 123*time.Nanosecond),
		State:        dlq.StateParked,
	}
	orig := m.Clone()
	id := put(t, s, m)
	if id == orig.ID {
		t.Fatalf("Put kept the caller's ID")
	}
	m.Payload[0] = 'X' // the store keeps its own copy
	m.Headers["Method"] = "GET"
	want := orig
	want.ID = id
	wantMessage(t, "Get", get(t, s, id), want)
	got := get(t, s, id)
	got.Payload[1] = 'Y' // and hands out copies
	wantMessage(t, "Get after changing a returned copy", get(t, s, id), want)
	if got := id.Time(); !got.Equal(now.Truncate(time.Millisecond)) {
		t.Fatalf("ID.Time() = %v, want the put time %v", got, now)
	}

	empty := put(t, s, dlq.Message{Queue: "agents", Payload: []byte{}, Headers: map[string]string{}})
	if g := get(t, s, empty); len(g.Payload) != 0 || len(g.Headers) != 0 {
		t.Fatalf("empty payload and headers came back as %q, %v", g.Payload, g.Headers)
	}
	big := bytes.Repeat([]byte("0123456789abcdef"), 4096) // 64 KiB
	bigID := put(t, s, dlq.Message{Queue: "agents", Payload: big})
	if g := get(t, s, bigID); !bytes.Equal(g.Payload, big) {
		t.Fatalf("64 KiB payload came back as %d bytes", len(g.Payload))
	}
}

func testPutDefaults(t *testing.T, s dlq.Store, clock *sluicetest.FakeClock) {
	clock.Advance(1500 * time.Millisecond)
	now := clock.Now()
	id := put(t, s, dlq.Message{Queue: "q"})
	wantMessage(t, "defaults", get(t, s, id), dlq.Message{
		ID: id, Queue: "q", FirstFailure: now, LastFailure: now, NextReplay: now, State: dlq.StateReady,
	})
	first := now.Add(-time.Hour)
	id = put(t, s, dlq.Message{Queue: "q", FirstFailure: first})
	if g := get(t, s, id); !g.LastFailure.Equal(first) {
		t.Fatalf("LastFailure defaulted to %v, want FirstFailure %v", g.LastFailure, first)
	}
}

func testPutInvalid(t *testing.T, s dlq.Store, clock *sluicetest.FakeClock) {
	for i, m := range []dlq.Message{
		{},
		{Queue: strings.Repeat("q", dlq.MaxQueueName+1)},
		{Queue: "q", State: 7},
		{Queue: "q", Attempts: -1},
		{Queue: "q", Replays: -1},
	} {
		_, err := s.Put(bg, m)
		wantErr(t, fmt.Sprintf("step %d: Put", i), err, dlq.ErrInvalidMessage)
	}
	put(t, s, dlq.Message{Queue: strings.Repeat("q", dlq.MaxQueueName)})
	if all := list(t, s, dlq.Query{}); len(all) != 1 {
		t.Fatalf("stored %d messages, want only the valid one", len(all))
	}
}

func testIDsIncrease(t *testing.T, s dlq.Store, clock *sluicetest.FakeClock) {
	var want []dlq.ID
	for i := range 30 {
		if i%10 == 9 {
			clock.Advance(-time.Second) // a clock stepping back keeps the order
		}
		id := put(t, s, dlq.Message{Queue: "q", Payload: []byte{byte(i)}})
		if n := len(want); n > 0 && bytes.Compare(want[n-1][:], id[:]) >= 0 {
			t.Fatalf("put %d: id %s does not sort after %s", i, id, want[n-1])
		}
		if n := len(want); n > 0 && want[n-1].String() >= id.String() {
			t.Fatalf("put %d: text %s does not sort after %s", i, id, want[n-1])
		}
		want = append(want, id)
	}
	wantIDs(t, "List", ids(list(t, s, dlq.Query{Queue: "q"})), want)
}

func testNotFound(t *testing.T, s dlq.Store, clock *sluicetest.FakeClock) {
	id := put(t, s, dlq.Message{Queue: "q"})
	if err := s.Delete(bg, id); err != nil {
		t.Fatal(err)
	}
	now := clock.Now()
	_, err := s.Get(bg, id)
	wantErr(t, "Get", err, dlq.ErrNotFound)
	wantErr(t, "Delete", s.Delete(bg, id), dlq.ErrNotFound)
	wantErr(t, "Park", s.Park(bg, id), dlq.ErrNotFound)
	wantErr(t, "Reschedule", s.Reschedule(bg, id, now), dlq.ErrNotFound)
	wantErr(t, "Fail", s.Fail(bg, id, dlq.ReplayFailure{At: now, NextReplay: now}), dlq.ErrNotFound)
	_, err = s.Get(bg, dlq.ID{})
	wantErr(t, "Get(zero ID)", err, dlq.ErrNotFound)
}

func testListPaging(t *testing.T, s dlq.Store, clock *sluicetest.FakeClock) {
	var all, aReady, aParked, b []dlq.ID
	for i := range 14 {
		clock.Advance(time.Second)
		m := dlq.Message{Queue: "a", Payload: []byte{byte(i)}}
		switch {
		case i%3 == 0:
			m.Queue = "b"
		case i%3 == 1:
			m.State = dlq.StateParked
		}
		id := put(t, s, m)
		all = append(all, id)
		switch {
		case m.Queue == "b":
			b = append(b, id)
		case m.State == dlq.StateParked:
			aParked = append(aParked, id)
		default:
			aReady = append(aReady, id)
		}
	}
	aAll := slices.DeleteFunc(slices.Clone(all), func(id dlq.ID) bool { return slices.Contains(b, id) })
	for _, tc := range []struct {
		q    dlq.Query
		want []dlq.ID
	}{
		{dlq.Query{}, all},
		{dlq.Query{Queue: "a"}, aAll},
		{dlq.Query{Queue: "a", State: dlq.StateReady}, aReady},
		{dlq.Query{Queue: "a", State: dlq.StateParked}, aParked},
		{dlq.Query{State: dlq.StateParked}, aParked},
		{dlq.Query{Queue: "b"}, b},
		{dlq.Query{Queue: "b", State: dlq.StateParked}, nil},
		{dlq.Query{Queue: "nope"}, nil},
	} {
		for _, limit := range []int{1, 3, 1000} {
			var got []dlq.ID
			q := tc.q
			q.Limit = limit
			for page := 0; ; page++ {
				ms := list(t, s, q)
				if len(ms) > limit {
					t.Fatalf("List(%+v) returned %d messages", q, len(ms))
				}
				if len(ms) == 0 {
					break
				}
				got = append(got, ids(ms)...)
				q.After = ms[len(ms)-1].ID
				if page > len(all) {
					t.Fatalf("List(%+v) does not end", tc.q)
				}
			}
			wantIDs(t, fmt.Sprintf("List(%+v) by pages of %d", tc.q, limit), got, tc.want)
		}
	}
}

func testListDefaultLimit(t *testing.T, s dlq.Store, clock *sluicetest.FakeClock) {
	const n = dlq.DefaultListLimit + 5
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.Put(bg, dlq.Message{Queue: "q", Payload: []byte{byte(i)}})
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := len(list(t, s, dlq.Query{Queue: "q"})); got != dlq.DefaultListLimit {
		t.Fatalf("List with Limit 0 returned %d, want %d", got, dlq.DefaultListLimit)
	}
}

func testDelete(t *testing.T, s dlq.Store, clock *sluicetest.FakeClock) {
	a := put(t, s, dlq.Message{Queue: "q"})
	b := put(t, s, dlq.Message{Queue: "q", State: dlq.StateParked})
	c := put(t, s, dlq.Message{Queue: "q"})
	for _, id := range []dlq.ID{a, b} {
		if err := s.Delete(bg, id); err != nil {
			t.Fatalf("Delete: %v", err)
		}
	}
	wantIDs(t, "List after Delete", ids(list(t, s, dlq.Query{})), []dlq.ID{c})
	if ms, _ := s.ClaimAt(bg, "q", clock.Now(), time.Minute, 10); !slices.Equal(ids(ms), []dlq.ID{c}) {
		t.Fatalf("Claim after Delete returned %v, want [%s]", ids(ms), c)
	}
	st, err := s.Stats(bg)
	if err != nil || len(st) != 1 || st[0].Ready != 1 || st[0].Parked != 0 {
		t.Fatalf("Stats after Delete = %+v, %v", st, err)
	}
}

func testParkReschedule(t *testing.T, s dlq.Store, clock *sluicetest.FakeClock) {
	now := clock.Now()
	id := put(t, s, dlq.Message{Queue: "q", LastError: "boom", Attempts: 3})
	before := get(t, s, id)
	for i := range 2 { // the second Park does nothing
		if err := s.Park(bg, id); err != nil {
			t.Fatalf("Park %d: %v", i, err)
		}
		want := before
		want.State = dlq.StateParked
		wantMessage(t, fmt.Sprintf("after Park %d", i), get(t, s, id), want)
	}
	if ms, _ := s.ClaimAt(bg, "q", now.Add(time.Hour), time.Minute, 10); len(ms) != 0 {
		t.Fatalf("Claim returned parked messages %v", ids(ms))
	}
	wantIDs(t, "List(parked)", ids(list(t, s, dlq.Query{Queue: "q", State: dlq.StateParked})), []dlq.ID{id})
	at := now.Add(10 * time.Minute)
	if err := s.Reschedule(bg, id, at); err != nil {
		t.Fatal(err)
	}
	want := before
	want.NextReplay = at
	wantMessage(t, "after Reschedule", get(t, s, id), want)
	if ms, _ := s.ClaimAt(bg, "q", at.Add(-time.Nanosecond), time.Minute, 10); len(ms) != 0 {
		t.Fatalf("Claim before the rescheduled time returned %v", ids(ms))
	}
	if ms, _ := s.ClaimAt(bg, "q", at, time.Minute, 10); !slices.Equal(ids(ms), []dlq.ID{id}) {
		t.Fatalf("Claim at the rescheduled time returned %v", ids(ms))
	}
}

func testClaim(t *testing.T, s dlq.Store, clock *sluicetest.FakeClock) {
	now := clock.Now()
	// Put order differs from due order, and two are due at the same time.
	late := put(t, s, dlq.Message{Queue: "q", NextReplay: now.Add(-time.Minute)})
	early := put(t, s, dlq.Message{Queue: "q", NextReplay: now.Add(-time.Hour)})
	tieA := put(t, s, dlq.Message{Queue: "q", NextReplay: now.Add(-30 * time.Minute)})
	tieB := put(t, s, dlq.Message{Queue: "q", NextReplay: now.Add(-30 * time.Minute)})
	future := put(t, s, dlq.Message{Queue: "q", NextReplay: now.Add(time.Minute)})
	put(t, s, dlq.Message{Queue: "q", State: dlq.StateParked, NextReplay: now.Add(-2 * time.Hour)})
	put(t, s, dlq.Message{Queue: "other", NextReplay: now.Add(-2 * time.Hour)})

	if ms, err := s.ClaimAt(bg, "q", now, time.Minute, 0); err != nil || len(ms) != 0 {
		t.Fatalf("ClaimAt(limit 0) = %v, %v", ids(ms), err)
	}
	lease := 5 * time.Minute
	ms, err := s.ClaimAt(bg, "q", now, lease, 3)
	if err != nil {
		t.Fatal(err)
	}
	wantIDs(t, "first Claim", ids(ms), []dlq.ID{early, tieA, tieB})
	for _, m := range ms {
		if !m.NextReplay.Equal(now.Add(lease)) {
			t.Fatalf("claimed %s has NextReplay %v, want now+lease %v", m.ID, m.NextReplay, now.Add(lease))
		}
		wantMessage(t, "Get of a claimed message", get(t, s, m.ID), m)
	}
	ms, _ = s.ClaimAt(bg, "q", now, lease, 10)
	wantIDs(t, "second Claim", ids(ms), []dlq.ID{late})
	ms, _ = s.ClaimAt(bg, "q", now.Add(lease-time.Nanosecond), lease, 10)
	wantIDs(t, "Claim during the lease", ids(ms), []dlq.ID{future})
	// All four leases end together; the tie is broken by ID (put order).
	ms, _ = s.ClaimAt(bg, "q", now.Add(lease), lease, 10)
	wantIDs(t, "Claim after the leases", ids(ms), []dlq.ID{late, early, tieA, tieB})
}

func testFail(t *testing.T, s dlq.Store, clock *sluicetest.FakeClock) {
	now := clock.Now()
	id := put(t, s, dlq.Message{Queue: "q", Attempts: 3, LastError: "first"})
	want := get(t, s, id)
	f := dlq.ReplayFailure{At: now.Add(time.Second), Error: "second", NextReplay: now.Add(time.Minute)}
	if err := s.Fail(bg, id, f); err != nil {
		t.Fatal(err)
	}
	want.Attempts, want.Replays, want.LastFailure, want.LastError, want.NextReplay = 4, 1, f.At, "second", f.NextReplay
	wantMessage(t, "after Fail", get(t, s, id), want)
	if ms, _ := s.ClaimAt(bg, "q", now, time.Minute, 10); len(ms) != 0 {
		t.Fatalf("Claim before NextReplay returned %v", ids(ms))
	}

	long := strings.Repeat("é", dlq.MaxErrorText) // two bytes each
	f = dlq.ReplayFailure{At: now.Add(2 * time.Second), Error: long, NextReplay: now.Add(2 * time.Minute), Park: true}
	if err := s.Fail(bg, id, f); err != nil {
		t.Fatal(err)
	}
	want.Attempts, want.Replays, want.LastFailure, want.NextReplay, want.State = 5, 2, f.At, f.NextReplay, dlq.StateParked
	want.LastError = long[:dlq.MaxErrorText]
	wantMessage(t, "after Fail with Park and a long error", get(t, s, id), want)

	f = dlq.ReplayFailure{At: now.Add(3 * time.Second), Error: "third", NextReplay: now}
	if err := s.Fail(bg, id, f); err != nil {
		t.Fatal(err)
	}
	if m := get(t, s, id); m.State != dlq.StateReady || m.Replays != 3 {
		t.Fatalf("Fail without Park left state %v, replays %d; want ready, 3", m.State, m.Replays)
	}
	if ms, _ := s.ClaimAt(bg, "q", now, time.Minute, 10); !slices.Equal(ids(ms), []dlq.ID{id}) {
		t.Fatalf("Claim after Fail without Park returned %v", ids(ms))
	}
}

func testPurge(t *testing.T, s dlq.Store, clock *sluicetest.FakeClock) {
	t0 := clock.Now()
	old := put(t, s, dlq.Message{Queue: "a"})
	oldParked := put(t, s, dlq.Message{Queue: "a", State: dlq.StateParked})
	oldB := put(t, s, dlq.Message{Queue: "b"})
	clock.Advance(time.Hour)
	young := put(t, s, dlq.Message{Queue: "a"})
	youngB := put(t, s, dlq.Message{Queue: "b", State: dlq.StateParked})

	purge := func(f dlq.PurgeFilter, want int) {
		t.Helper()
		n, err := s.Purge(bg, f)
		if err != nil || n != want {
			t.Fatalf("Purge(%+v) = %d, %v; want %d", f, n, err, want)
		}
	}
	purge(dlq.PurgeFilter{Queue: "a", State: dlq.StateReady, Before: t0.Add(30 * time.Minute)}, 1)
	wantIDs(t, "after purging old ready of a", ids(list(t, s, dlq.Query{})), []dlq.ID{oldParked, oldB, young, youngB})
	_ = old
	purge(dlq.PurgeFilter{State: dlq.StateParked}, 2)
	wantIDs(t, "after purging parked", ids(list(t, s, dlq.Query{})), []dlq.ID{oldB, young})
	purge(dlq.PurgeFilter{Queue: "nope"}, 0)
	purge(dlq.PurgeFilter{Before: t0}, 0) // strictly before
	purge(dlq.PurgeFilter{Queue: "b"}, 1)
	purge(dlq.PurgeFilter{}, 1)
	if st, err := s.Stats(bg); err != nil || len(st) != 0 {
		t.Fatalf("Stats after purging everything = %+v, %v", st, err)
	}
}

func testStats(t *testing.T, s dlq.Store, clock *sluicetest.FakeClock) {
	if st, err := s.Stats(bg); err != nil || len(st) != 0 {
		t.Fatalf("Stats of an empty store = %+v, %v", st, err)
	}
	t0 := clock.Now()
	put(t, s, dlq.Message{Queue: "zeta", State: dlq.StateParked})
	clock.Advance(time.Minute)
	a1 := put(t, s, dlq.Message{Queue: "alpha"})
	clock.Advance(time.Minute)
	put(t, s, dlq.Message{Queue: "alpha"})
	a3 := put(t, s, dlq.Message{Queue: "alpha", State: dlq.StateParked})
	put(t, s, dlq.Message{Queue: "mid"})
	st, err := s.Stats(bg)
	if err != nil {
		t.Fatal(err)
	}
	type row struct {
		q             string
		ready, parked int64
		oldR, oldP    time.Time
	}
	var got []row
	for _, q := range st {
		got = append(got, row{q.Queue, q.Ready, q.Parked, q.OldestReady, q.OldestParked})
	}
	want := []row{
		{"alpha", 2, 1, a1.Time(), a3.Time()},
		{"mid", 1, 0, t0.Add(2 * time.Minute), time.Time{}},
		{"zeta", 0, 1, time.Time{}, t0},
	}
	if len(got) != len(want) {
		t.Fatalf("Stats = %+v, want %+v", got, want)
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.q != w.q || g.ready != w.ready || g.parked != w.parked || !g.oldR.Equal(w.oldR) || !g.oldP.Equal(w.oldP) {
			t.Fatalf("Stats[%d] = %+v, want %+v", i, g, w)
		}
	}
	if age := st[0].OldestAgeAt(t0.Add(time.Hour)); age != time.Hour-time.Minute {
		t.Fatalf("alpha OldestAge = %v, want 59m", age)
	}
}

func testConcurrent(t *testing.T, s dlq.Store, clock *sluicetest.FakeClock) {
	const workers, each = 16, 10
	var mu sync.Mutex
	seen := map[dlq.ID]string{}
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				body := fmt.Sprintf("w%d-%d", w, i)
				id, err := s.Put(bg, dlq.Message{Queue: "q", Payload: []byte(body)})
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				if prev, dup := seen[id]; dup {
					mu.Unlock()
					errs <- fmt.Errorf("id %s given to %s and %s", id, prev, body)
					return
				}
				seen[id] = body
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	all := list(t, s, dlq.Query{Limit: workers * each * 2})
	if len(all) != workers*each {
		t.Fatalf("listed %d messages, want %d", len(all), workers*each)
	}
	for _, m := range all {
		if seen[m.ID] != string(m.Payload) {
			t.Fatalf("message %s holds %q, want %q", m.ID, m.Payload, seen[m.ID])
		}
	}

	// Concurrent claims never hand out a message twice within its lease.
	now := clock.Now()
	claimed := make(chan dlq.ID, workers*each)
	errs = make(chan error, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				ms, err := s.ClaimAt(bg, "q", now, time.Hour, 7)
				if err != nil {
					errs <- err
					return
				}
				if len(ms) == 0 {
					return
				}
				for _, m := range ms {
					claimed <- m.ID
				}
			}
		}()
	}
	wg.Wait()
	close(claimed)
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	got := map[dlq.ID]bool{}
	for id := range claimed {
		if got[id] {
			t.Fatalf("message %s claimed twice", id)
		}
		got[id] = true
	}
	if len(got) != workers*each {
		t.Fatalf("claimed %d messages, want %d", len(got), workers*each)
	}
}

func testContext(t *testing.T, s dlq.Store, clock *sluicetest.FakeClock) {
	ctx, cancel := context.WithCancel(bg)
	cancel()
	_, err := s.Put(ctx, dlq.Message{Queue: "q"})
	wantErr(t, "Put with a cancelled context", err, context.Canceled)
	if all := list(t, s, dlq.Query{}); len(all) != 0 {
		t.Fatalf("Put with a cancelled context stored %d messages", len(all))
	}
	_, err = s.List(ctx, dlq.Query{})
	wantErr(t, "List with a cancelled context", err, context.Canceled)
}

func testClosed(t *testing.T, s dlq.Store, clock *sluicetest.FakeClock) {
	id := put(t, s, dlq.Message{Queue: "q"})
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	now := clock.Now()
	_, err := s.Put(bg, dlq.Message{Queue: "q"})
	wantErr(t, "Put", err, dlq.ErrClosed)
	_, err = s.Get(bg, id)
	wantErr(t, "Get", err, dlq.ErrClosed)
	_, err = s.List(bg, dlq.Query{})
	wantErr(t, "List", err, dlq.ErrClosed)
	wantErr(t, "Delete", s.Delete(bg, id), dlq.ErrClosed)
	wantErr(t, "Park", s.Park(bg, id), dlq.ErrClosed)
	wantErr(t, "Reschedule", s.Reschedule(bg, id, now), dlq.ErrClosed)
	_, err = s.ClaimAt(bg, "q", now, time.Minute, 1)
	wantErr(t, "Claim", err, dlq.ErrClosed)
	wantErr(t, "Fail", s.Fail(bg, id, dlq.ReplayFailure{At: now, NextReplay: now}), dlq.ErrClosed)
	_, err = s.Purge(bg, dlq.PurgeFilter{})
	wantErr(t, "Purge", err, dlq.ErrClosed)
	_, err = s.Stats(bg)
	wantErr(t, "Stats", err, dlq.ErrClosed)
}

// testModel runs random sequences of operations against s and against the
// reference Memory store on the same clock, and requires the same answers.
// The store is emptied between sequences rather than reopened, so that the
// suite stays fast on stores whose writes cost an fsync.
func testModel(t *testing.T, s dlq.Store, clock *sluicetest.FakeClock) {
	queues := []string{"a", "b"}
	rapid.Check(t, func(rt *rapid.T) {
		if _, err := s.Purge(bg, dlq.PurgeFilter{}); err != nil {
			rt.Fatalf("emptying the store: %v", err)
		}
		clock.Advance(time.Hour) // keep each sequence's ids apart from the last one's
		ref := NewMemory(clock)
		defer ref.Close()
		var pairs [][2]dlq.ID // [store id, model id], in put order
		toModel := func(id dlq.ID) dlq.ID {
			for _, p := range pairs {
				if p[0] == id {
					return p[1]
				}
			}
			return id
		}
		pickID := func(rt *rapid.T) (dlq.ID, dlq.ID) {
			if len(pairs) == 0 || rapid.IntRange(0, 9).Draw(rt, "unknown") == 0 {
				return dlq.ID{9}, dlq.ID{9}
			}
			p := pairs[rapid.IntRange(0, len(pairs)-1).Draw(rt, "which")]
			return p[0], p[1]
		}
		offset := func(rt *rapid.T, name string) time.Time {
			return clock.Now().Add(time.Duration(rapid.IntRange(-3, 3).Draw(rt, name)) * time.Minute)
		}
		sameErr := func(op string, got, want error) {
			for _, e := range []error{nil, dlq.ErrNotFound, dlq.ErrInvalidMessage} {
				if (want == e || errors.Is(want, e)) != (got == e || errors.Is(got, e)) {
					rt.Fatalf("%s: err = %v, model says %v", op, got, want)
				}
			}
		}
		sameList := func(op string, got, want []dlq.Message) {
			if len(got) != len(want) {
				rt.Fatalf("%s: %d messages, model has %d", op, len(got), len(want))
			}
			for i := range got {
				g := got[i]
				g.ID = toModel(g.ID)
				if d := diff(g, want[i]); d != "" {
					rt.Fatalf("%s: message %d: %s", op, i, d)
				}
			}
		}
		steps := rapid.IntRange(1, 12).Draw(rt, "steps")
		for range steps {
			switch rapid.IntRange(0, 10).Draw(rt, "op") {
			case 0, 1: // Put
				m := dlq.Message{
					Queue:      rapid.SampledFrom(append(queues, "")).Draw(rt, "queue"),
					Payload:    rapid.SliceOfN(rapid.Byte(), 0, 8).Draw(rt, "payload"),
					Attempts:   rapid.IntRange(0, 3).Draw(rt, "attempts"),
					State:      rapid.SampledFrom([]dlq.State{dlq.StateAny, dlq.StateReady, dlq.StateParked}).Draw(rt, "state"),
					NextReplay: offset(rt, "next"),
				}
				got, err := s.Put(bg, m)
				want, werr := ref.Put(bg, m)
				sameErr("Put", err, werr)
				if err == nil {
					pairs = append(pairs, [2]dlq.ID{got, want})
				}
			case 2: // Get
				id, mid := pickID(rt)
				got, err := s.Get(bg, id)
				want, werr := ref.Get(bg, mid)
				sameErr("Get", err, werr)
				if err == nil {
					sameList("Get", []dlq.Message{got}, []dlq.Message{want})
				}
			case 3: // List
				q := dlq.Query{
					Queue: rapid.SampledFrom(append(queues, "")).Draw(rt, "queue"),
					State: rapid.SampledFrom([]dlq.State{dlq.StateAny, dlq.StateReady, dlq.StateParked}).Draw(rt, "state"),
					Limit: rapid.IntRange(0, 4).Draw(rt, "limit"),
				}
				mq := q
				if rapid.Bool().Draw(rt, "after") {
					q.After, mq.After = pickID(rt)
				}
				got, err := s.List(bg, q)
				want, werr := ref.List(bg, mq)
				sameErr("List", err, werr)
				sameList(fmt.Sprintf("List(%+v)", q), got, want)
			case 4: // Delete
				id, mid := pickID(rt)
				sameErr("Delete", s.Delete(bg, id), ref.Delete(bg, mid))
			case 5: // Park
				id, mid := pickID(rt)
				sameErr("Park", s.Park(bg, id), ref.Park(bg, mid))
			case 6: // Reschedule
				id, mid := pickID(rt)
				at := offset(rt, "at")
				sameErr("Reschedule", s.Reschedule(bg, id, at), ref.Reschedule(bg, mid, at))
			case 7: // ClaimAt
				queue := rapid.SampledFrom(queues).Draw(rt, "queue")
				lease := time.Duration(rapid.IntRange(0, 3).Draw(rt, "lease")) * time.Minute
				n := rapid.IntRange(0, 3).Draw(rt, "max")
				got, err := s.ClaimAt(bg, queue, clock.Now(), lease, n)
				want, werr := ref.ClaimAt(bg, queue, clock.Now(), lease, n)
				sameErr("Claim", err, werr)
				sameList("Claim", got, want)
			case 8: // Fail
				id, mid := pickID(rt)
				f := dlq.ReplayFailure{At: clock.Now(), Error: rapid.StringN(0, 5, -1).Draw(rt, "err"), NextReplay: offset(rt, "next"), Park: rapid.Bool().Draw(rt, "park")}
				sameErr("Fail", s.Fail(bg, id, f), ref.Fail(bg, mid, f))
			case 9: // Purge
				f := dlq.PurgeFilter{
					Queue: rapid.SampledFrom(append(queues, "")).Draw(rt, "queue"),
					State: rapid.SampledFrom([]dlq.State{dlq.StateAny, dlq.StateReady, dlq.StateParked}).Draw(rt, "state"),
				}
				if rapid.Bool().Draw(rt, "byAge") {
					f.Before = clock.Now().Add(-time.Duration(rapid.IntRange(0, 90).Draw(rt, "age")) * time.Second)
				}
				got, err := s.Purge(bg, f)
				want, werr := ref.Purge(bg, f)
				sameErr("Purge", err, werr)
				if got != want {
					rt.Fatalf("Purge(%+v) = %d, model says %d", f, got, want)
				}
			case 10: // time passes
				clock.Advance(time.Duration(rapid.IntRange(0, 90_000).Draw(rt, "ms")) * time.Millisecond)
			}
		}
		got, err := s.Stats(bg)
		if err != nil {
			rt.Fatalf("Stats: %v", err)
		}
		want, _ := ref.Stats(bg)
		if len(got) != len(want) {
			rt.Fatalf("Stats: %d queues, model has %d", len(got), len(want))
		}
		for i := range got {
			g, w := got[i], want[i]
			if g.Queue != w.Queue || g.Ready != w.Ready || g.Parked != w.Parked || !g.OldestReady.Equal(w.OldestReady) || !g.OldestParked.Equal(w.OldestParked) {
				rt.Fatalf("Stats[%d] = %+v, model says %+v", i, g, w)
			}
		}
	})
}

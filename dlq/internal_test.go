package dlq

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	"pgregory.net/rapid"
)

func genMessage(t *rapid.T) Message {
	m := Message{
		Queue:     rapid.StringN(1, 20, MaxQueueName).Draw(t, "queue"),
		Payload:   rapid.SliceOfN(rapid.Byte(), 0, 300).Draw(t, "payload"),
		Attempts:  rapid.IntRange(0, 1<<20).Draw(t, "attempts"),
		Replays:   rapid.IntRange(0, 1000).Draw(t, "replays"),
		LastError: rapid.String().Draw(t, "err"),
		State:     rapid.SampledFrom([]State{StateReady, StateParked}).Draw(t, "state"),
		Headers:   rapid.MapOfN(rapid.String(), rapid.String(), 0, 5).Draw(t, "headers"),
	}
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	m.FirstFailure = base.Add(time.Duration(rapid.Int64Range(-1e15, 1e15).Draw(t, "first")))
	m.LastFailure = base.Add(time.Duration(rapid.Int64Range(-1e15, 1e15).Draw(t, "last")))
	if rapid.Bool().Draw(t, "zeroNext") {
		m.NextReplay = time.Time{}
	} else {
		m.NextReplay = base.Add(time.Duration(rapid.Int64Range(-1e15, 1e15).Draw(t, "next")))
	}
	return m
}

func TestRecordRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		m := genMessage(t)
		m.ID = ID{1, 2, 3}
		rec := encodeRecord(nil, &m)
		if len(rec) != encodedSize(&m) {
			t.Fatalf("encodedSize = %d, encoding is %d bytes", encodedSize(&m), len(rec))
		}
		got, err := decodeRecord(m.ID, rec)
		if err != nil {
			t.Fatal(err)
		}
		if len(m.Headers) == 0 {
			m.Headers = nil
		}
		if len(m.Payload) == 0 {
			m.Payload = nil
		}
		if !got.FirstFailure.Equal(m.FirstFailure) || !got.LastFailure.Equal(m.LastFailure) || !got.NextReplay.Equal(m.NextReplay) {
			t.Fatalf("times changed: %+v -> %+v", m, got)
		}
		got.FirstFailure, got.LastFailure, got.NextReplay = m.FirstFailure, m.LastFailure, m.NextReplay
		if !bytes.Equal(got.Payload, m.Payload) || got.Queue != m.Queue || got.LastError != m.LastError ||
			got.Attempts != m.Attempts || got.Replays != m.Replays || got.State != m.State || len(got.Headers) != len(m.Headers) {
			t.Fatalf("round trip: %+v -> %+v", m, got)
		}
		for k, v := range m.Headers {
			if got.Headers[k] != v {
				t.Fatalf("header %q: %q -> %q", k, v, got.Headers[k])
			}
		}
		// Any single flipped bit is caught.
		i := rapid.IntRange(0, len(rec)*8-1).Draw(t, "bit")
		bad := bytes.Clone(rec)
		bad[i/8] ^= 1 << (i % 8)
		if _, err := decodeRecord(m.ID, bad); err == nil {
			t.Fatalf("flipping bit %d went unnoticed", i)
		}
	})
}

// FuzzDecodeRecord: no input makes the decoder panic or accept garbage with
// a good checksum but a bad layout.
func FuzzDecodeRecord(f *testing.F) {
	m := Message{Queue: "q", Payload: []byte("p"), Headers: map[string]string{"k": "v"}, State: StateReady}
	f.Add(encodeRecord(nil, &m))
	f.Add([]byte{})
	f.Add([]byte{1, 1, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeRecord(ID{}, b)
		if err != nil {
			return
		}
		if again := encodeRecord(nil, &m); !bytes.Equal(again, b) {
			t.Fatalf("accepted a record that does not re-encode to itself")
		}
	})
}

func TestTruncateKeepsUTF8(t *testing.T) {
	for _, tc := range []struct {
		s    string
		n    int
		want string
	}{
		{"abc", 5, "abc"},
		{"abc", 2, "ab"},
		{"aé", 2, "a"}, // é is two bytes: not split
		{"aé", 3, "aé"},
		{"€", 2, ""},
	} {
		if got := truncate(tc.s, tc.n); got != tc.want {
			t.Errorf("truncate(%q, %d) = %q, want %q", tc.s, tc.n, got, tc.want)
		}
	}
}

func TestDueKeyOrdersByTime(t *testing.T) {
	times := []time.Time{
		time.Date(1960, 1, 1, 0, 0, 0, 0, time.UTC), // before 1970: negative nanoseconds
		{},
		time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2026, 1, 1, 0, 0, 0, 1, time.UTC),
	}
	// The zero time encodes as 0 (1970), between the two.
	order := []int{0, 1, 2, 3}
	for i := 1; i < len(order); i++ {
		a, b := dueKey("q", times[order[i-1]], ID{}), dueKey("q", times[order[i]], ID{})
		if bytes.Compare(a, b) >= 0 {
			t.Fatalf("due key of %v does not sort before %v", times[order[i-1]], times[order[i]])
		}
		if got := dueTime(b, 2); !got.Equal(times[order[i]]) {
			t.Fatalf("dueTime = %v, want %v", got, times[order[i]])
		}
	}
}

func TestBatchSurvivesOneAbortingWrite(t *testing.T) {
	// A write that aborts its transaction (not a refusal) must not take
	// the writes batched with it down: they are retried one by one.
	s, err := OpenBolt(filepath.Join(t.TempDir(), "x.db"), Options{MaxBatchDelay: 20 * time.Millisecond, MaxBatchSize: 16})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	boom := errors.New("boom")
	var wg sync.WaitGroup
	results := make([]error, 16)
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i == 7 {
				results[i] = s.do(ctx, func(tx *bolt.Tx) (bool, error) {
					_ = tx.Bucket(bucketMsg).Put([]byte("half-done"), []byte("x"))
					return true, boom
				})
				return
			}
			_, results[i] = s.Put(ctx, Message{Queue: "q"})
		}()
	}
	wg.Wait()
	for i, err := range results {
		if i == 7 {
			if !errors.Is(err, boom) {
				t.Fatalf("the aborting write got %v, want its own error", err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("write %d failed with its batch: %v", i, err)
		}
	}
	if err := s.Verify(ctx); err != nil {
		t.Fatalf("the aborted write left something behind: %v", err)
	}
	if st, _ := s.Stats(ctx); len(st) != 1 || st[0].Ready != 15 {
		t.Fatalf("Stats = %+v, want 15 messages", st)
	}
}

package hedge

import (
	"math"
	"testing"
)

func TestRelativeErrorMatchesBuckets(t *testing.T) {
	if RelativeError != 1.0/(2*subBuckets) {
		t.Fatalf("RelativeError = %v, but buckets of 1/%d of their lower bound give 1/%d", RelativeError, subBuckets, 2*subBuckets)
	}
}

// The buckets tile [0, maxTracked] in order, each value's bucket reports a
// value within RelativeError of it, and the last bucket is the last index.
func TestBucketsTile(t *testing.T) {
	prev := -1
	check := func(v int64) {
		i := bucketOf(v)
		if i < prev || i > prev+1 {
			t.Fatalf("bucketOf(%d) = %d after %d: not contiguous", v, i, prev)
		}
		prev = i
		if got := bucketValue(i); math.Abs(float64(got-v)) > float64(v)*RelativeError {
			t.Fatalf("bucket %d of %d reports %d: off by more than %v", i, v, got, RelativeError)
		}
	}
	for v := int64(0); v < 1<<14; v++ {
		check(v)
	}
	// Past 2¹⁴, each bucket's edges.
	for s := 10; s+subBits+1 <= maxBits; s++ {
		for top := int64(subBuckets); top < 2*subBuckets; top++ {
			lo := top << s
			check(lo)
			check(lo + 1<<s - 1)
		}
	}
	if prev != numBuckets-1 || bucketOf(maxTracked) != numBuckets-1 || bucketOf(math.MaxInt64) != numBuckets-1 {
		t.Fatalf("last bucket %d, bucketOf(max) %d, want %d", prev, bucketOf(maxTracked), numBuckets-1)
	}
	if bucketOf(-5) != 0 {
		t.Fatalf("bucketOf(-5) = %d, want 0", bucketOf(-5))
	}
}

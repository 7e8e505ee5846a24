package sluiceredis

// Unbatched makes l send one script call per round trip, as it did before
// calls were batched: the baseline the benchmarks compare batching with.
func Unbatched(l *Limiter) { l.batch.single = true }

//go:build race

package stripe

// raceEnabled: under the race detector the marker variable of stackHint is
// moved to the heap, so the stack hint no longer tells goroutines apart
// (the counter stays correct: contention falls back to random cells).
const raceEnabled = true

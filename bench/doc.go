// Package bench measures sluice against its peers — failsafe-go, sony/gobreaker,
// golang.org/x/time/rate and cenkalti/backoff — side by side in one run. It is
// its own module so that the library never depends on them.
//
// Benchmarks are named Benchmark<Case>/<library> and run their bodies under
// b.RunParallel, so -cpu 1 measures one caller and -cpu 2 contention:
//
//	go test -run '^$' -bench . -benchmem -count 5 -cpu 1,2 .
package bench

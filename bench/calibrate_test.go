package bench

import "testing"

// BenchmarkCalibrate measures what -cpu 2 gives on this machine for work that
// shares nothing: a loop over a local. Its cpu2/cpu1 ratio is the best any
// @par figure can reach here (0.5 on two idle cores; nearer 1 when the two
// vCPUs are hyperthreads of one core or the host is busy), so the par
// targets are read against it.
func BenchmarkCalibrate(b *testing.B) {
	b.Run("noshare", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			x := uint64(1)
			for pb.Next() {
				for range 8 {
					x ^= x << 13
					x ^= x >> 7
					x ^= x << 17
				}
			}
			if x == 0 {
				b.Log(x)
			}
		})
	})
}

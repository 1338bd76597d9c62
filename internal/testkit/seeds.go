package testkit

import (
	"fmt"
	"sync"
	"testing"
)

// Seeds runs run as one subtest per seed first, first+1, ..., first+n-1,
// named prefix followed by the seed (so a failure names the seed that
// rebuilds it), workers at a time: the seeded tests wait on the database
// far more than on the CPU. It returns the sum of what the runs returned
// (operations, comparisons), for the test's log.
func Seeds(t *testing.T, prefix string, first uint64, n, workers int, run func(t *testing.T, seed uint64) int) int {
	t.Helper()
	var (
		mu    sync.Mutex
		total int
		wg    sync.WaitGroup
	)
	for w := range max(workers, 1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += max(workers, 1) {
				seed := first + uint64(i)
				t.Run(fmt.Sprint(prefix, seed), func(t *testing.T) {
					c := run(t, seed)
					mu.Lock()
					total += c
					mu.Unlock()
				})
			}
		}()
	}
	wg.Wait()
	return total
}

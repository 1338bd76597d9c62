package testkit_test

import (
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/civicstack/townhall/internal/testkit"
)

// TestSeeds_RunsEverySeedOnceAndSums: each seed of the range runs exactly
// once, in a subtest named after it, and the returned counts add up.
func TestSeeds_RunsEverySeedOnceAndSums(t *testing.T) {
	var mu sync.Mutex
	seen := map[uint64]string{}
	total := testkit.Seeds(t, "s", 100, 10, 3, func(t *testing.T, seed uint64) int {
		mu.Lock()
		defer mu.Unlock()
		_, again := seen[seed]
		assert.False(t, again, "seed %d ran twice", seed)
		seen[seed] = t.Name()
		return int(seed)
	})
	want := 0
	for seed := uint64(100); seed < 110; seed++ {
		want += int(seed)
		assert.Equal(t, fmt.Sprintf("%s/s%d", t.Name(), seed), seen[seed])
	}
	assert.Len(t, seen, 10)
	assert.Equal(t, want, total)
	assert.Zero(t, testkit.Seeds(t, "none", 0, 0, 4, func(*testing.T, uint64) int { return 1 }))
}

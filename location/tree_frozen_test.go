package location

import (
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestTree_FreezeMakesImmutableAndCloneWritable(t *testing.T) {
	tr := NewTree()
	require.NoError(t, tr.Add(Location{ID: "R", Level: "region"}))
	require.NoError(t, tr.Add(Location{ID: "M", Level: Municipality, ParentID: "R"}))
	require.NoError(t, tr.Add(Location{ID: "V", Level: "village", ParentID: "M"}))
	frozen := tr.Freeze()

	assert.ErrorIs(t, frozen.Add(Location{ID: "X", Level: "region"}), ErrFrozen)
	assert.ErrorIs(t, frozen.Move("V", "R"), ErrFrozen)
	frozen.Remove("M")
	_, ok := frozen.Get("M")
	assert.True(t, ok, "Remove does nothing on a frozen tree")

	c := frozen.Clone()
	require.NoError(t, c.Move("V", "R"))
	assert.True(t, frozen.IsWithin("V", "M"), "the frozen original is unchanged")
	assert.False(t, c.IsWithin("V", "M"))

	v, _ := frozen.Index("V")
	m, _ := frozen.Index("M")
	r, _ := frozen.Index("R")
	assert.Equal(t, m, frozen.ParentIndex(v))
	assert.Equal(t, 2, frozen.DepthIndex(v))
	assert.Equal(t, m, frozen.MunicipalityIndex(v))
	assert.Equal(t, int32(-1), frozen.MunicipalityIndex(r))
	assert.Equal(t, "village", frozen.LevelIndex(v))
	assert.Equal(t, "V", frozen.IDIndex(v))
	assert.Equal(t, int32(-1), frozen.ParentIndex(99), "out of range")
	assert.Equal(t, r, c.ParentIndex(v), "indexes are shared by clones")
}

func TestTree_FrozenReadsAreRaceFree(t *testing.T) {
	tr := NewTree()
	require.NoError(t, tr.Add(Location{ID: "R", Level: "region"}))
	require.NoError(t, tr.Add(Location{ID: "M", Level: Municipality, ParentID: "R"}))
	frozen := tr.Freeze()
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 1000 {
				assert.True(t, frozen.IsWithin("M", "R"))
			}
		}()
	}
	wg.Wait()
}

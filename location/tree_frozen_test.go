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

// Lineage is IsWithinIndex either way with the depth difference;
// NameIndex names removed locations too.
func TestView_LineageNameIndexAndNumbering(t *testing.T) {
	tr := NewTree()
	for _, l := range []Location{
		{ID: "R", Level: "region"},
		{ID: "D1", Level: "district", ParentID: "R"},
		{ID: "D2", Level: "district", ParentID: "R"},
		{ID: "M", Level: Municipality, ParentID: "D1"},
		{ID: "V", Level: "village", ParentID: "M"},
	} {
		require.NoError(t, tr.Add(l))
	}
	v := tr.Freeze().View()
	ix := func(id string) int32 { i, ok := v.Index(id); require.True(t, ok, id); return i }
	for _, c := range []struct {
		x, y    string
		levels  int
		related bool
	}{
		{"V", "R", 3, true}, {"R", "V", 3, true}, {"M", "M", 0, true},
		{"D1", "M", 1, true}, {"V", "D2", 0, false}, {"D2", "D1", 0, false},
	} {
		levels, related := v.Lineage(ix(c.x), ix(c.y))
		assert.Equal(t, c.related, related, "%s, %s", c.x, c.y)
		assert.Equal(t, c.related, v.IsWithinIndex(ix(c.x), ix(c.y)) || v.IsWithinIndex(ix(c.y), ix(c.x)), "%s, %s", c.x, c.y)
		if c.related {
			assert.Equal(t, c.levels, levels, "%s, %s", c.x, c.y)
		}
	}
	_, related := v.Lineage(ix("V"), 99)
	assert.False(t, related, "out of range")

	c := tr.Clone()
	c.Remove("M")
	cv := c.Freeze().View()
	_, related = cv.Lineage(ix("V"), ix("R"))
	assert.False(t, related, "removed locations are related to nothing")
	assert.Equal(t, "", cv.IDIndex(ix("M")))
	assert.Equal(t, "M", cv.NameIndex(ix("M")), "a removed index still names its location")
	assert.Equal(t, "", cv.NameIndex(99))
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

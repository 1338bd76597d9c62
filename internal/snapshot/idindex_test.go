package snapshot

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// tableIDs are short IDs (held in slots), IDs just over the inline length
// and IDs far over it, which differ only after the inline prefix.
func tableIDs(n int) []string {
	ids := make([]string, 0, n)
	for i := range n {
		switch i % 3 {
		case 0:
			ids = append(ids, fmt.Sprintf("u%d", i))
		case 1:
			ids = append(ids, fmt.Sprintf("%s%d", strings.Repeat("x", idInline), i))
		default:
			ids = append(ids, fmt.Sprintf("%s%d", strings.Repeat("y", 300), i))
		}
	}
	return ids
}

func TestUserTable_FindsEveryIDAndKeepsIndexesAcrossChanges(t *testing.T) {
	ids := tableIDs(3000)
	tab := newUserTable()
	for _, id := range ids {
		tab.put(id, &UserState{Active: true}, nil)
	}
	idx := map[string]uint32{}
	for _, id := range ids {
		u, ok := tab.Get(id)
		require.True(t, ok, id)
		require.Equal(t, id, u.ID)
		idx[id] = u.Idx
	}
	_, ok := tab.Get("u99999")
	assert.False(t, ok, "an unknown ID")
	_, ok = tab.Get(ids[1][:idInline])
	assert.False(t, ok, "a prefix of a long ID")

	// Remove every tenth user, change every seventh, add new ones.
	changes := map[string]*UserState{}
	for i, id := range ids {
		switch {
		case i%10 == 0:
			changes[id] = nil
		case i%7 == 0:
			changes[id] = &UserState{}
		}
	}
	added := tableIDs(3600)[3000:]
	for _, id := range added {
		changes[id] = &UserState{Active: true}
	}
	next := tab.With(changes)

	for i, id := range ids {
		u, ok := next.Get(id)
		if i%10 == 0 {
			assert.False(t, ok, "removed %s", id)
			assert.Nil(t, next.At(idx[id]), "a removed user's index holds nothing")
			continue
		}
		require.True(t, ok, id)
		assert.Equal(t, idx[id], u.Idx, "an index never changes")
		assert.Equal(t, i%7 != 0, u.Active, id)
		assert.Same(t, u, next.At(u.Idx))
	}
	seen := map[uint32]bool{}
	for _, id := range added {
		u, ok := next.Get(id)
		require.True(t, ok, id)
		assert.GreaterOrEqual(t, u.Idx, uint32(3000), "new users get new indexes")
		assert.False(t, seen[u.Idx])
		seen[u.Idx] = true
	}
	n := 0
	next.Each(func(string, *UserState) bool { n++; return true })
	assert.Equal(t, 3000-300+600, n)

	// The published table is unchanged.
	for _, id := range ids {
		u, ok := tab.Get(id)
		require.True(t, ok, id)
		assert.True(t, u.Active, id)
	}
	_, ok = tab.Get(added[0])
	assert.False(t, ok)
}

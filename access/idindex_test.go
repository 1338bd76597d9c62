package access

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
		tab.put(id, &userState{active: true}, nil)
	}
	idx := map[string]uint32{}
	for _, id := range ids {
		u, ok := tab.get(id)
		require.True(t, ok, id)
		require.Equal(t, id, u.id)
		idx[id] = u.idx
	}
	_, ok := tab.get("u99999")
	assert.False(t, ok, "an unknown ID")
	_, ok = tab.get(ids[1][:idInline])
	assert.False(t, ok, "a prefix of a long ID")

	// Remove every tenth user, change every seventh, add new ones.
	changes := map[string]*userState{}
	for i, id := range ids {
		switch {
		case i%10 == 0:
			changes[id] = nil
		case i%7 == 0:
			changes[id] = &userState{}
		}
	}
	added := tableIDs(3600)[3000:]
	for _, id := range added {
		changes[id] = &userState{active: true}
	}
	next := tab.with(changes)

	for i, id := range ids {
		u, ok := next.get(id)
		if i%10 == 0 {
			assert.False(t, ok, "removed %s", id)
			assert.Nil(t, next.at(idx[id]), "a removed user's index holds nothing")
			continue
		}
		require.True(t, ok, id)
		assert.Equal(t, idx[id], u.idx, "an index never changes")
		assert.Equal(t, i%7 != 0, u.active, id)
		assert.Same(t, u, next.at(u.idx))
	}
	seen := map[uint32]bool{}
	for _, id := range added {
		u, ok := next.get(id)
		require.True(t, ok, id)
		assert.GreaterOrEqual(t, u.idx, uint32(3000), "new users get new indexes")
		assert.False(t, seen[u.idx])
		seen[u.idx] = true
	}
	n := 0
	next.each(func(string, *userState) bool { n++; return true })
	assert.Equal(t, 3000-300+600, n)

	// The published table is unchanged.
	for _, id := range ids {
		u, ok := tab.get(id)
		require.True(t, ok, id)
		assert.True(t, u.active, id)
	}
	_, ok = tab.get(added[0])
	assert.False(t, ok)
}

package location_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/civicstack/townhall/location"
)

func memTree(t *testing.T, locs ...location.Location) *location.Tree {
	t.Helper()
	tr := location.NewTree()
	for _, l := range locs {
		require.NoError(t, tr.Add(l))
	}
	return tr
}

func sampleLocations() []location.Location {
	return []location.Location{
		loc("R1", "region", ""),
		loc("R2", "region", ""),
		loc("D1", "district", "R1"),
		loc("D2", "district", "R2"),
		loc("M1", "municipality", "D1"),
		loc("V1", "village", "M1"),
		loc("V2", "village", "D1"),
		loc("M3", "municipality", "R1"),
	}
}

func TestTree_Queries(t *testing.T) {
	tr := memTree(t, sampleLocations()...)
	assert.Equal(t, 8, tr.Len())

	within := []struct {
		x, y string
		want bool
	}{
		{"V1", "V1", true},
		{"V1", "M1", true},
		{"V1", "D1", true},
		{"V1", "R1", true},
		{"V1", "R2", false},
		{"V2", "M1", false},
		{"M1", "V1", false},
		{"R1", "D1", false},
		{"D2", "R2", true},
		{"nope", "R1", false},
		{"R1", "nope", false},
		{"v1", "M1", false},
	}
	for _, w := range within {
		assert.Equal(t, w.want, tr.IsWithin(w.x, w.y), "%s within %s", w.x, w.y)
		xi, xok := tr.Index(w.x)
		yi, yok := tr.Index(w.y)
		if xok && yok {
			assert.Equal(t, w.want, tr.IsWithinIndex(xi, yi), "%s within %s by index", w.x, w.y)
		}
	}
	assert.False(t, tr.IsWithinIndex(-1, 0))
	assert.False(t, tr.IsWithinIndex(0, 1000))

	got, ok := tr.Get("M1")
	require.True(t, ok)
	assert.Equal(t, loc("M1", "municipality", "D1"), got)
	_, ok = tr.Get("nope")
	assert.False(t, ok)

	lvl, ok := tr.Level("V2")
	assert.True(t, ok)
	assert.Equal(t, "village", lvl)
	p, ok := tr.Parent("R1")
	assert.True(t, ok)
	assert.Equal(t, "", p)
	p, ok = tr.Parent("V1")
	assert.True(t, ok)
	assert.Equal(t, "M1", p)
	d, ok := tr.Depth("V1")
	assert.True(t, ok)
	assert.Equal(t, 3, d)
	_, ok = tr.Depth("nope")
	assert.False(t, ok)

	m, ok := tr.MunicipalityOf("V1")
	assert.True(t, ok)
	assert.Equal(t, "M1", m)
	m, ok = tr.MunicipalityOf("M3")
	assert.True(t, ok)
	assert.Equal(t, "M3", m)
	_, ok = tr.MunicipalityOf("V2")
	assert.False(t, ok, "V2 skips the municipality level")
	_, ok = tr.MunicipalityOf("nope")
	assert.False(t, ok)

	assert.Equal(t, []string{"M1", "D1", "R1"}, tr.Ancestors("V1"))
	assert.Empty(t, tr.Ancestors("R1"))
	assert.Nil(t, tr.Ancestors("nope"))
	assert.Equal(t, []string{"D1", "M3"}, tr.Children("R1"))
	assert.Empty(t, tr.Children("V1"))
	assert.Equal(t, []string{"D1", "D2", "M1", "M3", "R1", "R2", "V1", "V2"}, ids(tr.Locations()))
}

func TestTree_AddRejectsBadInput(t *testing.T) {
	tr := memTree(t, sampleLocations()...)
	assert.ErrorIs(t, tr.Add(loc("R1", "region", "")), location.ErrDuplicate)
	assert.ErrorIs(t, tr.Add(loc("X", "village", "nope")), location.ErrNotFound)
	assert.ErrorIs(t, tr.Add(loc("", "village", "")), location.ErrInvalidInput)
	assert.ErrorIs(t, tr.Add(loc("a b", "village", "")), location.ErrInvalidInput)
	assert.Equal(t, 8, tr.Len())
}

func TestTree_Move(t *testing.T) {
	tr := memTree(t, sampleLocations()...)
	sizes := func() []int {
		var n []int
		for _, id := range []string{"R1", "R2", "D1", "M1", "M3", "nope"} {
			n = append(n, tr.SubtreeSize(id))
		}
		return n
	}
	assert.Equal(t, []int{6, 2, 4, 2, 1, 0}, sizes(), "subtree sizes of R1, R2, D1, M1, M3, nope")
	require.NoError(t, tr.Move("D1", "R2"))
	assert.Equal(t, []int{2, 6, 4, 2, 1, 0}, sizes(), "after moving D1 under R2")
	assert.True(t, tr.IsWithin("V1", "R2"))
	assert.False(t, tr.IsWithin("V1", "R1"))
	assert.Equal(t, []string{"M1", "D1", "R2"}, tr.Ancestors("V1"))
	assert.Equal(t, []string{"M3"}, tr.Children("R1"))
	assert.Equal(t, []string{"D1", "D2"}, tr.Children("R2"))

	require.NoError(t, tr.Move("M1", ""))
	d, _ := tr.Depth("V1")
	assert.Equal(t, 1, d)
	m, ok := tr.MunicipalityOf("V1")
	assert.True(t, ok)
	assert.Equal(t, "M1", m)
	require.NoError(t, tr.Move("V1", "M3"))
	m, _ = tr.MunicipalityOf("V1")
	assert.Equal(t, "M3", m)
	require.NoError(t, tr.Move("V1", "M3"), "same parent")
	assert.Equal(t, []int{3, 4, 2, 1, 2, 0}, sizes(), "after moving M1 to the top and V1 under M3")

	assert.ErrorIs(t, tr.Move("R2", "R2"), location.ErrCycle)
	assert.ErrorIs(t, tr.Move("R2", "V2"), location.ErrCycle)
	assert.ErrorIs(t, tr.Move("nope", "R2"), location.ErrNotFound)
	assert.ErrorIs(t, tr.Move("D1", "nope"), location.ErrNotFound)
	p, _ := tr.Parent("R2")
	assert.Equal(t, "", p, "refused moves change nothing")
}

func TestTree_Remove(t *testing.T) {
	tr := memTree(t, sampleLocations()...)
	mi, ok := tr.Index("M1")
	require.True(t, ok)
	di, ok := tr.Index("D1")
	require.True(t, ok)
	tr.Remove("D1", "nope")
	assert.Equal(t, 4, tr.Len())
	assert.Equal(t, 2, tr.SubtreeSize("R1"), "R1 keeps itself and M3")
	assert.Equal(t, 0, tr.SubtreeSize("D1"))
	for _, id := range []string{"D1", "M1", "V1", "V2"} {
		_, ok := tr.Get(id)
		assert.False(t, ok, id)
		assert.False(t, tr.IsWithin(id, "R1"), id)
		assert.False(t, tr.IsWithin(id, id), id)
	}
	assert.False(t, tr.IsWithinIndex(mi, di), "indexes of removed locations lie nowhere")
	assert.Equal(t, []string{"M3"}, tr.Children("R1"))
	tr.Remove("D1", "M1") // already gone
	assert.Equal(t, 4, tr.Len())

	require.NoError(t, tr.Add(loc("M1", "municipality", "R2")), "the Tree does not police ID reuse; the Store does")
	ni, _ := tr.Index("M1")
	assert.NotEqual(t, mi, ni, "indexes are never reused")
	assert.Equal(t, 3, tr.SubtreeSize("R2"))

	// A child listed before its parent: all of R2 leaves, R1 is untouched.
	tr.Remove("D2", "R2")
	assert.Equal(t, 2, tr.Len())
	assert.Equal(t, 0, tr.SubtreeSize("R2"))
	assert.Equal(t, 2, tr.SubtreeSize("R1"))
}

func TestTree_ApplyAndClone(t *testing.T) {
	tr := memTree(t, sampleLocations()...)
	clone := tr.Clone()
	require.NoError(t, tr.Apply(location.Change{Kind: location.ChangeCreated, Location: loc("V3", "village", "M3")}))
	require.NoError(t, tr.Apply(location.Change{Kind: location.ChangeMoved, Location: loc("D1", "district", "R2")}))
	require.NoError(t, tr.Apply(location.Change{Kind: location.ChangeDeleted, Location: loc("M3", "", ""), Deleted: []string{"M3", "V3"}}))
	require.NoError(t, tr.Apply(location.Change{Kind: location.ChangeDeleted, Location: loc("V2", "", "")}))
	assert.ErrorIs(t, tr.Apply(location.Change{Kind: "renamed"}), location.ErrInvalidInput)
	assert.ErrorIs(t, tr.Apply(location.Change{Kind: location.ChangeMoved, Location: loc("R2", "region", "V1")}), location.ErrCycle)

	assert.Equal(t, []string{"D1", "D2", "M1", "R1", "R2", "V1"}, ids(tr.Locations()))
	assert.True(t, tr.IsWithin("V1", "R2"))
	assert.ElementsMatch(t, ids(sampleLocations()), ids(clone.Locations()), "the clone is unaffected")
	assert.True(t, clone.IsWithin("V1", "R1"))
}

func TestTree_ApplyRecordsTheHighestVersion(t *testing.T) {
	tr := memTree(t, sampleLocations()...)
	require.Zero(t, tr.Version())
	require.NoError(t, tr.Apply(location.Change{Kind: location.ChangeCreated, Location: loc("V3", "village", "M3"), Version: 1}))
	assert.Equal(t, int64(1), tr.Version())
	require.NoError(t, tr.Apply(location.Change{Kind: location.ChangeMoved, Location: loc("D1", "district", "R2"), Version: 3}))
	assert.True(t, tr.IsWithin("D1", "R2"))
	assert.Equal(t, int64(3), tr.Version())
	require.NoError(t, tr.Apply(location.Change{Kind: location.ChangeDeleted, Location: loc("V3", "", "")}),
		"unversioned changes apply and leave the version alone")
	_, ok := tr.Get("V3")
	assert.False(t, ok)
	assert.Equal(t, int64(3), tr.Version())
	assert.Equal(t, int64(3), tr.Clone().Version())

	err := tr.Apply(location.Change{Kind: location.ChangeMoved, Location: loc("R2", "region", "V1"), Version: 4})
	assert.ErrorIs(t, err, location.ErrCycle)
	assert.Equal(t, int64(3), tr.Version(), "a refused change does not move the version")
}

// Readers run while a writer moves subtrees back and forth; under -race this
// checks the locking, and every answer must be one of the two states.
func TestTree_ConcurrentReadersAndWriter(t *testing.T) {
	tr := memTree(t, sampleLocations()...)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for r := 0; r < 4; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				// Each call sees the tree before or after a move,
				// never halfway.
				anc := tr.Ancestors("V1")
				if len(anc) != 3 || anc[0] != "M1" || anc[1] != "D1" || (anc[2] != "R1" && anc[2] != "R2") {
					t.Errorf("ancestors of V1 = %v", anc)
					return
				}
				if !tr.IsWithin("V1", "D1") {
					t.Errorf("V1 left D1")
					return
				}
			}
		}()
	}
	for i := 0; i < 2000; i++ {
		to := []string{"R1", "R2"}[i%2]
		require.NoError(t, tr.Move("D1", to))
	}
	close(stop)
	wg.Wait()
}

// A random sequence of creates, moves and deletes through the Store, with a
// Tree kept in step by WithOnChange: the incremental Tree must equal a
// fresh LoadTree, IsWithin must agree with the closure table for every
// pair, and the closure table must be exact.
func TestTree_StaysInStepWithTheStore(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	tr := location.NewTree()
	var applyErr error
	s := e.store(t, location.WithOnChange(func(c location.Change) {
		if err := tr.Apply(c); err != nil && applyErr == nil {
			applyErr = err
		}
	}))
	levels := s.Levels()
	rank := map[string]int{}
	for i, l := range levels {
		rank[l] = i
	}
	rng := rand.New(rand.NewSource(20240611))
	var live []string
	pick := func() string { return live[rng.Intn(len(live))] }
	refresh := func() {
		live = live[:0]
		for _, l := range tr.Locations() {
			live = append(live, l.ID)
		}
	}

	const ops = 300
	var created, moved, deleted, refused int
	for i := 0; i < ops; i++ {
		op := rng.Intn(20)
		switch {
		case op < 11 || len(live) < 3: // create, sometimes with a level that does not fit
			parent := ""
			if len(live) > 0 && rng.Intn(8) > 0 {
				parent = pick()
			}
			level := levels[rng.Intn(len(levels))]
			if pl, ok := tr.Level(parent); ok && rng.Intn(6) > 0 && rank[pl] < len(levels)-1 {
				level = levels[rank[pl]+1+rng.Intn(len(levels)-1-rank[pl])]
			}
			_, err := s.Create(ctx, location.Location{ID: fmt.Sprintf("n%d", i), Level: level, ParentID: parent})
			if err != nil {
				require.ErrorIs(t, err, location.ErrInvalidLevel)
				refused++
			} else {
				created++
			}
		case op < 19: // move, sometimes under its own subtree or to the top
			id, parent := pick(), pick()
			if rng.Intn(6) == 0 {
				parent = ""
			}
			err := s.Move(ctx, id, parent)
			switch {
			case err == nil:
				moved++
			case errors.Is(err, location.ErrCycle):
				require.True(t, tr.IsWithin(parent, id), "cycle reported for %s under %s", id, parent)
				refused++
			default:
				require.ErrorIs(t, err, location.ErrInvalidLevel)
				refused++
			}
		default:
			require.NoError(t, s.Delete(ctx, pick()))
			deleted++
		}
		require.NoError(t, applyErr)
		refresh()
		if i%100 == 99 {
			assertTreeMatches(t, e, tr)
		}
	}
	t.Logf("%d created, %d moved, %d deleted, %d refused, %d live", created, moved, deleted, refused, len(live))
	require.Greater(t, moved, 10)
	require.Greater(t, deleted, 5)
	require.Greater(t, refused, 10)
	assertTreeMatches(t, e, tr)
}

func assertTreeMatches(t *testing.T, e env, tr *location.Tree) {
	t.Helper()
	fresh, err := location.LoadTree(context.Background(), e.db)
	require.NoError(t, err)
	all := fresh.Locations()
	require.Equal(t, all, tr.Locations())
	assert.Equal(t, fresh.Version(), tr.Version())
	for _, l := range all {
		wd, _ := fresh.Depth(l.ID)
		gd, _ := tr.Depth(l.ID)
		assert.Equal(t, wd, gd, "depth of %s", l.ID)
		wm, wok := fresh.MunicipalityOf(l.ID)
		gm, gok := tr.MunicipalityOf(l.ID)
		assert.Equal(t, wok, gok, "municipality of %s", l.ID)
		assert.Equal(t, wm, gm, "municipality of %s", l.ID)
		assert.Equal(t, fresh.Ancestors(l.ID), tr.Ancestors(l.ID), "ancestors of %s", l.ID)
		assert.Equal(t, fresh.Children(l.ID), tr.Children(l.ID), "children of %s", l.ID)
	}
	closure := map[[2]string]bool{}
	size := map[string]int{}
	for _, p := range paths(t, e) {
		closure[[2]string{p.DescendantID, p.AncestorID}] = true
		size[p.AncestorID]++
	}
	for _, l := range all {
		assert.Equal(t, size[l.ID], tr.SubtreeSize(l.ID), "subtree size of %s", l.ID)
		assert.Equal(t, size[l.ID], fresh.SubtreeSize(l.ID), "subtree size of %s (fresh)", l.ID)
	}
	mismatches := 0
	for _, x := range all {
		for _, y := range all {
			if tr.IsWithin(x.ID, y.ID) != closure[[2]string{x.ID, y.ID}] {
				mismatches++
			}
		}
	}
	assert.Zero(t, mismatches, "IsWithin disagrees with the closure table")
	assertClosureExact(t, e)
}

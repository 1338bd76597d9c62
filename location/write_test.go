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
	"gorm.io/gorm"

	"github.com/civicstack/townhall/audit"
	"github.com/civicstack/townhall/internal/dbx"
	"github.com/civicstack/townhall/internal/txwrite"
	"github.com/civicstack/townhall/location"
)

// sampleTree creates
//
//	R1 (region)          R2 (region)
//	├── D1 (district)    └── D2 (district)
//	│   ├── M1 (municipality)
//	│   │   └── V1 (village)
//	│   └── V2 (village)
//	└── M3 (municipality)
func sampleTree(t *testing.T, s *location.Store) {
	t.Helper()
	mustCreate(t, s, sampleLocations()...)
}

func TestMove_MovesTheSubtree(t *testing.T) {
	ctx := context.Background()
	s, e := newStore(t)
	sampleTree(t, s)

	require.NoError(t, s.Move(ctx, "D1", "R2"))
	got, err := s.Get(ctx, "D1")
	require.NoError(t, err)
	assert.Equal(t, "R2", got.ParentID)
	anc, err := s.Ancestors(ctx, "V1")
	require.NoError(t, err)
	assert.Equal(t, []string{"M1", "D1", "R2"}, ids(anc))
	desc, err := s.Descendants(ctx, "R1")
	require.NoError(t, err)
	assert.Equal(t, []string{"M3"}, ids(desc))
	desc, err = s.Descendants(ctx, "R2")
	require.NoError(t, err)
	assert.Equal(t, []string{"D1", "D2", "M1", "V2", "V1"}, ids(desc))
	evs := events(t, e, audit.TypeLocationMoved, "D1")
	require.Len(t, evs, 1)
	assert.Equal(t, "R1", evs[0].Details["from"])
	assert.Equal(t, "R2", evs[0].Details["to"])
	assertClosureExact(t, e)

	// Deeper: the municipality under another district, then top-level.
	require.NoError(t, s.Move(ctx, "M1", "D2"))
	anc, err = s.Ancestors(ctx, "V1")
	require.NoError(t, err)
	assert.Equal(t, []string{"M1", "D2", "R2"}, ids(anc))
	require.NoError(t, s.Move(ctx, "M1", ""))
	anc, err = s.Ancestors(ctx, "V1")
	require.NoError(t, err)
	assert.Equal(t, []string{"M1"}, ids(anc))
	got, err = s.Get(ctx, "M1")
	require.NoError(t, err)
	assert.Equal(t, "", got.ParentID)
	m, err := s.MunicipalityOf(ctx, "V1")
	require.NoError(t, err)
	assert.Equal(t, "M1", m.ID)
	assertClosureExact(t, e)

	// A top-level location moves under another (levels allowing).
	require.NoError(t, s.Move(ctx, "M1", "D1"))
	anc, err = s.Ancestors(ctx, "V1")
	require.NoError(t, err)
	assert.Equal(t, []string{"M1", "D1", "R2"}, ids(anc))
	assertClosureExact(t, e)

	// Moving to the current parent changes nothing and records nothing.
	before := dump(t, e)
	require.NoError(t, s.Move(ctx, "M1", "D1"))
	assert.Equal(t, before, dump(t, e))
}

func TestMove_RefusalsChangeNothing(t *testing.T) {
	ctx := context.Background()
	s, e := newStore(t)
	sampleTree(t, s)
	mustCreate(t, s, loc("gone", "region", ""))
	require.NoError(t, s.Delete(ctx, "gone"))

	tests := []struct {
		name, id, parent string
		want             error
	}{
		{"under itself", "D1", "D1", location.ErrCycle},
		{"under its child", "D1", "M1", location.ErrCycle},
		{"under its grandchild", "R1", "V1", location.ErrCycle},
		{"top-level under own descendant", "R1", "D1", location.ErrCycle},
		{"unknown location", "nope", "R1", location.ErrNotFound},
		{"deleted location", "gone", "R1", location.ErrNotFound},
		{"unknown parent", "D1", "nope", location.ErrNotFound},
		{"deleted parent", "D1", "gone", location.ErrNotFound},
		{"parent ID is case-sensitive", "D1", "r2", location.ErrNotFound},
		{"under the same level", "D1", "D2", location.ErrInvalidLevel},
		{"under a deeper level", "M1", "V2", location.ErrInvalidLevel},
		{"region under district", "R1", "D2", location.ErrInvalidLevel},
		{"malformed ID", "D 1", "R2", location.ErrInvalidInput},
		{"malformed parent", "D1", "R2;", location.ErrInvalidInput},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := dump(t, e)
			err := s.Move(ctx, tt.id, tt.parent)
			assert.ErrorIs(t, err, tt.want)
			assert.Equal(t, before, dump(t, e))
		})
	}
}

// A deep node of the moved subtree that violates the configured levels
// refuses the move even when the subtree's root fits: here a store whose
// levels put "village" above "district" meets a tree built with the
// default levels.
func TestMove_RevalidatesEveryLevelOfTheSubtree(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	s := e.store(t)
	mustCreate(t, s,
		loc("R1", "region", ""),
		loc("R2", "region", ""),
		loc("D1", "district", "R1"),
		loc("V1", "village", "D1"),
		loc("D2", "district", "R1"),
		loc("M2", "municipality", "D2"),
	)
	reordered := e.store(t, location.WithLevels("region", "village", "district", "municipality"))
	before := dump(t, e)
	err := reordered.Move(ctx, "D1", "R2")
	assert.ErrorIs(t, err, location.ErrInvalidLevel, "V1 (village) under D1 (district) is now upside down")
	assert.Equal(t, before, dump(t, e))

	missing := e.store(t, location.WithLevels("region", "district", "municipality"))
	err = missing.Move(ctx, "D1", "R2")
	assert.ErrorIs(t, err, location.ErrInvalidLevel, "village is no longer a level")
	assert.Equal(t, before, dump(t, e))

	require.NoError(t, reordered.Move(ctx, "D2", "R2"), "D2's subtree fits the new order")
	assertClosureExact(t, e)
}

func TestDelete_RemovesTheSubtree(t *testing.T) {
	ctx := context.Background()
	s, e := newStore(t)
	sampleTree(t, s)

	require.NoError(t, s.Delete(ctx, "D1"))
	for _, id := range []string{"D1", "M1", "V1", "V2"} {
		_, err := s.Get(ctx, id)
		assert.ErrorIs(t, err, location.ErrNotFound, id)
		_, err = s.Ancestors(ctx, id)
		assert.ErrorIs(t, err, location.ErrNotFound, id)
		_, err = s.Descendants(ctx, id)
		assert.ErrorIs(t, err, location.ErrNotFound, id)
		_, err = s.Children(ctx, id)
		assert.ErrorIs(t, err, location.ErrNotFound, id)
		_, err = s.MunicipalityOf(ctx, id)
		assert.ErrorIs(t, err, location.ErrNotFound, id)
		in, err := s.IsWithin(ctx, id, "R1")
		require.NoError(t, err)
		assert.False(t, in, id)
	}
	for _, id := range []string{"R1", "R2", "D2", "M3"} {
		_, err := s.Get(ctx, id)
		assert.NoError(t, err, id)
	}
	desc, err := s.Descendants(ctx, "R1")
	require.NoError(t, err)
	assert.Equal(t, []string{"M3"}, ids(desc))
	kids, err := s.Children(ctx, "R1")
	require.NoError(t, err)
	assert.Equal(t, []string{"M3"}, ids(kids))
	evs := events(t, e, audit.TypeLocationDeleted, "D1")
	require.Len(t, evs, 1)
	assert.EqualValues(t, 4, evs[0].Details["count"])
	for _, p := range paths(t, e) {
		assert.NotContains(t, []string{"D1", "M1", "V1", "V2"}, p.DescendantID, "deleted locations leave the closure table")
	}
	assertClosureExact(t, e)

	before := dump(t, e)
	_, err = s.Create(ctx, loc("V1", "village", "M3"))
	assert.ErrorIs(t, err, location.ErrDuplicate, "a deleted ID is never reused")
	_, err = s.Create(ctx, loc("V9", "village", "M1"))
	assert.ErrorIs(t, err, location.ErrNotFound, "a deleted location cannot be a parent")
	assert.ErrorIs(t, s.Move(ctx, "M3", "D1"), location.ErrNotFound)
	assert.ErrorIs(t, s.Move(ctx, "M1", "R1"), location.ErrNotFound)
	assert.ErrorIs(t, s.Delete(ctx, "D1"), location.ErrNotFound)
	assert.ErrorIs(t, s.Delete(ctx, "V1"), location.ErrNotFound)
	assert.Equal(t, before, dump(t, e))

	require.NoError(t, s.Delete(ctx, "M3"))
	require.NoError(t, s.Delete(ctx, "R1"))
	_, err = s.Get(ctx, "R1")
	assert.ErrorIs(t, err, location.ErrNotFound)
	assertClosureExact(t, e)
}

func TestTxVariants_FollowTheCallersTransaction(t *testing.T) {
	ctx := context.Background()
	s, e := newStore(t)
	sampleTree(t, s)
	errRollback := errors.New("roll back")

	before := dump(t, e)
	err := dbx.Tx(ctx, e.db, func(tx *gorm.DB) error {
		if _, err := txwrite.CreateLocation(ctx, tx, s, loc("V3", "village", "M3")); err != nil {
			return err
		}
		if err := txwrite.MoveLocation(ctx, tx, s, "D1", "R2"); err != nil {
			return err
		}
		deleted, err := txwrite.DeleteLocation(ctx, tx, s, "D1")
		if err != nil {
			return err
		}
		assert.Equal(t, []string{"D1", "M1", "V2", "V1"}, deleted, "root first, then by depth and ID")
		return errRollback
	})
	require.ErrorIs(t, err, errRollback)
	assert.Equal(t, before, dump(t, e), "rolled back with the caller")

	var deleted []string
	require.NoError(t, dbx.Tx(ctx, e.db, func(tx *gorm.DB) error {
		// A refusal inside the transaction leaves it usable.
		if err := txwrite.MoveLocation(ctx, tx, s, "R1", "V1"); !errors.Is(err, location.ErrCycle) {
			return errors.New("want a cycle")
		}
		if err := txwrite.MoveLocation(ctx, tx, s, "M1", "D2"); err != nil {
			return err
		}
		var err error
		deleted, err = txwrite.DeleteLocation(ctx, tx, s, "D1")
		return err
	}))
	assert.Equal(t, []string{"D1", "V2"}, deleted)
	anc, err := s.Ancestors(ctx, "V1")
	require.NoError(t, err)
	assert.Equal(t, []string{"M1", "D2", "R2"}, ids(anc))
	_, err = s.Get(ctx, "V2")
	assert.ErrorIs(t, err, location.ErrNotFound)
	assert.Equal(t, before.Events, dump(t, e).Events, "the Tx variants do not audit")
	assertClosureExact(t, e)
}

// assertClosureExact recomputes the closure table and the depth column from
// the parent pointers of the live rows and compares them with the stored
// ones.
func assertClosureExact(t *testing.T, e env) {
	t.Helper()
	var rows []struct {
		ID       string
		ParentID *string
		Depth    int
	}
	require.NoError(t, e.db.Raw("SELECT id, parent_id, depth FROM "+location.LocationsTable+" WHERE deleted_at IS NULL").
		Scan(&rows).Error)
	parent := make(map[string]string, len(rows))
	depth := make(map[string]int, len(rows))
	for _, r := range rows {
		parent[r.ID] = ""
		if r.ParentID != nil {
			parent[r.ID] = *r.ParentID
		}
		depth[r.ID] = r.Depth
	}
	want := map[path]bool{}
	for id := range parent {
		d := 0
		for a := id; a != ""; a = parent[a] {
			_, live := parent[a]
			require.True(t, live, "live %s has a deleted or unknown ancestor %s", id, a)
			want[path{AncestorID: a, DescendantID: id, Depth: d}] = true
			d++
			require.Less(t, d, 100, "cycle at %s", id)
		}
		assert.Equal(t, d-1, depth[id], "depth column of %s", id)
	}
	got := map[path]bool{}
	for _, p := range paths(t, e) {
		got[p] = true
	}
	assert.Equal(t, want, got)
}

// Writers on several connections move, create and delete in overlapping
// subtrees at once; the tree lock must keep the closure table exact and
// never leave a live location under a deleted one.
func TestWrites_ConcurrentWritersKeepTheTreeExact(t *testing.T) {
	ctx := context.Background()
	s, e := newStore(t)
	mustCreate(t, s, loc("R1", "region", ""), loc("R2", "region", ""), loc("R3", "region", ""))
	for _, r := range []string{"R1", "R2"} {
		for d := 0; d < 3; d++ {
			id := fmt.Sprintf("%sD%d", r, d)
			mustCreate(t, s, loc(id, "district", r), loc(id+"M", "municipality", id))
		}
	}
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			rng := rand.New(rand.NewSource(int64(w)))
			regions := []string{"R1", "R2", "R3"}
			for i := 0; i < 25; i++ {
				district := fmt.Sprintf("%sD%d", regions[rng.Intn(2)], rng.Intn(3))
				var err error
				switch rng.Intn(4) {
				case 0, 1:
					err = s.Move(ctx, district, regions[rng.Intn(3)])
				case 2:
					_, err = s.Create(ctx, loc(fmt.Sprintf("w%dv%d", w, i), "village", district+"M"))
				default:
					if rng.Intn(4) == 0 {
						err = s.Delete(ctx, district+"M")
					} else {
						err = s.Move(ctx, district+"M", regions[rng.Intn(3)])
					}
				}
				if err != nil && !errors.Is(err, location.ErrNotFound) {
					t.Errorf("writer %d: %v", w, err)
					return
				}
			}
		}(w)
	}
	wg.Wait()
	assertClosureExact(t, e)
}

// Callbacks come in commit order with consecutive versions, even from
// concurrent writers; refused writes leave the version alone; the Tx
// variants move it too, and LoadTree reads it.
func TestWithOnChange_DeliversChangesInVersionOrder(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	var versions []int64
	s := e.store(t, location.WithOnChange(func(c location.Change) { versions = append(versions, c.Version) }))
	sampleTree(t, s)
	require.Equal(t, []int64{1, 2, 3, 4, 5, 6, 7, 8}, versions)

	var wg sync.WaitGroup
	for w := 0; w < 3; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < 10; i++ {
				if _, err := s.Create(ctx, loc(fmt.Sprintf("w%d-%d", w, i), "village", "M3")); err != nil {
					t.Error(err)
				}
			}
		}(w)
	}
	wg.Wait()
	require.Len(t, versions, 38)
	for i, v := range versions {
		assert.Equal(t, int64(i+1), v)
	}

	assert.ErrorIs(t, s.Move(ctx, "R1", "V1"), location.ErrCycle)
	_, err := s.Create(ctx, loc("R1", "region", ""))
	assert.ErrorIs(t, err, location.ErrDuplicate)
	v, err := location.TreeVersion(ctx, e.db)
	require.NoError(t, err)
	assert.Equal(t, int64(38), v, "refused writes leave the version alone")
	assert.Len(t, versions, 38)

	require.NoError(t, s.Move(ctx, "D1", "R1"), "a move to the current parent")
	assert.Equal(t, []int64{39}, versions[38:], "still a write: the version moves and the change is delivered")

	require.NoError(t, dbx.Tx(ctx, e.db, func(tx *gorm.DB) error {
		if err := txwrite.MoveLocation(ctx, tx, s, "D1", "R2"); err != nil {
			return err
		}
		v, err := location.TreeVersion(ctx, tx)
		assert.Equal(t, int64(40), v)
		return err
	}))
	tr, err := s.LoadTree(ctx)
	require.NoError(t, err)
	assert.Equal(t, int64(40), tr.Version())
	assert.Len(t, versions, 39, "the Tx variants leave the callback to their caller")
}

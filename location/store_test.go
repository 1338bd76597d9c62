package location_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/civicstack/townhall/audit"
	"github.com/civicstack/townhall/internal/actor"
	"github.com/civicstack/townhall/internal/dbx"
	"github.com/civicstack/townhall/internal/txwrite"
	"github.com/civicstack/townhall/location"
)

func TestValidateLevels(t *testing.T) {
	tooMany := []string{location.Municipality}
	for i := 0; i < location.MaxLevels; i++ {
		tooMany = append(tooMany, "l"+strings.Repeat("x", i+1))
	}
	tests := []struct {
		name   string
		levels []string
		ok     bool
	}{
		{"default", location.DefaultLevels, true},
		{"municipality only", []string{"municipality"}, true},
		{"custom", []string{"country", "province", "municipality", "ward-1", "block_2"}, true},
		{"empty", nil, false},
		{"no municipality", []string{"region", "district", "village"}, false},
		{"duplicate", []string{"region", "municipality", "region"}, false},
		{"empty name", []string{"", "municipality"}, false},
		{"space", []string{"big region", "municipality"}, false},
		{"leading digit", []string{"1st", "municipality"}, false},
		{"too long", []string{strings.Repeat("a", location.MaxLevelLen+1), "municipality"}, false},
		{"too many", tooMany, false},
		{"case differs from municipality", []string{"Municipality"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := location.ValidateLevels(tt.levels)
			if tt.ok {
				assert.NoError(t, err)
			} else {
				assert.ErrorIs(t, err, location.ErrInvalidLevel)
			}
		})
	}
}

func TestNewStore_RejectsBadConfiguration(t *testing.T) {
	e := newEnv(t)
	_, err := location.NewStore(e.db, e.log, location.WithLevels("region", "village"))
	assert.ErrorIs(t, err, location.ErrInvalidLevel)
	_, err = location.NewStore(e.db, e.log, location.WithLevels())
	assert.ErrorIs(t, err, location.ErrInvalidLevel)
	_, err = location.NewStore(nil, e.log)
	assert.ErrorIs(t, err, location.ErrInvalidInput)
	_, err = location.NewStore(e.db, nil)
	assert.ErrorIs(t, err, location.ErrInvalidInput)

	levels := []string{"zone", "municipality"}
	s, err := location.NewStore(e.db, e.log, location.WithLevels(levels...))
	require.NoError(t, err)
	levels[0] = "changed"
	got := s.Levels()
	assert.Equal(t, []string{"zone", "municipality"}, got)
	got[0] = "changed"
	assert.Equal(t, []string{"zone", "municipality"}, s.Levels(), "Levels returns a copy")
	assert.Equal(t, location.DefaultLevels, e.store(t).Levels())
}

func TestCreate_Rules(t *testing.T) {
	ctx := context.Background()
	s, e := newStore(t)
	mustCreate(t, s,
		loc("R", "region", ""),
		loc("D", "district", "R"),
		loc("M", "municipality", "D"),
		loc("gone", "district", "R"),
	)
	require.NoError(t, s.Delete(ctx, "gone"))

	tests := []struct {
		name string
		in   location.Location
		want error
	}{
		{"top-level region", loc("R2", "region", ""), nil},
		{"top-level of any level", loc("M2", "municipality", ""), nil},
		{"child one level down", loc("D2", "district", "R"), nil},
		{"levels may be skipped", loc("V1", "village", "R"), nil},
		{"empty name allowed", location.Location{ID: "V2", Level: "village", ParentID: "M"}, nil},
		{"unicode name", location.Location{ID: "V3", Name: "São Tomé — Água Grande", Level: "village", ParentID: "M"}, nil},
		{"same level as parent", loc("D3", "district", "D"), location.ErrInvalidLevel},
		{"level above parent", loc("R3", "region", "M"), location.ErrInvalidLevel},
		{"unknown level", loc("X1", "hamlet", "M"), location.ErrInvalidLevel},
		{"empty level", loc("X2", "", ""), location.ErrInvalidLevel},
		{"level is case-sensitive", loc("X3", "Village", "M"), location.ErrInvalidLevel},
		{"missing parent", loc("X4", "village", "nope"), location.ErrNotFound},
		{"parent ID is case-sensitive", loc("X5", "village", "m"), location.ErrNotFound},
		{"deleted parent", loc("X6", "municipality", "gone"), location.ErrNotFound},
		{"duplicate ID", loc("D", "district", "R"), location.ErrDuplicate},
		{"ID of a deleted location", loc("gone", "district", "R"), location.ErrDuplicate},
		{"platform domain as ID", loc("*", "region", ""), location.ErrInvalidInput},
		{"ID with space", loc("a b", "region", ""), location.ErrInvalidInput},
		{"ID with slash", loc("a/b", "region", ""), location.ErrInvalidInput},
		{"non-ASCII ID", loc("é", "region", ""), location.ErrInvalidInput},
		{"ID too long", loc(strings.Repeat("x", 65), "region", ""), location.ErrInvalidInput},
		{"malformed parent ID", loc("X7", "village", "M%"), location.ErrInvalidInput},
		{"name too long", location.Location{ID: "X8", Name: strings.Repeat("n", location.MaxNameLen+1), Level: "village"}, location.ErrInvalidInput},
		{"name with control character", location.Location{ID: "X9", Name: "a\nb", Level: "village"}, location.ErrInvalidInput},
		{"name not UTF-8", location.Location{ID: "X10", Name: "\xff", Level: "village"}, location.ErrInvalidInput},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := dump(t, e)
			got, err := s.Create(ctx, tt.in)
			if tt.want != nil {
				assert.ErrorIs(t, err, tt.want)
				assert.Nil(t, got)
				assert.Equal(t, before, dump(t, e), "a refused create changes nothing")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.in, *got)
			stored, err := s.Get(ctx, tt.in.ID)
			require.NoError(t, err)
			assert.Equal(t, tt.in, *stored)
			evs := events(t, e, audit.TypeLocationCreated, tt.in.ID)
			require.Len(t, evs, 1)
			assert.Equal(t, actor.SystemID, evs[0].ActorID)
		})
	}
	t.Run("exactly 64 characters", func(t *testing.T) {
		id := strings.Repeat("a", 64)
		_, err := s.Create(ctx, loc(id, "region", ""))
		require.NoError(t, err)
		_, err = s.Get(ctx, id)
		assert.NoError(t, err)
	})
	t.Run("empty ID is generated", func(t *testing.T) {
		got, err := s.Create(ctx, location.Location{Name: "generated", Level: "village", ParentID: "M"})
		require.NoError(t, err)
		assert.True(t, dbx.ValidID(got.ID), got.ID)
		stored, err := s.Get(ctx, got.ID)
		require.NoError(t, err)
		assert.Equal(t, "generated", stored.Name)
	})
	t.Run("audited with the actor in the context", func(t *testing.T) {
		actx := actor.With(ctx, actor.Actor{UserID: "u1"})
		_, err := s.Create(actx, loc("byU1", "village", "M"))
		require.NoError(t, err)
		evs := events(t, e, audit.TypeLocationCreated, "byU1")
		require.Len(t, evs, 1)
		assert.Equal(t, "u1", evs[0].ActorID)
	})
}

func TestIDs_AreCaseSensitive(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	mustCreate(t, s,
		location.Location{ID: "A1", Name: "upper", Level: "region"},
		location.Location{ID: "a1", Name: "lower", Level: "region"},
		loc("d", "district", "A1"),
		loc("D", "district", "a1"),
	)
	upper, err := s.Get(ctx, "A1")
	require.NoError(t, err)
	lower, err := s.Get(ctx, "a1")
	require.NoError(t, err)
	assert.Equal(t, "upper", upper.Name)
	assert.Equal(t, "lower", lower.Name)

	kids, err := s.Children(ctx, "A1")
	require.NoError(t, err)
	assert.Equal(t, []string{"d"}, ids(kids))
	kids, err = s.Descendants(ctx, "a1")
	require.NoError(t, err)
	assert.Equal(t, []string{"D"}, ids(kids))

	in, err := s.IsWithin(ctx, "d", "a1")
	require.NoError(t, err)
	assert.False(t, in)
	in, err = s.IsWithin(ctx, "d", "A1")
	require.NoError(t, err)
	assert.True(t, in)

	require.NoError(t, s.Delete(ctx, "a1"))
	_, err = s.Get(ctx, "A1")
	assert.NoError(t, err, "deleting a1 leaves A1")
	_, err = s.Get(ctx, "d")
	assert.NoError(t, err)
	_, err = s.Get(ctx, "D")
	assert.ErrorIs(t, err, location.ErrNotFound)
}

// deepLevels has ten levels, the municipality in the middle.
var deepLevels = []string{"l0", "l1", "l2", "l3", "l4", "municipality", "l6", "l7", "l8", "l9"}

func TestAncestorsAndDescendants_DeepTree(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t, location.WithLevels(deepLevels...))
	// A chain c0 > c1 > ... > c9, and at every level a side leaf s<i> of
	// level l9 under c<i-1>.
	for i, lvl := range deepLevels {
		parent := ""
		if i > 0 {
			parent = fmt.Sprint("c", i-1)
			mustCreate(t, s, loc(fmt.Sprint("s", i), "l9", parent))
		}
		mustCreate(t, s, loc(fmt.Sprint("c", i), lvl, parent))
	}

	anc, err := s.Ancestors(ctx, "c9")
	require.NoError(t, err)
	assert.Equal(t, []string{"c8", "c7", "c6", "c5", "c4", "c3", "c2", "c1", "c0"}, ids(anc), "parent first, root last")
	assert.Equal(t, loc("c8", "l8", "c7"), anc[0])
	anc, err = s.Ancestors(ctx, "c0")
	require.NoError(t, err)
	assert.Empty(t, anc)
	anc, err = s.Ancestors(ctx, "s3")
	require.NoError(t, err)
	assert.Equal(t, []string{"c2", "c1", "c0"}, ids(anc))

	desc, err := s.Descendants(ctx, "c0")
	require.NoError(t, err)
	assert.Equal(t, []string{"c1", "s1", "c2", "s2", "c3", "s3", "c4", "s4", "c5", "s5", "c6", "s6", "c7", "s7", "c8", "s8", "c9", "s9"},
		ids(desc), "by depth, then ID; self excluded")
	desc, err = s.Descendants(ctx, "c7")
	require.NoError(t, err)
	assert.Equal(t, []string{"c8", "s8", "c9", "s9"}, ids(desc))
	desc, err = s.Descendants(ctx, "c9")
	require.NoError(t, err)
	assert.Empty(t, desc)

	desc, err = s.Descendants(ctx, "c2", "l9")
	require.NoError(t, err)
	assert.Equal(t, []string{"s3", "s4", "s5", "s6", "s7", "s8", "c9", "s9"}, ids(desc))
	desc, err = s.Descendants(ctx, "c2", "municipality", "l3")
	require.NoError(t, err)
	assert.Equal(t, []string{"c3", "c5"}, ids(desc))
	desc, err = s.Descendants(ctx, "c6", "l0")
	require.NoError(t, err)
	assert.Empty(t, desc)

	tests := []struct {
		id, want string
		err      error
	}{
		{"c9", "c5", nil},
		{"s9", "c5", nil},
		{"c5", "c5", nil},
		{"s6", "c5", nil},
		{"c4", "", location.ErrNoMunicipality},
		{"s5", "", location.ErrNoMunicipality}, // a leaf under c4, above the municipality
		{"c0", "", location.ErrNoMunicipality},
		{"zz", "", location.ErrNotFound},
	}
	for _, tt := range tests {
		m, err := s.MunicipalityOf(ctx, tt.id)
		if tt.err != nil {
			assert.ErrorIs(t, err, tt.err, tt.id)
			continue
		}
		require.NoError(t, err, tt.id)
		assert.Equal(t, tt.want, m.ID, tt.id)
	}
}

func TestChildrenAndDescendants_WideTree(t *testing.T) {
	ctx := context.Background()
	s, e := newStore(t)
	mustCreate(t, s, loc("R", "region", ""), loc("R2", "region", ""))
	// 300 districts, every tenth with a municipality and a village.
	var want, wantM []string
	require.NoError(t, dbx.Tx(ctx, e.db, func(tx *gorm.DB) error {
		for i := 0; i < 300; i++ {
			id := "D" + pad(i)
			want = append(want, id)
			if _, err := txwrite.CreateLocation(ctx, tx, s, loc(id, "district", "R")); err != nil {
				return err
			}
			if i%10 == 0 {
				wantM = append(wantM, "M"+pad(i))
				if _, err := txwrite.CreateLocation(ctx, tx, s, loc("M"+pad(i), "municipality", id)); err != nil {
					return err
				}
				if _, err := txwrite.CreateLocation(ctx, tx, s, loc("V"+pad(i), "village", "M"+pad(i))); err != nil {
					return err
				}
			}
		}
		return nil
	}))

	kids, err := s.Children(ctx, "R")
	require.NoError(t, err)
	assert.Equal(t, want, ids(kids))
	kids, err = s.Children(ctx, "R2")
	require.NoError(t, err)
	assert.Empty(t, kids)

	desc, err := s.Descendants(ctx, "R")
	require.NoError(t, err)
	assert.Len(t, desc, 360)
	assert.Equal(t, want, ids(desc[:300]))
	assert.Equal(t, wantM, ids(desc[300:330]))

	desc, err = s.Descendants(ctx, "R", "municipality")
	require.NoError(t, err)
	assert.Equal(t, wantM, ids(desc))
	desc, err = s.Descendants(ctx, "R", "village", "municipality")
	require.NoError(t, err)
	assert.Len(t, desc, 60)

	anc, err := s.Ancestors(ctx, "V290")
	require.NoError(t, err)
	assert.Equal(t, []string{"M290", "D290", "R"}, ids(anc))
}

func pad(i int) string { return fmt.Sprintf("%03d", i) }

func TestReads_RejectBadInput(t *testing.T) {
	ctx := context.Background()
	var nilCtx context.Context // bad input under test
	s, _ := newStore(t)
	mustCreate(t, s, loc("R", "region", ""), loc("D", "district", "R"))
	require.NoError(t, s.Delete(ctx, "D"))

	type read func(ctx context.Context, id string) error
	reads := map[string]read{
		"Get":            func(ctx context.Context, id string) error { _, err := s.Get(ctx, id); return err },
		"Children":       func(ctx context.Context, id string) error { _, err := s.Children(ctx, id); return err },
		"Ancestors":      func(ctx context.Context, id string) error { _, err := s.Ancestors(ctx, id); return err },
		"Descendants":    func(ctx context.Context, id string) error { _, err := s.Descendants(ctx, id); return err },
		"MunicipalityOf": func(ctx context.Context, id string) error { _, err := s.MunicipalityOf(ctx, id); return err },
	}
	for name, r := range reads {
		t.Run(name, func(t *testing.T) {
			assert.ErrorIs(t, r(ctx, ""), location.ErrInvalidInput)
			assert.ErrorIs(t, r(ctx, "*"), location.ErrInvalidInput)
			assert.ErrorIs(t, r(ctx, "x'; DROP TABLE townhall_locations; --"), location.ErrInvalidInput)
			assert.ErrorIs(t, r(ctx, strings.Repeat("x", 65)), location.ErrInvalidInput)
			assert.ErrorIs(t, r(nilCtx, "R"), location.ErrInvalidInput)
			assert.ErrorIs(t, r(ctx, "unknown"), location.ErrNotFound)
			assert.ErrorIs(t, r(ctx, "r"), location.ErrNotFound)
			assert.ErrorIs(t, r(ctx, "D"), location.ErrNotFound, "deleted")
		})
	}
	_, err := s.Descendants(ctx, "R", "hamlet")
	assert.ErrorIs(t, err, location.ErrInvalidLevel)
	_, err = s.IsWithin(ctx, "R", "")
	assert.ErrorIs(t, err, location.ErrInvalidInput)

	// Writes.
	_, err = s.Create(nilCtx, loc("X", "region", ""))
	assert.ErrorIs(t, err, location.ErrInvalidInput)
	assert.ErrorIs(t, s.Move(nilCtx, "R", ""), location.ErrInvalidInput)
	assert.ErrorIs(t, s.Move(ctx, "", ""), location.ErrInvalidInput)
	assert.ErrorIs(t, s.Move(ctx, "R", "*"), location.ErrInvalidInput)
	assert.ErrorIs(t, s.Delete(nilCtx, "R"), location.ErrInvalidInput)
	assert.ErrorIs(t, s.Delete(ctx, ""), location.ErrInvalidInput)
	assert.ErrorIs(t, s.Delete(ctx, "a b"), location.ErrInvalidInput)
	assert.ErrorIs(t, txwrite.MoveLocation(ctx, nil, s, "R", ""), location.ErrInvalidInput)
	_, err = txwrite.DeleteLocation(ctx, nil, s, "R")
	assert.ErrorIs(t, err, location.ErrInvalidInput)
	_, err = txwrite.CreateLocation(ctx, nil, s, loc("X", "region", ""))
	assert.ErrorIs(t, err, location.ErrInvalidInput)
	_, err = location.LoadTree(ctx, nil)
	assert.ErrorIs(t, err, location.ErrInvalidInput)
	assert.ErrorIs(t, location.Migrate(nil), location.ErrInvalidInput)
}

func TestMigrate_IsIdempotent(t *testing.T) {
	ctx := context.Background()
	s, e := newStore(t)
	mustCreate(t, s, loc("R", "region", ""))
	for i := 0; i < 2; i++ {
		require.NoError(t, dbx.Migrate(ctx, e.db, location.Migrate))
	}
	mustCreate(t, s, loc("D", "district", "R"))
	var n int64
	require.NoError(t, e.db.Raw("SELECT COUNT(*) FROM townhall_location_tree").Scan(&n).Error)
	assert.Equal(t, int64(1), n)
}

func TestWrites_FailWithoutMigration(t *testing.T) {
	ctx := context.Background()
	s, e := newStore(t)
	require.NoError(t, e.db.Exec("DELETE FROM townhall_location_tree").Error)
	_, err := s.Create(ctx, loc("R", "region", ""))
	require.Error(t, err)
	assert.False(t, errors.Is(err, location.ErrDuplicate))
	_, err = s.Get(ctx, "R")
	assert.ErrorIs(t, err, location.ErrNotFound, "the failed create left nothing")
}

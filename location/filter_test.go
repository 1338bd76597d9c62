package location_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/glebarez/sqlite"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorm.io/driver/mysql"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"
	"gorm.io/gorm/logger"

	"github.com/civicstack/townhall/internal/dbtest"
	"github.com/civicstack/townhall/internal/dbx"
	"github.com/civicstack/townhall/location"
)

// filterFixture is a store with a tree kept in step through WithOnChange,
// and a host table "records" with one row per location ID (live, deleted
// and unknown ones), one with a NULL and one with an empty location:
//
//	R ─┬─ D1 ─┬─ M1 ── V1
//	   │      └─ M2 ── V2
//	   └─ D2 ── M3
//	Rx (another region) ── Mx
//	gone (deleted)
type filterFixture struct {
	env   env
	store *location.Store
	tree  *location.Tree
	rows  map[int]string // id → location ("-" for NULL)
}

func newFilterFixture(t *testing.T) *filterFixture {
	t.Helper()
	e := newEnv(t)
	tree := location.NewTree()
	s := e.store(t, location.WithOnChange(func(c location.Change) { require.NoError(t, tree.Apply(c)) }))
	mustCreate(t, s,
		loc("R", "region", ""), loc("D1", "district", "R"), loc("D2", "district", "R"),
		loc("M1", "municipality", "D1"), loc("M2", "municipality", "D1"), loc("M3", "municipality", "D2"),
		loc("V1", "village", "M1"), loc("V2", "village", "M2"),
		loc("Rx", "region", ""), loc("Mx", "municipality", "Rx"), loc("gone", "region", ""),
	)
	require.NoError(t, s.Delete(context.Background(), "gone"))
	f := &filterFixture{env: e, store: s, tree: tree, rows: map[int]string{}}
	require.NoError(t, e.db.Exec("CREATE TABLE records (id INTEGER PRIMARY KEY, location_id VARCHAR(64))").Error)
	for i, l := range []string{"R", "D1", "D2", "M1", "M2", "M3", "V1", "V2", "Rx", "Mx", "gone", "nowhere", "m1", "-", ""} {
		var v *string
		if l != "-" {
			v = &l
		}
		require.NoError(t, e.db.Exec("INSERT INTO records (id, location_id) VALUES (?, ?)", i+1, v).Error)
		f.rows[i+1] = l
	}
	return f
}

// scoped returns the locations of the rows the scope lets through, sorted.
func (f *filterFixture) scoped(t *testing.T, scope func(*gorm.DB) *gorm.DB) []string {
	t.Helper()
	var got []int
	require.NoError(t, f.env.db.Table("records").Scopes(scope).Pluck("id", &got).Error)
	out := []string{}
	for _, id := range got {
		out = append(out, f.rows[id])
	}
	slices.Sort(out)
	return out
}

// contained returns the locations of the rows Contains selects, sorted.
func (f *filterFixture) contained(flt location.Filter) []string {
	out := []string{}
	for _, l := range f.rows {
		if l == "-" && flt.Contains("") || l != "-" && flt.Contains(l) {
			out = append(out, l)
		}
	}
	slices.Sort(out)
	return out
}

func TestFilter_ScopeAgreesWithContains(t *testing.T) {
	f := newFilterFixture(t)
	all := []string{"", "-", "D1", "D2", "M1", "M2", "M3", "Mx", "R", "Rx", "V1", "V2", "gone", "m1", "nowhere"}
	cases := []struct {
		name   string
		filter location.Filter
		want   []string
	}{
		{"zero value", location.Filter{}, []string{}},
		{"empty", location.EmptyFilter(), []string{}},
		{"unrestricted", location.UnrestrictedFilter(), all},
		{"one subtree", location.SubtreesFilter(f.tree, []string{"D1"}, nil), []string{"D1", "M1", "M2", "V1", "V2"}},
		{"subtree minus a municipality", location.SubtreesFilter(f.tree, []string{"D1"}, []string{"M2"}), []string{"D1", "M1", "V1"}},
		{"two subtrees", location.SubtreesFilter(f.tree, []string{"V2", "M3"}, nil), []string{"M3", "V2"}},
		{"a leaf", location.SubtreesFilter(f.tree, []string{"V1"}, nil), []string{"V1"}},
		{"everything live", location.LiveFilter(f.tree, nil), []string{"D1", "D2", "M1", "M2", "M3", "Mx", "R", "Rx", "V1", "V2"}},
		{"everything live minus subtrees", location.LiveFilter(f.tree, []string{"M1", "Rx"}), []string{"D1", "D2", "M2", "M3", "R", "V2"}},
		{"deleted and unknown roots", location.SubtreesFilter(f.tree, []string{"gone", "nowhere"}, nil), []string{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, f.scoped(t, tc.filter.Scope("location_id")), "scope")
			assert.Equal(t, tc.want, f.contained(tc.filter), "contains")
			assert.Equal(t, len(tc.want) == 0, tc.filter.Empty(), "empty")
			assert.Equal(t, slices.Equal(tc.want, all), tc.filter.Unrestricted(), "unrestricted")
		})
	}
}

func TestSubtreesFilter_KeepsOnlyWhatMatters(t *testing.T) {
	f := newFilterFixture(t)
	cases := []struct {
		name                string
		roots, exclude      []string
		wantRoots, wantExcl []string
		wantEmpty           bool
	}{
		{"nested roots", []string{"M1", "R", "V1", "R"}, nil, []string{"R"}, nil, false},
		{"exclusions outside every root", []string{"D1"}, []string{"M3", "Mx", "M2"}, []string{"D1"}, []string{"M2"}, false},
		{"nested exclusions", []string{"R"}, []string{"V1", "M1"}, []string{"R"}, []string{"M1"}, false},
		{"roots inside an exclusion", []string{"V1", "M3"}, []string{"M1"}, []string{"M3"}, nil, false},
		{"every root excluded", []string{"V1"}, []string{"D1"}, nil, nil, true},
		{"unknown and deleted IDs", []string{"nowhere", "gone", "M3"}, []string{"gone"}, []string{"M3"}, nil, false},
		{"no roots", nil, []string{"M1"}, nil, nil, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			flt := location.SubtreesFilter(f.tree, tc.roots, tc.exclude)
			assert.Equal(t, tc.wantRoots, flt.Roots())
			assert.Equal(t, tc.wantExcl, flt.Excluded())
			assert.Equal(t, tc.wantEmpty, flt.Empty())
		})
	}
	assert.True(t, location.SubtreesFilter(nil, []string{"R"}, nil).Empty(), "nil tree")
	assert.True(t, location.LiveFilter(nil, nil).Empty(), "nil tree")
}

// The SQL reads subtrees at query time: a move or a delete changes what
// an existing filter's scope selects; a filter built afterwards agrees.
func TestFilter_ScopesFollowMovesAndDeletes(t *testing.T) {
	f := newFilterFixture(t)
	ctx := context.Background()
	old := location.SubtreesFilter(f.tree, []string{"D1"}, []string{"M2"})
	require.NoError(t, f.store.Move(ctx, "M3", "D1"))
	assert.Equal(t, []string{"D1", "M1", "M3", "V1"}, f.scoped(t, old.Scope("location_id")))
	require.NoError(t, f.store.Delete(ctx, "M1"))
	assert.Equal(t, []string{"D1", "M3"}, f.scoped(t, old.Scope("location_id")))

	fresh := location.SubtreesFilter(f.tree, []string{"D1"}, []string{"M2"})
	assert.Equal(t, []string{"D1", "M3"}, f.scoped(t, fresh.Scope("location_id")))
	assert.Equal(t, []string{"D1", "M3"}, f.contained(fresh))
}

func TestFilter_ColumnNames(t *testing.T) {
	f := newFilterFixture(t)
	flt := location.SubtreesFilter(f.tree, []string{"M1"}, nil)
	for _, col := range []string{
		"location_id; DROP TABLE records", "location_id) OR (1=1", "x' OR '1'='1", `location_id"`,
		"location_id`", "location id", "a.b.c", ".location_id", "records.", "1col", "loc-id", "lócation",
		strings.Repeat("c", 65),
	} {
		for _, filter := range []location.Filter{flt, location.UnrestrictedFilter(), location.EmptyFilter()} {
			var ids []int
			err := f.env.db.Table("records").Scopes(filter.Scope(col)).Pluck("id", &ids).Error
			assert.ErrorIs(t, err, location.ErrInvalidInput, "%q", col)
			assert.Empty(t, ids)
			_, err = filter.Condition(f.env.db, col)
			assert.ErrorIs(t, err, location.ErrInvalidInput, "%q", col)
		}
	}
	assert.Len(t, f.scoped(t, location.UnrestrictedFilter().Scope("")), len(f.rows), "the table is intact")

	// Qualified names.
	var ids []int
	require.NoError(t, f.env.db.Table("records AS r").Scopes(flt.Scope("r.location_id")).Order("r.id").Pluck("r.id", &ids).Error)
	assert.Equal(t, []int{4, 7}, ids)

	// No such column: every row has no location.
	assert.Empty(t, f.scoped(t, flt.Scope("")))
	assert.Empty(t, f.scoped(t, location.LiveFilter(f.tree, nil).Scope("")))
	assert.Len(t, f.scoped(t, location.UnrestrictedFilter().Scope("")), len(f.rows))
}

// Condition is one parenthesised expression that combines with others.
func TestFilter_ConditionCombines(t *testing.T) {
	f := newFilterFixture(t)
	flt := location.SubtreesFilter(f.tree, []string{"D1"}, []string{"M2"})
	cond, err := flt.Condition(f.env.db, "location_id")
	require.NoError(t, err)
	either := func(db *gorm.DB) *gorm.DB {
		return db.Where(clause.Or(cond, clause.Eq{Column: clause.Column{Name: "location_id"}, Value: "M3"}))
	}
	assert.Equal(t, []string{"D1", "M1", "M3", "V1"}, f.scoped(t, either))
	// A host OR before the scope does not widen it.
	widen := func(db *gorm.DB) *gorm.DB {
		return db.Where("id = 6 OR id = 9 OR 1 = 1").Scopes(flt.Scope("location_id"))
	}
	assert.Equal(t, []string{"D1", "M1", "V1"}, f.scoped(t, widen))
	cond, err = location.UnrestrictedFilter().Condition(f.env.db, "location_id")
	require.NoError(t, err)
	assert.Nil(t, cond, "no condition at all")
}

// On PostgreSQL, when the host table is not known (here: a dry run), the
// size of the subtrees picks the form of the condition
// (location.Filter.Condition): a wide filter (an eighth of the tree or
// more, at most 50,000 locations in its roots' subtrees) a hashed test, a
// small one (its roots' subtrees at most 256 locations) an array that
// drives the column's index, guarded by the hashed test, any other the
// plain semi-join. TestFilter_FormFollowsTheHostIndex covers known tables;
// TestFilter_EveryFormAgreesWithContains runs each form against Contains.
func TestFilter_PostgresFormFollowsTheSizeOfTheSubtrees(t *testing.T) {
	tree, d0Villages := formTree(t)
	pg, err := gorm.Open(postgres.New(postgres.Config{DSN: "host=127.0.0.1"}), &gorm.Config{DryRun: true, DisableAutomaticPing: true})
	require.NoError(t, err)
	sqlOf := func(f location.Filter) string {
		return pg.Table("records").Scopes(f.Scope("location_id")).Find(&[]map[string]any{}).Statement.SQL.String()
	}
	const sub = `SELECT descendant_id FROM townhall_location_paths WHERE ancestor_id IN (`
	form := func(sql string) string {
		switch {
		case strings.Contains(sql, `(("location_id" IN (`+sub) && strings.Contains(sql, `)) IS TRUE AND "location_id" = ANY(ARRAY(`+sub):
			return "array" // the hashed guard first
		case strings.Contains(sql, `(("location_id" IN (`+sub) && strings.Contains(sql, `)) IS TRUE)`) && !strings.Contains(sql, "ANY("):
			return "hashed"
		case strings.Contains(sql, `("location_id" IN (`+sub) && !strings.Contains(sql, "IS TRUE") && !strings.Contains(sql, "ANY("):
			return "join"
		}
		return "unknown"
	}
	for _, tc := range formCases(tree, d0Villages) {
		t.Run(tc.name, func(t *testing.T) {
			got := sqlOf(tc.filter)
			assert.Equal(t, tc.form, form(got), got)
			// Carve-outs are taken from the roots' closure rows, never
			// tested on the column.
			assert.Equal(t, len(tc.filter.Excluded()) > 0, strings.Contains(got, "descendant_id NOT IN (SELECT descendant_id FROM"), "carve-outs: %s", got)
			assert.NotContains(t, got, `"location_id" NOT IN`)
			n := 0
			for _, l := range tree.Locations() {
				if tc.filter.Contains(l.ID) {
					n++
				}
			}
			assert.Equal(t, tc.selected, n, "locations selected")
		})
	}

	// A wide filter whose subtrees exceed 50,000 locations joins: the
	// server would not hash so large a subquery. 65,001 locations: a
	// district of 55,000 and one of 10,000.
	big := location.NewTree()
	require.NoError(t, big.Add(loc("R", "region", "")))
	require.NoError(t, big.Add(loc("Big", "district", "R")))
	require.NoError(t, big.Add(loc("Small", "district", "R")))
	for v := range 64998 {
		parent := "Big"
		if v >= 54999 {
			parent = "Small"
		}
		require.NoError(t, big.Add(loc(fmt.Sprintf("V%d", v), "village", parent)))
	}
	require.Equal(t, []int{55000, 10000}, []int{big.SubtreeSize("Big"), big.SubtreeSize("Small")})
	assert.Equal(t, "join", form(sqlOf(location.SubtreesFilter(big, []string{"Big"}, nil))))
	assert.Equal(t, "hashed", form(sqlOf(location.SubtreesFilter(big, []string{"Small"}, nil))))

	// MySQL, MariaDB and SQLite plan every execution: one form.
	my, err := gorm.Open(mysql.New(mysql.Config{DSN: "root@tcp(127.0.0.1:1)/none", SkipInitializeWithVersion: true}), &gorm.Config{DryRun: true, DisableAutomaticPing: true})
	require.NoError(t, err)
	lite, err := gorm.Open(sqlite.Open(":memory:"), &gorm.Config{DryRun: true})
	require.NoError(t, err)
	for _, db := range []*gorm.DB{my, lite} {
		got := db.Table("records").Scopes(location.SubtreesFilter(tree, []string{"D0", "D1"}, nil).Scope("location_id")).Find(&[]map[string]any{}).Statement.SQL.String()
		assert.Contains(t, got, "SELECT descendant_id FROM townhall_location_paths WHERE ancestor_id IN (")
		assert.NotContains(t, got, "IS TRUE", db.Dialector.Name())
	}
}

// formTree builds, in memory, the tree of the form tests: R with 10
// districts of 300 villages each (D0..D9) and a small district D10 with 3
// municipalities of 50 villages: 3,165 locations, parents first. It
// returns the villages of D0.
func formTree(t testing.TB) (*location.Tree, []string) {
	t.Helper()
	tree := location.NewTree()
	var d0Villages []string
	for _, l := range formLocations() {
		require.NoError(t, tree.Add(l))
		if l.ParentID == "D0" {
			d0Villages = append(d0Villages, l.ID)
		}
	}
	require.Equal(t, 3165, tree.Len())
	return tree, d0Villages
}

func formLocations() []location.Location {
	out := []location.Location{loc("R", "region", "")}
	for d := range 10 {
		did := fmt.Sprintf("D%d", d)
		out = append(out, loc(did, "district", "R"))
		for v := range 300 {
			out = append(out, loc(fmt.Sprintf("%s-V%d", did, v), "village", did))
		}
	}
	out = append(out, loc("D10", "district", "R"))
	for m := range 3 {
		mid := fmt.Sprintf("D10-M%d", m)
		out = append(out, loc(mid, "municipality", "D10"))
		for v := range 50 {
			out = append(out, loc(fmt.Sprintf("%s-V%d", mid, v), "village", mid))
		}
	}
	return out
}

type formCase struct {
	name     string
	filter   location.Filter
	form     string // on PostgreSQL
	selected int    // locations
}

func formCases(tree *location.Tree, d0Villages []string) []formCase {
	nine := []string{"D1", "D2", "D3", "D4", "D5", "D6", "D7", "D8", "D9"}
	return []formCase{
		{"one village", location.SubtreesFilter(tree, []string{"D0-V0"}, nil), "array", 1},
		{"200 villages", location.SubtreesFilter(tree, d0Villages[:200], nil), "array", 200},
		{"a small district minus a municipality", location.SubtreesFilter(tree, []string{"D10"}, []string{"D10-M1"}), "array", 103},
		{"a district", location.SubtreesFilter(tree, []string{"D0"}, nil), "join", 301},
		{"a district minus 100 villages", location.SubtreesFilter(tree, []string{"D0"}, d0Villages[:100]), "join", 201},
		{"the region minus ten districts", location.SubtreesFilter(tree, []string{"R"}, append(nine, "D10")), "join", 302},
		{"the region minus nine districts", location.SubtreesFilter(tree, []string{"R"}, nine), "hashed", 456},
		{"two districts", location.SubtreesFilter(tree, []string{"D0", "D1"}, nil), "hashed", 602},
	}
}

// Every PostgreSQL form of a subtrees condition (see the test above)
// selects exactly the rows Contains selects, on the form tree
// bulk-inserted into the database: each form forced on every case, and the
// form each case takes on its own over an indexed table, an unindexed
// copy and an aliased table; the other databases run the same cases
// through their one form.
func TestFilter_EveryFormAgreesWithContains(t *testing.T) {
	e := newEnv(t)
	e.store(t) // registers the index cache on e.db
	var (
		locs  []benchLocation
		paths []benchPath
	)
	now := time.Now().UTC().Truncate(time.Microsecond)
	ancestors := map[string][]string{}
	for _, l := range formLocations() {
		var anc []string
		if l.ParentID != "" {
			anc = append(slices.Clone(ancestors[l.ParentID]), l.ParentID)
		}
		ancestors[l.ID] = anc
		row := benchLocation{ID: l.ID, Name: l.Name, Level: l.Level, Depth: len(anc), CreatedAt: now, UpdatedAt: now}
		if l.ParentID != "" {
			row.ParentID = &anc[len(anc)-1]
		}
		locs = append(locs, row)
		paths = append(paths, benchPath{AncestorID: l.ID, DescendantID: l.ID})
		for k, a := range anc {
			paths = append(paths, benchPath{AncestorID: a, DescendantID: l.ID, Depth: len(anc) - k})
		}
	}
	require.NoError(t, e.db.CreateInBatches(locs, 25).Error)
	require.NoError(t, e.db.CreateInBatches(paths, 60).Error)
	tree, err := location.LoadTree(context.Background(), e.db)
	require.NoError(t, err)
	mem, d0Villages := formTree(t)
	require.Equal(t, mem.Locations(), tree.Locations())

	// Records: every location of D0, D1 and D10, one village of each other
	// district, the region, an unknown location, a case variant, a NULL and
	// an empty one.
	require.NoError(t, e.db.Exec("CREATE TABLE records (id INTEGER PRIMARY KEY, location_id VARCHAR(64))").Error)
	require.NoError(t, e.db.Exec("CREATE INDEX records_location ON records (location_id)").Error)
	var rows []string
	for _, l := range locs {
		if strings.HasPrefix(l.ID, "D0") || strings.HasPrefix(l.ID, "D1") || strings.HasSuffix(l.ID, "-V7") || l.ID == "R" {
			rows = append(rows, l.ID)
		}
	}
	rows = append(rows, "nowhere", "d0-V3", "-", "")
	type record struct {
		ID         int     `gorm:"column:id"`
		LocationID *string `gorm:"column:location_id"`
	}
	var recs []record
	for i, l := range rows {
		r := record{ID: i + 1}
		if l != "-" {
			r.LocationID = &rows[i]
		}
		recs = append(recs, r)
	}
	require.NoError(t, e.db.Table("records").CreateInBatches(recs, 100).Error)
	require.NoError(t, e.db.Exec("CREATE TABLE records_unindexed AS SELECT * FROM records").Error)

	ctx := context.Background()
	runs := []struct {
		name, table, column string
		ctx                 context.Context
	}{
		{"indexed", "records", "location_id", ctx},
		{"unindexed", "records_unindexed", "location_id", ctx},
		{"aliased", "records AS r", "r.location_id", ctx},
	}
	tables := []string{"records_unindexed"}
	forced := []dbx.FilterForm{dbx.FormJoin, dbx.FormArray, dbx.FormHashed, dbx.FormIndexArray, dbx.FormLeaf}
	if dbtest.Name() == "sqlite" {
		forced = []dbx.FilterForm{dbx.FormJoin, dbx.FormLeaf}
	}
	if dbtest.Name() == "mysql" {
		// Over the indexed table too: its collation-bound index is where
		// MariaDB's answers by collation show.
		tables = append(tables, "records")
		forced = []dbx.FilterForm{dbx.FormMyExact, dbx.FormMyKey, dbx.FormMyBinary}
	}
	for _, form := range forced {
		for _, table := range tables {
			runs = append(runs, struct {
				name, table, column string
				ctx                 context.Context
			}{"forced " + string(form) + " on " + table, table, "location_id", dbx.WithFilterForm(ctx, form)})
		}
	}
	chosen := map[string]int{} // the forms of the runs not forced
	for _, tc := range formCases(tree, d0Villages) {
		var want []int
		for _, r := range recs {
			if r.LocationID != nil && tc.filter.Contains(*r.LocationID) {
				want = append(want, r.ID)
			}
		}
		require.NotEmpty(t, want)
		for _, run := range runs {
			t.Run(tc.name+"/"+run.name, func(t *testing.T) {
				var got []int
				db, sqls := capturing(e.db.WithContext(run.ctx))
				require.NoError(t, db.Table(run.table).Scopes(tc.filter.Scope(run.column)).Order("id").Pluck("id", &got).Error)
				assert.Equal(t, want, got)
				form := formOf(sqls())
				if f, ok := dbx.FilterFormOf(run.ctx); !ok {
					chosen[form]++
				} else {
					if f == dbx.FormLeaf && !(len(tc.filter.Roots()) == 1 && tc.selected == 1) {
						f = dbx.FormJoin // the leaf form is only for one leaf root
					}
					assert.Equal(t, string(f), form, "the forced form is the one in the SQL")
				}
			})
		}
	}
	var each []string
	switch dbtest.Name() {
	case "postgres":
		each = []string{"join", "array", "hashed", "index-array", "leaf"}
	case "mysql":
		each = []string{"my-exact", "my-key", "my-binary"}
	default:
		each = []string{"join", "leaf"}
	}
	for _, form := range each {
		// Each form is also one the sizes and the index call for.
		assert.Positive(t, chosen[form], "%s: %v", form, chosen)
	}
}

// formOf names the form of the subtrees condition in sql (the last
// statement of a capture): on PostgreSQL "join", "array", "hashed",
// "index-array" or "leaf", on SQLite "join" or "leaf", on MySQL and
// MariaDB "my-exact", "my-key" or "my-binary" (the dbx.FilterForm names),
// or "unknown" for anything else.
func formOf(sqls []string) string {
	if len(sqls) == 0 {
		return "unknown"
	}
	sql := sqls[len(sqls)-1]
	const sub = `SELECT descendant_id FROM townhall_location_paths WHERE ancestor_id IN (`
	switch dbtest.Name() {
	case "mysql":
		binary := strings.Contains(sql, "` AS BINARY) IN (SELECT CAST(descendant_id AS BINARY) FROM townhall_location_paths ")
		collated := strings.Contains(sql, "` IN (SELECT descendant_id FROM townhall_location_paths ")
		key := strings.Contains(sql, "FORCE INDEX (PRIMARY)")
		switch {
		case binary && collated && key:
			return "my-key"
		case binary && collated:
			return "my-exact"
		case binary && !key:
			return "my-binary"
		}
	default:
		switch {
		case strings.Contains(sql, ` AND descendant_id = `) && strings.Contains(sql, ` depth > 0)) AND `):
			return "leaf"
		case strings.Contains(sql, `)) IS TRUE AND `) && strings.Contains(sql, ` = ANY(ARRAY(`+sub):
			return "array"
		case strings.Contains(sql, `)) IS TRUE)`) && !strings.Contains(sql, "ANY("):
			return "hashed"
		case strings.Contains(sql, ` = ANY(ARRAY(`+sub) && !strings.Contains(sql, "IS TRUE"):
			return "index-array"
		case strings.Contains(sql, ` IN (`+sub) && !strings.Contains(sql, "IS TRUE") && !strings.Contains(sql, "ANY("):
			return "join"
		}
	}
	return "unknown"
}

// capturing returns db logging every statement it runs, and a function
// returning the SQL of those statements so far.
func capturing(db *gorm.DB) (*gorm.DB, func() []string) {
	c := &sqlCapture{}
	return db.Session(&gorm.Session{Logger: c}), func() []string {
		c.mu.Lock()
		defer c.mu.Unlock()
		return slices.Clone(c.sqls)
	}
}

type sqlCapture struct {
	mu   sync.Mutex
	sqls []string
}

func (c *sqlCapture) LogMode(logger.LogLevel) logger.Interface { return c }
func (c *sqlCapture) Info(context.Context, string, ...any)     {}
func (c *sqlCapture) Warn(context.Context, string, ...any)     {}
func (c *sqlCapture) Error(context.Context, string, ...any)    {}
func (c *sqlCapture) Trace(_ context.Context, _ time.Time, fc func() (string, int64), _ error) {
	sql, _ := fc()
	c.mu.Lock()
	c.sqls = append(c.sqls, sql)
	c.mu.Unlock()
}

// hostedRecord is a host model of TestFilter_FormFollowsTheHostIndex.
type hostedRecord struct {
	ID         int    `gorm:"column:id"`
	LocationID string `gorm:"column:location_id"`
}

func (hostedRecord) TableName() string { return "hosted" }

// On PostgreSQL a filter takes its form from the host table: the array
// over an indexed column (wide or narrow), the semi-join over an unindexed
// one (the leaf form for one root without descendants), and the forms
// chosen by size alone when the table is not known (an alias); on MySQL
// and MariaDB the binary test alone over an unindexed column or a wide
// filter, the closure table read through its primary key for a narrow
// filter over an indexed column, and both tests when the table is not
// known. A new index changes the
// form once the minute the store keeps the answer has passed, on the
// store's clock.
func TestFilter_FormFollowsTheHostIndex(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	e := newEnv(t)
	e.store(t, location.WithClock(func() time.Time { return now }))
	tree, _ := formTree(t)
	district := location.SubtreesFilter(tree, []string{"D0"}, nil) // 301 of 3,165 locations
	village := location.SubtreesFilter(tree, []string{"D0-V0"}, nil)
	region := location.SubtreesFilter(tree, []string{"R"}, nil)
	require.NoError(t, e.db.Exec("CREATE TABLE hosted (id INTEGER PRIMARY KEY, location_id VARCHAR(64))").Error)
	require.NoError(t, e.db.Exec("CREATE TABLE other (id INTEGER PRIMARY KEY, location_id VARCHAR(64))").Error)
	require.NoError(t, e.db.Exec("CREATE INDEX hosted_location ON hosted (location_id)").Error)
	formFor := func(f location.Filter, q func(*gorm.DB) *gorm.DB, column string) string {
		db, sqls := capturing(e.db)
		var n int64
		require.NoError(t, q(db).Scopes(f.Scope(column)).Count(&n).Error)
		return formOf(sqls())
	}
	table := func(name string) func(*gorm.DB) *gorm.DB {
		return func(db *gorm.DB) *gorm.DB { return db.Table(name) }
	}
	model := func(db *gorm.DB) *gorm.DB { return db.Model(&hostedRecord{}) }
	// want is the form expected on this database: pg on PostgreSQL, my on
	// MySQL and MariaDB; on SQLite the leaf form where PostgreSQL takes it
	// (one leaf root, no index), the semi-join otherwise.
	want := func(pg, my string) string {
		switch dbtest.Name() {
		case "postgres":
			return pg
		case "mysql":
			return my
		case "sqlite":
			if pg == "leaf" {
				return pg
			}
		}
		return "join"
	}
	assert.Equal(t, want("index-array", "my-key"), formFor(district, table("hosted"), "location_id"))
	assert.Equal(t, want("index-array", "my-key"), formFor(district, model, "location_id"), "table from the model")
	assert.Equal(t, want("index-array", "my-key"), formFor(district, table("hosted"), "hosted.location_id"), "table from the qualifier")
	assert.Equal(t, want("index-array", "my-key"), formFor(village, table("hosted"), "location_id"))
	// Wide too on PostgreSQL: the hashed test would read every record.
	assert.Equal(t, want("index-array", "my-binary"), formFor(region, table("hosted"), "location_id"))
	// A village is a leaf: one comparison per record on PostgreSQL.
	assert.Equal(t, want("leaf", "my-binary"), formFor(village, table("other"), "location_id"))
	for _, f := range []location.Filter{district, region} {
		assert.Equal(t, want("join", "my-binary"), formFor(f, table("other"), "location_id"))
	}
	// An alias: by size alone on PostgreSQL, both tests on MySQL.
	assert.Equal(t, want("array", "my-exact"), formFor(village, table("hosted AS h"), "h.location_id"))
	assert.Equal(t, want("join", "my-exact"), formFor(district, table("hosted AS h"), "h.location_id"))
	assert.Equal(t, want("hashed", "my-exact"), formFor(region, table("hosted AS h"), "h.location_id"))

	require.NoError(t, e.db.Exec("CREATE INDEX other_location ON other (location_id)").Error)
	assert.Equal(t, want("join", "my-binary"), formFor(district, table("other"), "location_id"), "within the minute")
	now = now.Add(time.Minute)
	assert.Equal(t, want("index-array", "my-key"), formFor(district, table("other"), "location_id"), "after it")
}

// A filter built on a leaf selects, when it runs, the subtree the closure
// table holds: a child the leaf gained since the filter was built is in
// the leaf form (one comparison per record, the subtree by an InitPlan)
// as in the semi-join.
func TestFilter_LeafFormFollowsNewChildren(t *testing.T) {
	f := newFilterFixture(t)
	leaf := location.SubtreesFilter(f.tree, []string{"M3"}, nil)
	before := f.scoped(t, leaf.Scope("location_id"))
	assert.Equal(t, []string{"M3"}, before)
	mustCreate(t, f.store, loc("V3", "village", "M3"))
	require.NoError(t, f.env.db.Exec("INSERT INTO records (id, location_id) VALUES (100, 'V3')").Error)
	f.rows[100] = "V3"
	for _, form := range []dbx.FilterForm{dbx.FormLeaf, dbx.FormJoin} {
		db, sqls := capturing(f.env.db.WithContext(dbx.WithFilterForm(context.Background(), form)))
		var got []int
		require.NoError(t, db.Table("records").Scopes(leaf.Scope("location_id")).Order("id").Pluck("id", &got).Error)
		assert.Equal(t, []int{6, 100}, got, form)
		if dbtest.Name() != "mysql" {
			assert.Equal(t, string(form), formOf(sqls()))
		}
	}
}

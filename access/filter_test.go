package access_test

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/civicstack/townhall"
	"github.com/civicstack/townhall/access"
	"github.com/civicstack/townhall/internal/dbx"
	"github.com/civicstack/townhall/internal/testkit"
	"github.com/civicstack/townhall/location"
	"github.com/civicstack/townhall/users"
)

// hostRow is a record of a host table: nil columns are NULL.
type hostRow struct {
	ID       int     `gorm:"column:id"`
	Location *string `gorm:"column:location_id"`
	Category *string `gorm:"column:category"`
	OrgID    *string `gorm:"column:org_id"`
}

func (r hostRow) resource() *access.Resource {
	return &access.Resource{LocationID: strOrEmpty(r.Location), Category: strOrEmpty(r.Category), OrganisationID: strOrEmpty(r.OrgID)}
}

// row builds a hostRow; "-" stands for NULL.
func row(id int, loc, cat, org string) hostRow {
	null := func(s string) *string {
		if s == "-" {
			return nil
		}
		return &s
	}
	return hostRow{ID: id, Location: null(loc), Category: null(cat), OrgID: null(org)}
}

var hostColumns = access.Columns{Location: "location_id", Category: "category", Organisation: "org_id"}

// hostTable creates a host table of records in the platform's database.
func hostTable(t testing.TB, p *townhall.Platform, name string, rows ...hostRow) {
	t.Helper()
	db := p.DB()
	require.NoError(t, db.Exec("CREATE TABLE "+name+
		" (id INTEGER PRIMARY KEY, location_id VARCHAR(64), category VARCHAR(64), org_id VARCHAR(64))").Error)
	require.NoError(t, db.Table(name).Create(rows).Error)
}

// scoped returns the IDs of the rows of table the scope lets through.
func scoped(t testing.TB, p *townhall.Platform, table string, scope func(*gorm.DB) *gorm.DB) []int {
	t.Helper()
	ids := []int{}
	require.NoError(t, p.DB().Table(table).Scopes(scope).Order("id").Pluck("id", &ids).Error)
	return ids
}

// checked returns the IDs of the rows Check allows as resources.
func checked(t testing.TB, p *townhall.Platform, s access.Subject, module, action string, rows []hostRow) []int {
	t.Helper()
	ids := []int{}
	for _, r := range rows {
		d, err := p.Checker.Check(context.Background(), s, access.Request{Module: module, Action: action, Resource: r.resource()})
		if err == nil && d.Allowed {
			ids = append(ids, r.ID)
		}
	}
	return ids
}

// worldRows are records in the world fixture (check_test.go): a NULL
// location, a deleted and an unknown one among them.
func worldRows() []hostRow {
	return []hostRow{
		row(1, "V1", "roads", "-"),
		row(2, "V1", "water", "-"),
		row(3, "V1", "-", "-"),
		row(4, "M1", "roads", "-"),
		row(5, "M2", "roads", "-"),
		row(6, "M3", "roads", "-"),
		row(7, "D", "-", "-"),
		row(8, "-", "roads", "-"),
		row(9, "nowhere", "roads", "-"),
		row(10, "", "roads", "-"),
	}
}

func TestFilter_ScopesAgreeWithCheckInTheWorldFixture(t *testing.T) {
	p := world(t)
	ctx := context.Background()
	// occupancy (public) is disabled in M3, equipment (not public) in M2.
	require.NoError(t, p.Admin.SetModuleEnabled(ctx, access.System(), "M3", "occupancy", false))
	rows := worldRows()
	hostTable(t, p, "records", rows...)
	everything := []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	cases := []struct {
		name, subject, module, action string
		want                          []int
		unrestricted, empty           bool
	}{
		{"anonymous, public action enabled everywhere", "", "occurrences", "view", everything, true, false},
		{"anonymous, public action disabled in M3", "", "occupancy", "view", []int{1, 2, 3, 4, 5, 7}, false, false},
		{"anonymous, action not public", "", "equipment", "view", []int{}, false, true},
		{"signed-in user, public action", "plain", "occurrences", "create", everything, true, false},
		{"signed-in user, public action disabled in M3", "plain", "occupancy", "view", []int{1, 2, 3, 4, 5, 7}, false, false},
		{"no grant", "plain", "equipment", "view", []int{}, false, true},
		{"super admin", "super", "equipment", "delete", everything, true, false},
		{"platform grant, platform module", "pat", "users", "view", everything, true, false},
		{"platform role not listed", "pat", "equipment", "delete", []int{}, false, true},
		{"manager at district, disabled municipality carved out", "dm", "equipment", "create", []int{1, 2, 3, 4, 7}, false, false},
		{"manager, action not listed for manager", "dm", "equipment", "delete", []int{}, false, true},
		{"operator at a village", "op", "equipment", "update", []int{1, 2, 3}, false, false},
		{"admin at municipality", "admin1", "occurrences", "delete", []int{1, 2, 3, 4}, false, false},
		{"viewer read-only action", "viewer1", "equipment", "view", []int{1, 2, 3, 4}, false, false},
		{"viewer, write action", "viewer1", "equipment", "update", []int{}, false, true},
		{"category restriction", "cat", "equipment", "update", []int{1, 4}, false, false},
		{"empty category intersection", "dept", "equipment", "update", []int{}, false, true},
		{"unapproved profile", "unap", "equipment", "update", []int{}, false, true},
		{"inactive profile", "inact", "equipment", "update", []int{}, false, true},
		{"grant without profile", "noprof", "equipment", "update", []int{}, false, true},
		{"inactive user, public action", "off", "occurrences", "view", []int{}, false, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := access.Subject{UserID: tc.subject}
			f, err := p.Checker.Filter(ctx, s, tc.module, tc.action)
			require.NoError(t, err)
			assert.Equal(t, tc.unrestricted, f.Unrestricted(), "unrestricted")
			assert.Equal(t, tc.empty, f.Empty(), "empty")
			got := scoped(t, p, "records", f.Scope(hostColumns))
			assert.Equal(t, tc.want, got)
			if !f.Unrestricted() {
				// Records at live locations: exactly what Check allows.
				assert.Equal(t, checked(t, p, s, tc.module, tc.action, live(rows)), without(got, 9))
			}
		})
	}
}

// live drops row 9, whose location is unknown: Check refuses it as
// invalid input, and only unrestricted filters return it.
func live(rows []hostRow) []hostRow {
	return slices.DeleteFunc(slices.Clone(rows), func(r hostRow) bool { return strOrEmpty(r.Location) == "nowhere" })
}

func without(ids []int, drop ...int) []int {
	return slices.DeleteFunc(slices.Clone(ids), func(id int) bool { return slices.Contains(drop, id) })
}

func TestLocationFilter_SubtreesMinusDisabledMunicipalities(t *testing.T) {
	p := world(t)
	ctx := context.Background()
	f, err := p.Checker.LocationFilter(ctx, access.Subject{UserID: "dm"}, "equipment", "create")
	require.NoError(t, err)
	assert.Equal(t, []string{"D"}, f.Roots())
	assert.Equal(t, []string{"M2"}, f.Excluded())
	for loc, want := range map[string]bool{"D": true, "M1": true, "V1": true, "M2": false, "M3": false, "R": false, "": false, "nowhere": false} {
		assert.Equal(t, want, f.Contains(loc), "%q", loc)
	}
	hostTable(t, p, "records", worldRows()...)
	assert.Equal(t, []int{1, 2, 3, 4, 7}, scoped(t, p, "records", f.Scope("location_id")))

	// A category restriction leaves the location filter of the subtree:
	// some record there (of an allowed category) may be acted on.
	f, err = p.Checker.LocationFilter(ctx, access.Subject{UserID: "cat"}, "equipment", "update")
	require.NoError(t, err)
	assert.Equal(t, []string{"M1"}, f.Roots())
	// An empty effective category set allows no record anywhere.
	f, err = p.Checker.LocationFilter(ctx, access.Subject{UserID: "dept"}, "equipment", "update")
	require.NoError(t, err)
	assert.True(t, f.Empty())
	// Unrestricted: every location, none and unknown ones included.
	f, err = p.Checker.LocationFilter(ctx, access.Subject{UserID: "super"}, "equipment", "update")
	require.NoError(t, err)
	assert.True(t, f.Unrestricted())
	assert.True(t, f.Contains("") && f.Contains("nowhere"))
}

func TestFilter_BadInputIsATypedError(t *testing.T) {
	p := world(t)
	ctx := context.Background()
	cases := []struct {
		name    string
		subject access.Subject
		module  string
		action  string
		want    error
	}{
		{"unknown module", access.Subject{UserID: "dm"}, "nope", "view", access.ErrUnknownModule},
		{"unknown action", access.Subject{UserID: "dm"}, "occurrences", "fly", access.ErrUnknownAction},
		{"unknown user", access.Subject{UserID: "ghost"}, "occurrences", "view", users.ErrNotFound},
		{"impersonation without session", access.Subject{UserID: "dm", ImpersonatorID: "super"}, "occurrences", "view", access.ErrInvalidToken},
		{"system is not a subject", access.System(), "occurrences", "view", access.ErrInvalidInput},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f, err := p.Checker.Filter(ctx, tc.subject, tc.module, tc.action)
			assert.ErrorIs(t, err, tc.want)
			assert.Nil(t, f)
			lf, err := p.Checker.LocationFilter(ctx, tc.subject, tc.module, tc.action)
			assert.ErrorIs(t, err, tc.want)
			assert.True(t, lf.Empty())
		})
	}
}

// A nil *RecordFilter (say, the result of a call whose error was ignored)
// selects nothing.
func TestFilter_NilFilterSelectsNothing(t *testing.T) {
	p := world(t)
	hostTable(t, p, "records", worldRows()...)
	var f *access.RecordFilter
	assert.True(t, f.Empty())
	assert.False(t, f.Unrestricted())
	assert.True(t, f.Location().Empty())
	assert.Empty(t, scoped(t, p, "records", f.Scope(hostColumns)))
}

func TestFilter_InvalidColumnFailsTheQuery(t *testing.T) {
	p := world(t)
	ctx := context.Background()
	hostTable(t, p, "records", worldRows()...)
	bad := []string{
		"location_id; DROP TABLE records",
		"location_id) OR (1=1",
		"x' OR '1'='1",
		`location_id"`,
		"location_id`",
		"location id",
		"a.b.c",
		".location_id",
		"records.",
		"1column",
		"location-id",
		"lócation",
		strings.Repeat("c", 65),
	}
	for _, subject := range []string{"super", "dm", "dept", "off"} { // unrestricted, restricted, empty
		f, err := p.Checker.Filter(ctx, access.Subject{UserID: subject}, "equipment", "update")
		require.NoError(t, err)
		lf, err := p.Checker.LocationFilter(ctx, access.Subject{UserID: subject}, "equipment", "update")
		require.NoError(t, err)
		for _, col := range bad {
			for i, cols := range []access.Columns{
				{Location: col, Category: "category", Organisation: "org_id"},
				{Location: "location_id", Category: col, Organisation: "org_id"},
				{Location: "location_id", Category: "category", Organisation: col},
			} {
				var ids []int
				err := p.DB().Table("records").Scopes(f.Scope(cols)).Pluck("id", &ids).Error
				assert.ErrorIs(t, err, access.ErrInvalidInput, "%s, column %d %q", subject, i, col)
				assert.Empty(t, ids)
			}
			var ids []int
			err := p.DB().Table("records").Scopes(lf.Scope(col)).Pluck("id", &ids).Error
			assert.ErrorIs(t, err, location.ErrInvalidInput, "%s, location filter, column %q", subject, col)
			assert.Empty(t, ids)
		}
	}
	// Nothing was dropped or changed.
	assert.Len(t, scoped(t, p, "records", func(db *gorm.DB) *gorm.DB { return db }), len(worldRows()))
}

func TestFilter_QualifiedColumns(t *testing.T) {
	p := world(t)
	ctx := context.Background()
	hostTable(t, p, "records", worldRows()...)
	f, err := p.Checker.Filter(ctx, access.Subject{UserID: "cat"}, "equipment", "update")
	require.NoError(t, err)
	ids := []int{}
	require.NoError(t, p.DB().Table("records AS r").
		Scopes(f.Scope(access.Columns{Location: "r.location_id", Category: "r.category"})).
		Order("r.id").Pluck("r.id", &ids).Error)
	assert.Equal(t, []int{1, 4}, ids)
}

// An empty column name means the table has no such column: each row holds
// no value there, as a Resource without that field.
func TestFilter_EmptyColumnMeansNoSuchColumn(t *testing.T) {
	p := world(t)
	ctx := context.Background()
	rows := worldRows()
	hostTable(t, p, "records", rows...)
	cases := []struct {
		name, subject string
		cols          access.Columns
		want          []int
	}{
		{"no location column: restricted filter", "dm", access.Columns{Category: "category"}, []int{}},
		{"no location column: public filter with a disabled municipality", "", access.Columns{Category: "category"}, []int{}},
		{"no location column: unrestricted filter", "super", access.Columns{}, []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}},
		{"no category column: restricted categories", "cat", access.Columns{Location: "location_id"}, []int{}},
		{"no category column: every category", "dm", access.Columns{Location: "location_id"}, []int{1, 2, 3, 4, 7}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			module, action := "equipment", "create"
			if tc.subject == "cat" {
				action = "update"
			}
			if tc.subject == "" {
				module, action = "occupancy", "view"
				require.NoError(t, p.Admin.SetModuleEnabled(ctx, access.System(), "M3", "occupancy", false))
			}
			s := access.Subject{UserID: tc.subject}
			f, err := p.Checker.Filter(ctx, s, module, action)
			require.NoError(t, err)
			assert.Equal(t, tc.want, scoped(t, p, "records", f.Scope(tc.cols)))
		})
	}
}

// The filter's condition is one parenthesised group, ANDed with the host's
// own conditions: a host OR cannot widen it.
func TestFilter_HostConditionsCannotWidenTheScope(t *testing.T) {
	p := world(t)
	ctx := context.Background()
	hostTable(t, p, "records", worldRows()...)
	for _, subject := range []string{"op", "cat", ""} {
		module, action := "equipment", "update"
		if subject == "" {
			module, action = "occupancy", "view"
			require.NoError(t, p.Admin.SetModuleEnabled(ctx, access.System(), "M3", "occupancy", false))
		}
		f, err := p.Checker.Filter(ctx, access.Subject{UserID: subject}, module, action)
		require.NoError(t, err)
		alone := scoped(t, p, "records", f.Scope(hostColumns))
		for _, where := range []string{"id = 6 OR id = 8 OR 1 = 1", "id = 6 OR id > 0"} {
			before := []int{}
			require.NoError(t, p.DB().Table("records").Where(where).Scopes(f.Scope(hostColumns)).Order("id").Pluck("id", &before).Error)
			after := []int{}
			require.NoError(t, p.DB().Table("records").Scopes(f.Scope(hostColumns)).Where(where).Order("id").Pluck("id", &after).Error)
			assert.Equal(t, alone, before, "%q, where before", subject)
			assert.Equal(t, alone, after, "%q, where after", subject)
		}
	}
}

// Scopes read subtrees from the closure table when the query runs: a move
// or a delete changes what an existing filter's scope selects at once, and
// filters built afterwards (Contains included) follow too.
func TestFilter_MovesAndDeletesChangeScopesAtOnce(t *testing.T) {
	p := world(t)
	ctx := context.Background()
	sys := access.System()
	rows := worldRows()
	hostTable(t, p, "records", rows...)
	dm := access.Subject{UserID: "dm"}
	old, err := p.Checker.Filter(ctx, dm, "equipment", "create")
	require.NoError(t, err)
	assert.Equal(t, []int{1, 2, 3, 4, 7}, scoped(t, p, "records", old.Scope(hostColumns)))

	// M3 moves into dm's district.
	require.NoError(t, p.Admin.MoveLocation(ctx, sys, "M3", "D"))
	fresh, err := p.Checker.Filter(ctx, dm, "equipment", "create")
	require.NoError(t, err)
	for _, f := range []*access.RecordFilter{old, fresh} {
		assert.Equal(t, []int{1, 2, 3, 4, 6, 7}, scoped(t, p, "records", f.Scope(hostColumns)))
		assert.Equal(t, []int{1, 2, 3, 4, 6, 7}, scoped(t, p, "records", f.Location().Scope("location_id")))
	}
	assert.True(t, fresh.Location().Contains("M3"))
	assert.Equal(t, checked(t, p, dm, "equipment", "create", live(rows)), []int{1, 2, 3, 4, 6, 7})

	// V1 is deleted: its records are at a deleted location now.
	require.NoError(t, p.Admin.DeleteLocation(ctx, sys, "V1"))
	fresh, err = p.Checker.Filter(ctx, dm, "equipment", "create")
	require.NoError(t, err)
	for _, f := range []*access.RecordFilter{old, fresh} {
		assert.Equal(t, []int{4, 6, 7}, scoped(t, p, "records", f.Scope(hostColumns)))
	}
	assert.False(t, fresh.Location().Contains("V1"))

	// The operator whose grant was at V1 lost it with the location.
	op, err := p.Checker.Filter(ctx, access.Subject{UserID: "op"}, "equipment", "update")
	require.NoError(t, err)
	assert.True(t, op.Empty())

	// dm's district moves out of the region: nothing changes for dm.
	require.NoError(t, p.Admin.MoveLocation(ctx, sys, "D", ""))
	assert.Equal(t, []int{4, 6, 7}, scoped(t, p, "records", old.Scope(hostColumns)))
}

// The SQL of a filter grows with grants and disabled municipalities, never
// with the size of subtrees, and carries every value as a parameter.
func TestFilter_SQLIsParameterisedAndIndependentOfSubtreeSize(t *testing.T) {
	p := world(t)
	ctx := context.Background()
	hostTable(t, p, "records", worldRows()...)
	// On PostgreSQL the size of the subtrees picks one of three forms of
	// the same subtree test (location.Filter.Condition); sqlOf writes each
	// as the plain semi-join, with its values in order.
	sqlOf := func(subject, module, action string) (string, []any) {
		f, err := p.Checker.Filter(ctx, access.Subject{UserID: subject}, module, action)
		require.NoError(t, err)
		stmt := p.DB().Session(&gorm.Session{DryRun: true}).Table("records").Scopes(f.Scope(hostColumns)).Find(&[]hostRow{}).Statement
		return plainForm(t, stmt.SQL.String(), stmt.Vars)
	}
	type shape struct {
		sql  string
		vars []any
	}
	require.NoError(t, p.Admin.SetModuleEnabled(ctx, access.System(), "M3", "occupancy", false))
	subjects := [][3]string{{"dm", "equipment", "create"}, {"cat", "equipment", "update"}, {"op", "equipment", "update"}, {"", "occupancy", "view"}}
	before := map[[3]string]shape{}
	for _, s := range subjects {
		sql, vars := sqlOf(s[0], s[1], s[2])
		before[s] = shape{sql, vars}
		assert.NotContains(t, sql, "'", "%v: values are parameters, not literals", s)
		assert.NotEmpty(t, vars, "%v", s)
	}
	var locs []location.Location
	for i := range 300 {
		locs = append(locs, location.Location{ID: fmt.Sprintf("V1-%d", i), Level: "village", ParentID: "M1"})
	}
	testkit.Locations(t, p, locs...)
	for _, s := range subjects {
		sql, vars := sqlOf(s[0], s[1], s[2])
		assert.Equal(t, before[s], shape{sql, vars}, "%v", s)
	}
	// More grants and carve-outs make it grow (compared as rendered, in
	// one PostgreSQL form: there a carve-out lies inside the subtree
	// test's subquery, which plainForm does not rewrite, and the size of
	// the subtrees may change the form).
	rawOf := func(subject, module, action string) (string, []any) {
		f, err := p.Checker.Filter(ctx, access.Subject{UserID: subject}, module, action)
		require.NoError(t, err)
		stmt := p.DB().WithContext(dbx.WithFilterForm(ctx, dbx.FormJoin)).Session(&gorm.Session{DryRun: true}).Table("records").Scopes(f.Scope(hostColumns)).Find(&[]hostRow{}).Statement
		return stmt.SQL.String(), stmt.Vars
	}
	beforeSQL, beforeVars := rawOf("dm", "equipment", "create")
	require.NoError(t, p.Admin.SetModuleEnabled(ctx, access.System(), "M1", "equipment", false))
	sql, vars := rawOf("dm", "equipment", "create")
	assert.Greater(t, len(sql), len(beforeSQL))
	assert.Greater(t, len(vars), len(beforeVars))
	// MySQL/MariaDB compare binary strings on both sides of the carve-out.
	assert.Regexp(t, `NOT IN \(SELECT (CAST\()?descendant_id( AS BINARY\))? FROM townhall_location_paths WHERE ancestor_id IN \(`, sql)
}

// plainForm rewrites PostgreSQL's array and hashed forms of a subtree test
// (location.Filter.Condition) in sql as the plain semi-join, and returns
// the SQL with "?" for "$n" and the values in order, those of the array
// form's second subquery dropped after checking that they repeat the
// first's. SQL of other databases passes through with its values.
func plainForm(t *testing.T, sql string, vars []any) (string, []any) {
	t.Helper()
	drop := map[int]bool{}
	sql = arrayForm.ReplaceAllStringFunc(sql, func(m string) string {
		g := arrayForm.FindStringSubmatch(m)
		first, second := placeholder.FindAllString(g[1], -1), placeholder.FindAllString(g[2], -1)
		require.Equal(t, len(first), len(second), m)
		for k := range first {
			i, _ := strconv.Atoi(first[k][1:])
			j, _ := strconv.Atoi(second[k][1:])
			require.Equal(t, vars[i-1], vars[j-1], "the array repeats the guard's roots: %s", m)
			drop[j-1] = true
		}
		return `("location_id" IN (` + subtreeSQL + g[1] + `)))`
	})
	sql = hashedForm.ReplaceAllString(sql, `("location_id" IN (`+subtreeSQL+`$1)))`)
	var kept []any
	for i, v := range vars {
		if !drop[i] {
			kept = append(kept, v)
		}
	}
	return placeholder.ReplaceAllString(sql, "?"), kept
}

const subtreeSQL = `SELECT descendant_id FROM townhall_location_paths WHERE ancestor_id IN (`

var (
	placeholder = regexp.MustCompile(`\$\d+`)
	rootsList   = `((?:\$\d+,?)+)`
	arrayForm   = regexp.MustCompile(`\(\("location_id" IN \(` + regexp.QuoteMeta(subtreeSQL) + rootsList + `\)\)\) IS TRUE AND "location_id" = ANY\(ARRAY\(` +
		regexp.QuoteMeta(subtreeSQL) + rootsList + `\)\)\)\)`)
	hashedForm = regexp.MustCompile(`\(\("location_id" IN \(` + regexp.QuoteMeta(subtreeSQL) + rootsList + `\)\)\) IS TRUE\)`)
)

// Affiliated actions constrain the organisation column: records of an
// organisation with a live link to the subject (at the checker's clock),
// serving the module, under a counting grant, in its categories; the
// record's own location only needs to be live and its municipality to
// have the module enabled (SPEC §2 step 8).
func TestFilter_AffiliatedActions(t *testing.T) {
	w := newAffWorld(t)
	ctx := context.Background()
	p := w.p
	rows := []hostRow{
		row(1, "V1", "dental", "H1"),
		row(2, "V1", "-", "H1"),
		row(3, "-", "dental", "H1"),
		row(4, "M2", "dental", "H2"),
		row(5, "V2", "dental", "H4"),
		row(6, "V1", "dental", "H3"),
		row(7, "M2", "dental", "H1"),
		row(8, "-", "-", "-"),
		row(9, "V1", "dental", "nobody"),
		row(10, "", "dental", "H1"),
		row(11, "nowhere", "dental", "H1"),
	}
	hostTable(t, p, "claims", rows...)
	cases := []struct {
		subject string
		want    []int
	}{
		{"ca", []int{1, 2, 3, 7, 10}},
		{"cat", []int{1, 3, 7, 10}},
		{"vill", []int{5}},
		{"past", []int{}},
		{"noaff", []int{}},
		{"unap", []int{}},
		{"inact", []int{}},
		{"portal", []int{}},
		{"super", []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}},
	}
	verify := func(t *testing.T, subject string, want []int) {
		t.Helper()
		s := access.Subject{UserID: subject}
		f, err := p.Checker.Filter(ctx, s, "claims", "submit")
		require.NoError(t, err)
		got := scoped(t, p, "claims", f.Scope(hostColumns))
		assert.Equal(t, want, got, "%s", subject)
		if !f.Unrestricted() {
			assert.Equal(t, checked(t, p, s, "claims", "submit", live(rows)), without(got, 11), "%s agrees with Check", subject)
		}
	}
	for _, tc := range cases {
		verify(t, tc.subject, tc.want)
	}

	// An hour and a half later, ca's and vill's links to H4 are live.
	w.clock.Advance(90 * time.Minute)
	verify(t, "ca", []int{1, 2, 3, 5, 7, 10})

	// claims disabled in M1: records located there, and records without a
	// location whose organisation is there, are out; H1's record located
	// in M2 is still in.
	require.NoError(t, p.Admin.SetModuleEnabled(ctx, access.System(), "M1", "claims", false))
	verify(t, "ca", []int{7})
	verify(t, "cat", []int{7})

	// Without an organisation column no record is affiliated.
	f, err := p.Checker.Filter(ctx, access.Subject{UserID: "ca"}, "claims", "submit")
	require.NoError(t, err)
	assert.Empty(t, scoped(t, p, "claims", f.Scope(access.Columns{Location: "location_id", Category: "category"})))
}

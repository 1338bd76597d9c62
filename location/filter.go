package location

import (
	"fmt"
	"slices"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/civicstack/townhall/internal/dbx"
)

// Filter is a set of locations, as a GORM scope over a host table's
// location column (Scope) and as a predicate (Contains). It is one of:
//
//   - empty: nothing, not even rows without a location (the zero Filter);
//   - unrestricted: everything, rows with a NULL, unknown or deleted
//     location included; Scope adds no condition at all;
//   - the live subtrees of a set of roots, minus the subtrees of a set of
//     excluded locations (SubtreesFilter);
//   - every live location minus the subtrees of a set of excluded
//     locations (LiveFilter).
//
// Scope reads subtrees from the closure table (PathsTable) when the query
// runs, so its SQL grows with the number of roots and exclusions, never
// with the size of the subtrees, and a move or delete of a location changes
// what it selects at once. Contains answers from the Tree the filter was
// built on (for the checker, its snapshot). The two agree when the filter
// is built; build one per request rather than keeping it across tree
// changes. Rows whose location is NULL, unknown or deleted are only in
// unrestricted filters. A Filter is an immutable value, safe for concurrent
// use.
//
// The condition, every value a bound parameter:
//
//	col IN (SELECT descendant_id FROM townhall_location_paths WHERE ancestor_id IN (?, ...))
//	AND col NOT IN (SELECT descendant_id FROM townhall_location_paths WHERE ancestor_id IN (?, ...))
//
// with "col IN (SELECT id FROM townhall_locations WHERE deleted_at IS
// NULL)" as the first line of a LiveFilter; on PostgreSQL a SubtreesFilter
// is one test of the column against "SELECT descendant_id ... WHERE
// ancestor_id IN (?, ...) AND descendant_id NOT IN (SELECT descendant_id
// ... WHERE ancestor_id IN (?, ...))" in one of four forms, or, for one
// root without descendants, first compared with that root's own closure
// row; on MySQL and MariaDB the column is also compared as a binary
// string (see Condition).
type Filter struct {
	kind    filterKind
	tree    *Tree
	roots   []string // kindSubtrees: sorted, none inside another
	exclude []string // sorted, none inside another
	// subtrees is the number of locations in the roots' subtrees,
	// carve-outs included; wide is whether the selected locations make
	// up at least one in wideShare of the tree. They pick the PostgreSQL
	// form of a SubtreesFilter (see Condition).
	subtrees int
	wide     bool
}

// pgForm names the three PostgreSQL forms of a subtrees condition.
type pgForm uint8

const (
	pgJoin       pgForm = iota // col IN (subquery): an index-driven semi-join
	pgArray                    // col = ANY(ARRAY(subquery)), guarded by the hashed subquery
	pgHashed                   // (col IN (subquery)) IS TRUE: a hashed SubPlan
	pgIndexArray               // col = ANY(ARRAY(subquery)) alone, on an indexed column
	pgLeaf                     // col = (the one root's own closure row), for one leaf root
)

// wideShare is the share of the tree (one in wideShare locations) from
// which a subtrees filter counts as wide on PostgreSQL, where the host
// column's index is not known (see Condition). Reading a record
// through the location index cost about seven times as much as testing it
// in a sequential scan (0.7 µs against 0.1 µs per record on PostgreSQL 15,
// BenchmarkFilterScale), so from about an eighth of the records a scan
// wins; the share of locations stands in for the share of records.
const wideShare = 8

// maxArray is the largest subtree total (the roots' subtrees, carve-outs
// included) for which a narrow filter takes the array form on PostgreSQL.
// Without an index on the host column the server searches the array
// linearly, but only for the records that passed the hashed guard, so the
// cost stays below maxArray/2 comparisons per record in the roots'
// subtrees.
const maxArray = 256

// maxHashed is the largest subtree total for which a wide filter takes the
// hashed form on PostgreSQL: about 2 MB of closure rows as the server
// sizes them (40 bytes each), within the default hash_mem of every
// supported version, so that the server does hash them (see Condition).
const maxHashed = 50_000

type filterKind uint8

const (
	filterEmpty filterKind = iota // the zero value selects nothing
	filterSubtrees
	filterLive
	filterUnrestricted
)

// EmptyFilter returns the filter that selects nothing (the zero Filter).
func EmptyFilter() Filter { return Filter{} }

// UnrestrictedFilter returns the filter that selects everything.
func UnrestrictedFilter() Filter { return Filter{kind: filterUnrestricted} }

// SubtreesFilter returns the filter of the live subtrees of roots, minus
// the subtrees of exclude, as t knows them. Roots and exclusions that are
// not in t, roots inside another root or an exclusion, and exclusions
// outside every root are dropped; with no root left, or a nil t, it is the
// empty filter.
func SubtreesFilter(t *Tree, roots, exclude []string) Filter {
	if t == nil {
		return Filter{}
	}
	ex := outermost(t, exclude, nil)
	r := outermost(t, roots, ex)
	if len(r) == 0 {
		return Filter{}
	}
	var kept []string
	subtrees := 0
	for _, id := range r {
		subtrees += t.SubtreeSize(id)
	}
	size := subtrees
	for _, e := range ex {
		if withinAny(t, e, r) {
			kept = append(kept, e)
			size -= t.SubtreeSize(e)
		}
	}
	return Filter{kind: filterSubtrees, tree: t, roots: r, exclude: kept, subtrees: subtrees, wide: size*wideShare >= t.Len()}
}

// pgForms maps the forms tests may force (dbx.WithFilterForm) to the
// PostgreSQL forms.
var pgForms = map[dbx.FilterForm]pgForm{dbx.FormJoin: pgJoin, dbx.FormArray: pgArray, dbx.FormHashed: pgHashed, dbx.FormIndexArray: pgIndexArray, dbx.FormLeaf: pgLeaf}

// pgForm returns the PostgreSQL form of a SubtreesFilter on col of the
// table db's statement reads (see Condition).
func (f Filter) pgForm(db *gorm.DB, col clause.Column) pgForm {
	if form, ok := forcedForm(db, pgForms); ok {
		return form
	}
	if f.subtrees > maxHashed {
		return pgJoin
	}
	switch hostIndex(db, col) {
	case indexed:
		// Wide or narrow: the hashed test reads every record, where the
		// array reads those in scope through the index (see Condition).
		return pgIndexArray
	case unindexed:
		if f.leaf() {
			return pgLeaf
		}
		return pgJoin
	}
	switch {
	case f.wide:
		return pgHashed
	case f.subtrees <= maxArray:
		return pgArray
	}
	return pgJoin
}

// leaf reports whether a SubtreesFilter is one root without descendants
// in its tree.
func (f Filter) leaf() bool { return len(f.roots) == 1 && f.subtrees == 1 }

// LiveFilter returns the filter of every live location minus the subtrees
// of exclude, as t knows them (exclusions not in t are dropped). It differs
// from UnrestrictedFilter in refusing rows whose location is NULL, unknown
// or deleted. With a nil t it is the empty filter.
func LiveFilter(t *Tree, exclude []string) Filter {
	if t == nil {
		return Filter{}
	}
	return Filter{kind: filterLive, tree: t, exclude: outermost(t, exclude, nil)}
}

// outermost returns the IDs of ids that are in t and lie neither inside
// another of them nor inside one of outside, sorted and without
// duplicates.
func outermost(t *Tree, ids, outside []string) []string {
	var out []string
	for _, id := range ids {
		if _, ok := t.Index(id); !ok || withinAny(t, id, outside) {
			continue
		}
		inner := slices.ContainsFunc(ids, func(other string) bool { return other != id && t.IsWithin(id, other) })
		if !inner {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// withinAny reports whether id lies in the subtree of one of roots.
func withinAny(t *Tree, id string, roots []string) bool {
	return slices.ContainsFunc(roots, func(r string) bool { return t.IsWithin(id, r) })
}

// Unrestricted reports whether the filter selects everything: Scope adds
// no condition.
func (f Filter) Unrestricted() bool { return f.kind == filterUnrestricted }

// Empty reports whether the filter selects nothing.
func (f Filter) Empty() bool { return f.kind == filterEmpty }

// Roots returns the subtree roots of a SubtreesFilter (nil for the other
// kinds).
func (f Filter) Roots() []string { return slices.Clone(f.roots) }

// Excluded returns the roots of the subtrees the filter carves out.
func (f Filter) Excluded() []string { return slices.Clone(f.exclude) }

// Contains reports whether a record at locationID is selected. An empty
// locationID (a record with no location), an unknown or a deleted
// location is selected only by an unrestricted filter.
func (f Filter) Contains(locationID string) bool {
	switch f.kind {
	case filterUnrestricted:
		return true
	case filterEmpty:
		return false
	}
	if _, ok := f.tree.Index(locationID); !ok {
		return false
	}
	if f.kind == filterSubtrees && !withinAny(f.tree, locationID, f.roots) {
		return false
	}
	return !withinAny(f.tree, locationID, f.exclude)
}

// Scope returns a GORM scope restricting a query to rows whose column (an
// identifier, optionally table-qualified: "t.location_id") holds a
// location the filter selects. An empty column means the table has no
// location column: every row then has no location, so only an unrestricted
// filter selects it. An invalid column adds an error wrapping
// ErrInvalidInput to the query, which then fails instead of running
// unfiltered. The table must live in the database of the location tables.
func (f Filter) Scope(column string) func(*gorm.DB) *gorm.DB {
	return func(db *gorm.DB) *gorm.DB {
		cond, err := f.Condition(db, column)
		if err != nil {
			_ = db.AddError(err)
			return db
		}
		if cond == nil {
			return db
		}
		return db.Where(cond)
	}
}

// Condition returns the filter's condition on column, for the database of
// db, as a GORM clause expression to combine with other conditions under
// AND and OR; nil means no condition (an unrestricted filter). Column
// follows the rules of Scope; an invalid one is an error wrapping
// ErrInvalidInput. The expression carries its own parentheses, and every
// value in it is a bound parameter. It is not meant to be negated: NOT of
// it is not the filter's complement (the forms below treat a NULL column
// differently under NOT).
//
// On PostgreSQL a subtrees condition takes one of five forms, chosen from
// whether the host column is indexed and from the size of the subtrees as
// the filter's tree knows them, so that the plan is sound whether the
// server plans each execution for its values (a custom plan) or keeps one
// plan for all values of a prepared statement (a generic plan, which
// drivers such as pgx get by default after five executions, and which
// assumes an average subtree of a few locations). The column is indexed
// when a valid, non-partial index of its table leads with it; the table
// is the column's qualifier, else the query's (db.Table, or the model's).
// PostgreSQL's catalog answers, and a Store's database keeps the answer
// for a minute (NewStore).
//
//   - over an indexed column "col = ANY(ARRAY(subquery))", narrow or
//     wide: the array drives one scan of the index in every plan (a plain
//     semi-join may be planned as a hash join over the whole table when
//     the server knows the values, and as one index lookup per location
//     in a generic plan: 2.1 s against 0.29 s at 50,000 locations of a
//     3,000,000-record table whose rows the query reads). The hashed
//     test (below) reads every record: at 50,000 locations of that table
//     it took 3.5 times as long as the array (0.49 s against 0.14 s,
//     count(*)), and more than the recursive CTE;
//   - over an unindexed column the plain "col IN (subquery)": the server
//     can only read every record, and a hashed semi-join costs less per
//     record than the hashed test; but for one root without descendants
//     "(col = (SELECT descendant_id ... WHERE ancestor_id = ? AND
//     descendant_id = ?) OR (SELECT EXISTS (... depth > 0)) AND col IN
//     (subquery))", one comparison per record (the scalar subquery and
//     the EXISTS are InitPlans, run once), where a hash probe cost 40 %
//     more per record;
//   - when the table is not known (an alias, a table expression, a dry
//     run) or the lookup fails: the hashed test for wide filters,
//     "(col IN (subquery)) IS TRUE AND col = ANY(ARRAY(subquery))" for
//     small ones (the roots' subtrees at most 256 locations), where the
//     array drives an index if there is one and the hashed test, evaluated
//     first, keeps the server's linear search of the array to the records
//     in scope if there is none, and the plain semi-join otherwise.
//
// Beyond 50,000 locations in the roots' subtrees it is always the plain
// semi-join: the server hashes a subquery only when its estimated result
// fits in hash_mem (work_mem × hash_mem_multiplier, 4 MB by default before
// PostgreSQL 15), about 2 MB of closure rows, and an array would be
// searched linearly. The five select the same rows.
//
// IDs compare byte for byte on every database. On MySQL and MariaDB, whose
// collations may ignore case or trailing spaces, the column is compared
// both as is (so that an index on it serves the query) and as a binary
// string against binary strings ("CAST(col AS BINARY) IN (SELECT
// CAST(descendant_id AS BINARY) ...)", so that the result is exact): with
// binary strings on both sides the server materialises the subquery once
// and probes it per record, where "CAST(col AS BINARY) IN (SELECT
// descendant_id ...)" made MariaDB 10.11 search the closure table's index
// again for every record (4× slower at two districts). A subtrees condition
// there keeps only the binary test when the host column has no index, or
// has one but the filter is wide (an eighth of the tree or more), since
// the records are then scanned anyway; carve-outs are taken inside the one
// subquery, as on PostgreSQL.
func (f Filter) Condition(db *gorm.DB, column string) (clause.Expression, error) {
	var col clause.Column
	if column != "" {
		var ok bool
		if col, ok = dbx.ParseColumn(column); !ok {
			return nil, fmt.Errorf("%w: column name %q", ErrInvalidInput, column)
		}
	}
	switch {
	case f.kind == filterUnrestricted:
		return nil, nil
	case f.kind == filterEmpty || column == "":
		return clause.Expr{SQL: falseSQL}, nil
	}
	dialect := dbx.SQLite
	if db != nil {
		dialect = dbx.DialectOf(db)
	}
	mysql := dialect == dbx.MySQL
	form := pgJoin
	if f.kind == filterSubtrees && dialect == dbx.Postgres {
		form = f.pgForm(db, col)
	}
	if f.kind == filterSubtrees && dialect == dbx.Postgres {
		return f.pgCondition(form, col), nil
	}
	if f.kind == filterSubtrees && mysql {
		return f.myCondition(f.myForm(db, col), col), nil
	}
	if f.kind == filterSubtrees && dialect == dbx.SQLite && f.sqLeaf(db, col) {
		return f.leafCondition(col, subquery("descendant_id", subtreesOf, f.roots)), nil
	}
	var in clause.Expression
	switch {
	case f.kind == filterLive && mysql:
		// Every live location has its own row as a descendant: a
		// subquery without conditions, as exactIn needs on MySQL.
		in = exactIn(mysql, col, "descendant_id", PathsTable)
	case f.kind == filterLive:
		in = exactIn(mysql, col, "id", LocationsTable+" WHERE deleted_at IS NULL")
	case len(f.exclude) > 0:
		// A subtrees filter on SQLite (the other databases have theirs):
		// carve-outs inside the one subquery, so that each record is
		// looked up once, against the locations selected.
		return exactIn(false, col, "descendant_id", subtreesOf+" AND descendant_id NOT IN (SELECT descendant_id FROM "+subtreesOf+")", f.roots, f.exclude), nil
	default:
		in = exactIn(mysql, col, "descendant_id", subtreesOf, f.roots)
	}
	if len(f.exclude) == 0 {
		return in, nil
	}
	out := exactNotIn(mysql, col, "descendant_id", subtreesOf, f.exclude)
	return clause.Expr{SQL: "(? AND ?)", Vars: []any{in, out}}, nil
}

// pgCondition is Condition for a SubtreesFilter on PostgreSQL, in form.
// Carve-outs are taken from the closure rows of the roots, inside the
// subquery, so that the server tests each record once, against the
// locations selected: "col NOT IN (subquery)" beside it would be a second
// hashed test per record (twice the IN list's time at a tenth carved out
// of an unindexed table, BenchmarkFilterSweep).
func (f Filter) pgCondition(form pgForm, col clause.Column) clause.Expression {
	sub := subquery("descendant_id", subtreesOf, f.roots)
	if len(f.exclude) > 0 {
		sub = subquery("descendant_id", subtreesOf+" AND descendant_id NOT IN (SELECT descendant_id FROM "+subtreesOf+")", f.roots, f.exclude)
	}
	if form == pgLeaf && f.leaf() {
		return f.leafCondition(col, sub)
	}
	switch form {
	case pgHashed:
		// Not at the top level of the WHERE clause, the IN stays a hashed
		// SubPlan (see Condition).
		return clause.Expr{SQL: "((? IN (?)) IS TRUE)", Vars: []any{col, sub}}
	case pgArray:
		// The guard first: inside an OR the server keeps this order.
		return clause.Expr{SQL: "((? IN (?)) IS TRUE AND ? = ANY(ARRAY(?)))", Vars: []any{col, sub, col, sub}}
	case pgIndexArray:
		return clause.Expr{SQL: "(? = ANY(ARRAY(?)))", Vars: []any{col, sub}}
	}
	return clause.Expr{SQL: "(? IN (?))", Vars: []any{col, sub}}
}

// leafCondition is the leaf form of a filter of one leaf root (f.leaf)
// on PostgreSQL and SQLite: one comparison per record, as "col = ?"
// costs, where every other form probes a hash, an index or an array. The
// subqueries do not depend on the record, so the server runs each once; the
// one after OR adds the subtree sub should the leaf have gained children
// since the filter was built.
func (f Filter) leafCondition(col clause.Column, sub clause.Expression) clause.Expression {
	return clause.Expr{SQL: "(? = (SELECT descendant_id FROM " + PathsTable + " WHERE ancestor_id = ? AND descendant_id = ?)" +
		" OR (SELECT EXISTS (SELECT 1 FROM " + PathsTable + " WHERE ancestor_id = ? AND depth > 0)) AND ? IN (?))",
		Vars: []any{col, f.roots[0], f.roots[0], f.roots[0], col, sub}}
}

// sqForms maps the forms tests may force (dbx.WithFilterForm) to whether
// SQLite takes the leaf form (else the semi-join).
var sqForms = map[dbx.FilterForm]bool{dbx.FormJoin: false, dbx.FormLeaf: true}

// sqLeaf reports whether a SubtreesFilter on SQLite takes the leaf form:
// for one leaf root over a column without an index (with one, the
// semi-join reads the records in scope through it).
func (f Filter) sqLeaf(db *gorm.DB, col clause.Column) bool {
	if !f.leaf() {
		return false
	}
	if leaf, ok := forcedForm(db, sqForms); ok {
		return leaf
	}
	return hostIndex(db, col) == unindexed
}

// myForm names the MySQL and MariaDB forms of a subtrees condition.
type myForm uint8

const (
	myExact  myForm = iota // the binary test and the test under the column's collation
	myKey                  // myExact with the closure rows read through their primary key
	myBinary               // the binary test alone
)

// myForms maps the forms tests may force (dbx.WithFilterForm) to the
// MySQL and MariaDB forms.
var myForms = map[dbx.FilterForm]myForm{dbx.FormMyExact: myExact, dbx.FormMyKey: myKey, dbx.FormMyBinary: myBinary}

// forcedForm returns the form of forms that db's context forces, if any.
func forcedForm[F any](db *gorm.DB, forms map[dbx.FilterForm]F) (F, bool) {
	var none F
	if db == nil || db.Statement == nil {
		return none, false
	}
	forced, _ := dbx.FilterFormOf(db.Statement.Context)
	form, ok := forms[forced]
	return form, ok
}

// myForm returns the MySQL and MariaDB form of a SubtreesFilter on col of
// the table db's statement reads: with the host column indexed, the binary
// test alone for a wide filter and myKey for the others; without an index,
// the binary test alone; myExact when the index is not known.
func (f Filter) myForm(db *gorm.DB, col clause.Column) myForm {
	if form, ok := forcedForm(db, myForms); ok {
		return form
	}
	switch hostIndex(db, col) {
	case indexed:
		if f.wide {
			// Reading a wide scope through the host's index cost more
			// than scanning: MariaDB 10.11 planned the collation-bound
			// half as a FirstMatch over the closure rows with a block
			// nested loop (five districts of 10,000 locations each,
			// 300,000 records: past 10 s, against 0.61 s for the IN list;
			// the binary test alone 0.46-0.89 s).
			return myBinary
		}
		// The closure table's primary key (ancestor first) reads the
		// subtrees, then the host's index the records: left to itself,
		// MariaDB 10.11 answers several roots by a LooseScan of the whole
		// descendant index (7x the IN list at five districts of 3,000
		// locations).
		return myKey
	case unindexed:
		// Without a host index the half that would let one drive the
		// query only costs: MariaDB 10.11 looked each record up in the
		// closure table's descendant index (15.8 s against 3.4 s for the
		// binary half alone, ten locations, 300,000 records, under load).
		return myBinary
	}
	return myExact
}

// myCondition is Condition for a SubtreesFilter on MySQL and MariaDB, in
// form. As on PostgreSQL, carve-outs are taken from the roots' closure
// rows inside the one subquery, so that each record is tested once.
func (f Filter) myCondition(form myForm, col clause.Column) clause.Expression {
	from, vars := subtreesOf, []any{f.roots}
	if form == myKey {
		from = subtreesOfByKey
	}
	if len(f.exclude) > 0 {
		from += " AND descendant_id NOT IN (SELECT descendant_id FROM " + subtreesOf + ")"
		vars = append(vars, f.exclude)
	}
	if form == myBinary {
		return clause.Expr{SQL: "(CAST(? AS BINARY) IN (?))", Vars: []any{col, subquery("CAST(descendant_id AS BINARY)", from, vars...)}}
	}
	return exactIn(true, col, "descendant_id", from, vars...)
}

// exactIn returns "col IN (SELECT key FROM from)" comparing byte for byte;
// from is fixed SQL text (a table and its conditions) whose '?' take vars.
// On MySQL and MariaDB (mysql true) it is
//
//	CAST(col AS BINARY) IN (SELECT CAST(key AS BINARY) FROM from)
//	AND col IN (SELECT key FROM from)
//
// The second, under the column's collation, lets an index on the column
// drive the query; the first makes it exact (see Condition). The exact one
// comes first: where the condition is evaluated row by row (under an OR,
// as in an affiliated action's filter), MariaDB caches a subquery's result
// by the outer value under the column's collation, so after a record at
// "l0" (no location) the collation-bound test would answer "no" for a
// record at "L0" too; with the exact test first, only exact IDs ever reach
// the collation-bound one. The first is
// a superset of the second only when the subquery filters on nothing but
// its key: MariaDB 10.11 answers "col IN (SELECT id ... WHERE deleted_at IS
// NULL)" by one lookup on the unique key under the column's collation, and
// may then find a deleted row whose ID differs from a live one only in
// case, and miss the live one.
func exactIn(mysql bool, col clause.Column, key, from string, vars ...any) clause.Expression {
	sub := subquery(key, from, vars...)
	if mysql {
		bin := subquery("CAST("+key+" AS BINARY)", from, vars...)
		return clause.Expr{SQL: "(CAST(? AS BINARY) IN (?) AND ? IN (?))", Vars: []any{col, bin, col, sub}}
	}
	return clause.Expr{SQL: "(? IN (?))", Vars: []any{col, sub}}
}

func exactNotIn(mysql bool, col clause.Column, key, from string, vars ...any) clause.Expression {
	if mysql {
		return clause.Expr{SQL: "(CAST(? AS BINARY) NOT IN (?))", Vars: []any{col, subquery("CAST("+key+" AS BINARY)", from, vars...)}}
	}
	return clause.Expr{SQL: "(? NOT IN (?))", Vars: []any{col, subquery(key, from, vars...)}}
}

// subquery returns "SELECT key FROM from"; from is fixed SQL text whose
// '?' take vars.
func subquery(key, from string, vars ...any) clause.Expression {
	return clause.Expr{SQL: "SELECT " + key + " FROM " + from, Vars: vars}
}

// subtreesOf selects the closure rows of the subtrees of the locations
// bound to its '?'.
const subtreesOf = PathsTable + " WHERE ancestor_id IN ?"

// subtreesOfByKey is subtreesOf read through the closure table's primary
// key, on MySQL and MariaDB.
const subtreesOfByKey = PathsTable + " FORCE INDEX (PRIMARY) WHERE ancestor_id IN ?"

// falseSQL is a condition no row satisfies, on every supported database.
const falseSQL = "1 = 0"

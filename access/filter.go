package access

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/civicstack/townhall/affiliation"
	"github.com/civicstack/townhall/internal/dbx"
	"github.com/civicstack/townhall/internal/snapshot"
	"github.com/civicstack/townhall/location"
)

// Columns names the columns of a host table that a RecordFilter constrains:
// each an identifier, optionally table-qualified ("o.location_id"). An
// empty name means the table has no such column: every row then has no
// value there, so conditions that need one match nothing.
type Columns struct {
	Location     string // the record's location ID
	Category     string // the record's category
	Organisation string // the record's organisation ID (affiliated actions)
}

// RecordFilter is the set of records a subject may act on with one module
// action: for every record at a live location, "Scope's query returns it"
// equals "Check with that record as Resource allows it". Build it with
// Checker.Filter for each request: it reflects the snapshot at that moment
// (grants, categories, module settings, affiliation links at the checker's
// clock), while subtree membership is read from the closure table when the
// query runs. A nil *RecordFilter selects nothing.
//
// The condition, with sub(...) the live subtrees of a list of locations,
// "(SELECT descendant_id FROM townhall_location_paths WHERE ancestor_id IN
// (?, ...))", and one group per effective category set of the subject's
// counting grants:
//
//	grants:      [loc IN sub(all roots) AND loc NOT IN sub(disabled municipalities)]  -- with several groups
//	             AND ((loc IN sub(roots₁) AND loc NOT IN sub(disabled₁) [AND cat IN (?, ...)]) OR ...)
//	affiliated:  (loc IN live locations AND loc NOT IN sub(disabled)
//	              AND ((org IN (?, ...) [AND cat IN (?, ...)]) OR ...))
//	             OR ((loc IS NULL OR loc = '') AND ((org IN (?, ...) [AND cat IN (?, ...)]) OR ...))
//	public, authenticated, platform grant, with the module disabled somewhere:
//	             loc IN live locations AND loc NOT IN sub(disabled)
//	             [affiliated: OR ((loc IS NULL OR loc = '') AND org IN (live organisations outside sub(disabled)))]
//	unrestricted: no condition; nothing: 1 = 0
type RecordFilter struct {
	loc  location.Filter
	cond cond
}

// Unrestricted reports whether the filter selects every record: Scope adds
// no condition.
func (f *RecordFilter) Unrestricted() bool { return f != nil && f.cond.kind == condTrue }

// Empty reports whether the filter selects no record.
func (f *RecordFilter) Empty() bool { return f == nil || f.cond.kind == condFalse }

// Location returns the location part of the filter: the locations at which
// some record (of some category and organisation) is selected, as
// Checker.LocationFilter returns it.
func (f *RecordFilter) Location() location.Filter {
	if f == nil {
		return location.EmptyFilter()
	}
	return f.loc
}

// Scope returns a GORM scope restricting a query to the records the filter
// selects, read through cols. An invalid column name adds an error
// wrapping ErrInvalidInput to the query, which then fails instead of
// running unfiltered. Values are bound parameters; column names are quoted
// identifiers. The host table must live in the database of townhall's
// tables (the filter reads the location closure table and, for affiliated
// actions, the organisations).
//
// Values compare byte for byte, as Check compares them: on MySQL and
// MariaDB, whatever the columns' collation, they are also compared as
// binary strings (see location.Filter.Condition).
func (f *RecordFilter) Scope(cols Columns) func(*gorm.DB) *gorm.DB {
	return func(db *gorm.DB) *gorm.DB {
		c := cond{kind: condFalse}
		if f != nil {
			c = f.cond
		}
		e, err := c.expression(db, cols)
		if err != nil {
			_ = db.AddError(err)
			return db
		}
		if e == nil {
			return db
		}
		return db.Where(e)
	}
}

// LocationFilter returns the locations at which subject s may act with
// module's action on some record: for a live location X, Contains(X) is
// true exactly when Check allows a Resource at X for some category (and,
// for affiliated actions, some organisation). Records with no location
// are only in unrestricted filters; use Filter for the exact record
// filter, categories and organisations included. Errors are those of
// Check for the same subject and action.
func (c *Checker) LocationFilter(ctx context.Context, s Subject, module, action string) (location.Filter, error) {
	f, err := c.Filter(ctx, s, module, action)
	if err != nil {
		return location.EmptyFilter(), err
	}
	return f.loc, nil
}

// Filter returns the records subject s may act on with module's action,
// as a GORM scope over a host table (see RecordFilter): exactly the records
// Check allows, decided per SPEC §2 from the same snapshot.
//
//   - Super admins, and subjects allowed by a public or authenticated
//     action or a platform grant while the module is enabled everywhere:
//     unrestricted.
//   - Those subjects while some municipality disables the module: every
//     record at a live location outside the subtrees of those
//     municipalities (for affiliated actions also records with no location
//     whose organisation lies outside them).
//   - Anyone else: per counting grant whose role allows the action, the
//     records in the grant's subtree and in its anchor profile's effective
//     categories, minus the municipalities that disable the module. For
//     affiliated actions, instead of the grant's subtree: records of an
//     organisation linked to the subject (live at the checker's clock),
//     serving the module and inside the grant's subtree, wherever the
//     record lies (a live location outside the disabled municipalities, or
//     none, the organisation's own location then counting).
//   - Inactive and deleted users, and anonymous subjects without a public
//     action: nothing.
//
// Errors are those of Check: ErrUnknownModule, ErrUnknownAction,
// users.ErrNotFound, ErrInvalidToken, ErrInvalidInput for System(). The SQL
// grows with the number of grants and of disabled municipalities, never
// with the size of subtrees.
func (c *Checker) Filter(ctx context.Context, s Subject, module, action string) (f *RecordFilter, err error) {
	_, span := c.obs.startFilter(ctx, module, action)
	defer func() { c.obs.endFilter(span, f, err) }()
	snap := c.snapshot()
	ai, err := actionIndex(snap.Reg, module, action)
	if err != nil {
		return nil, err
	}
	act := &snap.Reg.Actions[ai]
	r, u, err := c.reach(snap, s, ai, act)
	if err != nil {
		return nil, err
	}
	switch r {
	case reachNothing:
		return &RecordFilter{loc: location.EmptyFilter(), cond: cond{kind: condFalse}}, nil
	case reachEverything:
		return &RecordFilter{loc: location.UnrestrictedFilter(), cond: cond{kind: condTrue}}, nil
	case reachEnabled:
		if snap.EnabledEverywhereIdx(act.ModuleIdx) {
			return &RecordFilter{loc: location.UnrestrictedFilter(), cond: cond{kind: condTrue}}, nil
		}
		return enabledFilter(snap, act), nil
	}
	if act.Affiliated {
		return c.affiliatedFilter(snap, s.UserID, u, ai, act), nil
	}
	return grantFilter(snap, u, ai, act), nil
}

// reach is how far a subject's rights go for one action, before grants.
type reach uint8

const (
	reachNothing    reach = iota // inactive, deleted, anonymous without public
	reachEverything              // super admin
	reachEnabled                 // public, authenticated, platform grant: wherever the module is enabled
	reachGrants                  // only through location grants
)

// reach mirrors steps 2-7 of decide for a subject, before any record is
// known; the caller holds the read lock.
func (c *Checker) reach(snap *snapshot.Snapshot, s Subject, ai int, act *snapshot.ActionInfo) (reach, *snapshot.UserState, error) {
	sub, err := c.resolveSubject(snap, &s, "filters")
	switch {
	case err != nil:
		return 0, nil, err
	case sub.u == nil:
		if act.Public {
			return reachEnabled, nil, nil
		}
		return reachNothing, nil, nil
	case sub.inactive:
		return reachNothing, nil, nil
	case sub.superAdmin():
		return reachEverything, nil, nil
	case act.Public || act.Authenticated:
		return reachEnabled, nil, nil
	}
	if _, ok := platformRole(snap, sub.u, ai); ok {
		return reachEnabled, nil, nil
	}
	return reachGrants, sub.u, nil
}

// enabledFilter is the filter of a subject allowed wherever the module is
// enabled, while some municipality disables it.
func enabledFilter(snap *snapshot.Snapshot, act *snapshot.ActionInfo) *RecordFilter {
	disabled := disabledMunicipalities(snap, act.Module)
	live := location.LiveFilter(snap.Tree, disabled)
	c := locationCond(live)
	if act.Affiliated {
		// An affiliated record with no location lies where its
		// organisation does (resolveScope).
		c = or(c, and(cond{kind: condNoLocation}, cond{kind: condLiveOrganisation, vals: live.Excluded()}))
	}
	return &RecordFilter{loc: live, cond: c}
}

// categoryGroup gathers the counting grants whose anchor profiles share
// one effective category set.
type categoryGroup struct {
	all   bool     // every category, none included
	cats  []string // otherwise: these (never empty, never "")
	roots []string // grant locations
}

// categoryCond is the group's condition on the category column.
func (g *categoryGroup) categoryCond() cond {
	if g.all {
		return cond{kind: condTrue}
	}
	return cond{kind: condCategoryIn, vals: g.cats}
}

// groups collects u's counting grants whose role allows action ai, by
// effective category set, in a stable order. Anchors that allow no category
// are left out; grants at locations no longer in the tree stay (their
// subtrees are empty), and so do grants inside a municipality that
// disables the module (SubtreesFilter drops them, affiliated actions do
// not depend on them).
func groups(snap *snapshot.Snapshot, u *snapshot.UserState, ai int) []*categoryGroup {
	byKey := map[string]*categoryGroup{}
	var order []string
	for i := range u.Grants {
		g := &u.Grants[i]
		if g.Platform() || !snap.Reg.Roles[g.Role].Perms.Has(ai) {
			continue
		}
		p, _ := snap.Anchor(u, snap.GrantAt(u, g))
		if p == nil || !p.Approved || !p.Active {
			continue
		}
		cats, all := snap.EffectiveCategories(p)
		if !all && len(cats) == 0 {
			continue
		}
		key := categoryKey(cats, all)
		grp := byKey[key]
		if grp == nil {
			grp = &categoryGroup{all: all, cats: cats}
			byKey[key] = grp
			order = append(order, key)
		}
		grp.roots = append(grp.roots, snap.GrantAt(u, g))
	}
	slices.Sort(order)
	out := make([]*categoryGroup, len(order))
	for i, k := range order {
		out[i] = byKey[k]
	}
	return out
}

// grantFilter is the filter of a subject allowed only through location
// grants, for a non-affiliated action: the OR over category groups of
// "in the grants' subtrees, outside disabled municipalities, in the
// categories".
func grantFilter(snap *snapshot.Snapshot, u *snapshot.UserState, ai int, act *snapshot.ActionInfo) *RecordFilter {
	disabled := disabledMunicipalities(snap, act.Module)
	grps := groups(snap, u, ai)
	var (
		anyCategory []string // roots of the groups that see every category
		allRoots    []string
		n           int // groups in c
		c           = cond{kind: condFalse}
	)
	for _, g := range grps {
		if g.all {
			anyCategory = append(anyCategory, g.roots...)
		}
	}
	for _, g := range grps {
		roots := g.roots
		if !g.all {
			// Subtrees a group that sees every category covers add nothing.
			roots = slices.DeleteFunc(slices.Clone(roots), func(r string) bool {
				return slices.ContainsFunc(anyCategory, func(a string) bool { return snap.Tree.IsWithin(r, a) })
			})
		}
		f := location.SubtreesFilter(snap.Tree, roots, disabled)
		if f.Empty() {
			continue
		}
		allRoots = append(allRoots, f.Roots()...)
		c = or(c, and(locationCond(f), g.categoryCond()))
		n++
	}
	loc := location.SubtreesFilter(snap.Tree, allRoots, disabled)
	if n > 1 {
		// The union of the groups' subtrees, ANDed at the top: a condition
		// planners can answer with the location column's index (MariaDB,
		// for one, does not use it under an OR).
		c = and(locationCond(loc), c)
	}
	return &RecordFilter{loc: loc, cond: c}
}

// affiliatedFilter is the filter of a subject allowed only through location
// grants, for an affiliated action (SPEC §2 step 8, Checker.affiliated):
// records of an organisation with a live link to the subject, serving the
// module, inside a counting grant's subtree, in that grant's anchor's
// categories; the record itself at a live location outside the
// municipalities that disable the module or, with no location, its
// organisation outside them.
func (c *Checker) affiliatedFilter(snap *snapshot.Snapshot, userID string, u *snapshot.UserState, ai int, act *snapshot.ActionInfo) *RecordFilter {
	now := c.now()
	var linked []string
	for orgID, windows := range snap.Links[userID] {
		org := snap.Orgs[orgID]
		if org == nil {
			continue
		}
		if _, ok := org.Services[act.Module]; !ok {
			continue
		}
		if slices.ContainsFunc(windows, func(w snapshot.Window) bool { return w.Live(now) }) {
			linked = append(linked, orgID)
		}
	}
	slices.Sort(linked)
	grps := groups(snap, u, ai)
	located, unlocated := cond{kind: condFalse}, cond{kind: condFalse}
	for _, g := range grps {
		var orgs, enabled []string
		for _, id := range linked {
			loc := snap.Orgs[id].Location
			if !slices.ContainsFunc(g.roots, func(r string) bool { return snap.Tree.IsWithin(loc, r) }) {
				continue
			}
			orgs = append(orgs, id)
			if muni, _ := snap.Tree.MunicipalityOf(loc); snap.ModuleEnabled(act.Module, muni) {
				enabled = append(enabled, id)
			}
		}
		if len(orgs) == 0 {
			continue
		}
		located = or(located, and(cond{kind: condOrganisationIn, vals: orgs}, g.categoryCond()))
		if len(enabled) > 0 {
			unlocated = or(unlocated, and(cond{kind: condOrganisationIn, vals: enabled}, g.categoryCond()))
		}
	}
	if located.kind == condFalse {
		return &RecordFilter{loc: location.EmptyFilter(), cond: located}
	}
	live := location.LiveFilter(snap.Tree, disabledMunicipalities(snap, act.Module))
	return &RecordFilter{loc: live, cond: or(
		and(locationCond(live), located),
		and(cond{kind: condNoLocation}, unlocated),
	)}
}

// disabledMunicipalities returns the live municipalities that disable
// module, sorted.
func disabledMunicipalities(s *snapshot.Snapshot, module string) []string {
	var out []string
	for id := range s.Disabled[module] {
		if level, ok := s.Tree.Level(id); ok && level == location.Municipality {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

// categoryKey identifies an effective category set.
func categoryKey(cats []string, all bool) string {
	if all {
		return "*"
	}
	var b strings.Builder
	for _, c := range cats {
		b.WriteString(strconv.Itoa(len(c)))
		b.WriteByte(':')
		b.WriteString(c)
	}
	return b.String()
}

// cond is a record condition, independent of the host's column names until
// rendered by expression.
type cond struct {
	kind condKind
	kids []cond          // condAnd, condOr
	loc  location.Filter // condLocation
	vals []string        // condCategoryIn, condOrganisationIn; condLiveOrganisation: excluded subtrees
}

type condKind uint8

const (
	condFalse            condKind = iota
	condTrue                      // no condition
	condAnd                       // every kid
	condOr                        // some kid
	condLocation                  // the location column in loc
	condNoLocation                // the location column NULL or empty
	condCategoryIn                // the category column in vals
	condOrganisationIn            // the organisation column in vals
	condLiveOrganisation          // the organisation column a live organisation outside the subtrees of vals
)

func locationCond(f location.Filter) cond {
	switch {
	case f.Unrestricted():
		return cond{kind: condTrue}
	case f.Empty():
		return cond{kind: condFalse}
	}
	return cond{kind: condLocation, loc: f}
}

// and and or combine conditions, folding constants.
func and(cs ...cond) cond { return combine(condAnd, cs) }
func or(cs ...cond) cond  { return combine(condOr, cs) }

func combine(kind condKind, cs []cond) cond {
	// In an AND, FALSE absorbs and TRUE is neutral; in an OR the reverse.
	absorbing, neutral := condFalse, condTrue
	if kind == condOr {
		absorbing, neutral = condTrue, condFalse
	}
	var kids []cond
	for _, c := range cs {
		switch c.kind {
		case absorbing:
			return c
		case neutral:
			continue
		case kind:
			kids = append(kids, c.kids...)
		default:
			kids = append(kids, c)
		}
	}
	switch len(kids) {
	case 0:
		return cond{kind: neutral}
	case 1:
		return kids[0]
	}
	return cond{kind: kind, kids: kids}
}

// expression renders c over cols: nil for no condition. Every value is a
// bound parameter and every column a validated, quoted identifier.
func (c cond) expression(db *gorm.DB, cols Columns) (clause.Expression, error) {
	r := renderer{db: db, mysql: dbx.DialectOf(db) == dbx.MySQL}
	var err error
	if r.loc, err = column(cols.Location); err != nil {
		return nil, err
	}
	if r.cat, err = column(cols.Category); err != nil {
		return nil, err
	}
	if r.org, err = column(cols.Organisation); err != nil {
		return nil, err
	}
	r.hasLoc, r.hasCat, r.hasOrg = cols.Location != "", cols.Category != "", cols.Organisation != ""
	r.locName = cols.Location
	e, k, err := r.render(c)
	switch {
	case err != nil:
		return nil, err
	case k == condTrue:
		return nil, nil
	case k == condFalse:
		return clause.Expr{SQL: falseSQL}, nil
	}
	return e, nil
}

// falseSQL is a condition no row satisfies, on every supported database.
const falseSQL = "1 = 0"

func column(name string) (clause.Column, error) {
	if name == "" {
		return clause.Column{}, nil
	}
	col, ok := dbx.ParseColumn(name)
	if !ok {
		return clause.Column{}, fmt.Errorf("%w: column name %q", ErrInvalidInput, name)
	}
	return col, nil
}

type renderer struct {
	db                     *gorm.DB
	mysql                  bool
	loc, cat, org          clause.Column
	locName                string
	hasLoc, hasCat, hasOrg bool
}

// render returns the expression of c, or condTrue/condFalse when it is
// constant over these columns (a missing column holds no value).
func (r *renderer) render(c cond) (clause.Expression, condKind, error) {
	switch c.kind {
	case condTrue, condFalse:
		return nil, c.kind, nil
	case condAnd, condOr:
		var parts []any
		for _, kid := range c.kids {
			e, k, err := r.render(kid)
			if err != nil {
				return nil, 0, err
			}
			switch {
			case k == condExpr:
				parts = append(parts, e)
			case (k == condFalse) == (c.kind == condAnd):
				return nil, k, nil // absorbing
			}
		}
		switch len(parts) {
		case 0:
			if c.kind == condAnd {
				return nil, condTrue, nil
			}
			return nil, condFalse, nil
		case 1:
			return parts[0].(clause.Expression), condExpr, nil
		}
		op := " AND "
		if c.kind == condOr {
			op = " OR "
		}
		return clause.Expr{SQL: "(" + strings.Repeat("?"+op, len(parts)-1) + "?)", Vars: parts}, condExpr, nil
	case condLocation:
		if !r.hasLoc {
			return nil, condFalse, nil
		}
		e, err := c.loc.Condition(r.db, r.locName)
		if err != nil {
			return nil, 0, fmt.Errorf("%w: %w", ErrInvalidInput, err)
		}
		if e == nil {
			return nil, condTrue, nil
		}
		return e, condExpr, nil
	case condNoLocation:
		if !r.hasLoc {
			return nil, condTrue, nil
		}
		if r.mysql {
			// Not "= ''": a PAD SPACE collation would take blanks for empty.
			return clause.Expr{SQL: "(? IS NULL OR CAST(? AS BINARY) = ?)", Vars: []any{r.loc, r.loc, ""}}, condExpr, nil
		}
		return clause.Expr{SQL: "(? IS NULL OR ? = ?)", Vars: []any{r.loc, r.loc, ""}}, condExpr, nil
	case condCategoryIn:
		if !r.hasCat {
			return nil, condFalse, nil
		}
		return r.in(r.cat, clause.Expr{SQL: "?", Vars: []any{c.vals}}, true), condExpr, nil
	case condOrganisationIn:
		if !r.hasOrg {
			return nil, condFalse, nil
		}
		return r.in(r.org, clause.Expr{SQL: "?", Vars: []any{c.vals}}, true), condExpr, nil
	case condLiveOrganisation:
		if !r.hasOrg {
			return nil, condFalse, nil
		}
		// An organisation counts only at a live location (the closure table
		// holds live locations only): a record placed by an organisation at a
		// deleted location has no live location, as in Check.
		key := "id"
		if r.mysql {
			// Binary on both sides: materialised once, probed per record
			// (see location.Filter.Condition).
			key = "CAST(id AS BINARY)"
		}
		liveOrgs := "(SELECT " + key + " FROM " + affiliation.OrganisationsTable + " WHERE deleted_at IS NULL" +
			" AND location_id IN (SELECT descendant_id FROM " + location.PathsTable + " WHERE depth = 0)"
		live := clause.Expr{SQL: liveOrgs + ")"}
		if len(c.vals) > 0 {
			// Organisation locations are IDs of townhall's own (binary)
			// tables: a plain comparison is exact.
			live = clause.Expr{
				SQL:  liveOrgs + " AND location_id NOT IN (SELECT descendant_id FROM " + location.PathsTable + " WHERE ancestor_id IN ?))",
				Vars: []any{c.vals},
			}
		}
		return r.in(r.org, live, false), condExpr, nil
	}
	return nil, 0, fmt.Errorf("%w: condition kind %d", ErrInvalidInput, c.kind)
}

// condExpr marks a rendered condition that is not constant.
const condExpr condKind = 255

// in returns "col IN set" (set a parenthesised list or subquery) comparing
// byte for byte, as Check does: on MySQL and MariaDB, whose collations may
// ignore case or trailing spaces, the column is compared as a binary
// string. Before a list, the plain comparison stays as a pre-filter an
// index on the column can serve; before a subquery it cannot (see
// location.Filter.Condition: MariaDB may then miss rows).
func (r *renderer) in(col clause.Column, set clause.Expression, list bool) clause.Expression {
	switch {
	case r.mysql && list:
		return clause.Expr{SQL: "(? IN ? AND CAST(? AS BINARY) IN ?)", Vars: []any{col, set, col, set}}
	case r.mysql:
		return clause.Expr{SQL: "CAST(? AS BINARY) IN ?", Vars: []any{col, set}}
	}
	return clause.Expr{SQL: "? IN ?", Vars: []any{col, set}}
}

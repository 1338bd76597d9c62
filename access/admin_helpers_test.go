package access_test

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/civicstack/townhall"
	"github.com/civicstack/townhall/access"
	"github.com/civicstack/townhall/affiliation"
	"github.com/civicstack/townhall/audit"
	"github.com/civicstack/townhall/internal/dbtest"
	"github.com/civicstack/townhall/internal/policy"
	"github.com/civicstack/townhall/internal/testkit"
	"github.com/civicstack/townhall/location"
	"github.com/civicstack/townhall/users"
)

// adminEnv is a platform with a handle on its database, for tests that
// look at the rows an Admin call leaves behind.
type adminEnv struct {
	p   *townhall.Platform
	db  *gorm.DB
	dsn string
	reg *access.Registry
}

// openAdmin opens a platform with reg on a fresh database. Its background
// sync with other processes is off, so that whatever a test sees after an
// Admin call is the call's own doing: a change must be visible to the next
// Check because the call applied it, not because a replica loop (or a
// PostgreSQL notification) caught up in time.
func openAdmin(t *testing.T, reg *access.Registry, opts ...townhall.Option) *adminEnv {
	t.Helper()
	db, dsn := dbtest.NewWithDSN(t)
	if reg == nil {
		reg = access.DefaultRegistry()
	}
	opts = append([]townhall.Option{
		townhall.WithKDF(testkit.FastKDF), townhall.WithRegistry(reg), townhall.WithSyncInterval(-1),
	}, opts...)
	p, err := townhall.Open(context.Background(), db, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, p.Close()) })
	return &adminEnv{p: p, db: db, dsn: dsn, reg: reg}
}

// governanceRegistry is the default registry plus a reserved role,
// db_creator, that alone may create databases. With managersManage,
// users:manage is extended to manager.
func governanceRegistry(t *testing.T, managersManage bool) *access.Registry {
	t.Helper()
	reg := access.DefaultRegistry()
	require.NoError(t, reg.AddRole(access.Role{Name: "db_creator", Reserved: true}))
	require.NoError(t, reg.AddModule("databases", map[string]access.Action{
		"create": {Roles: []string{"db_creator"}},
	}))
	if managersManage {
		require.NoError(t, reg.AddModule(access.ModuleUsers, map[string]access.Action{
			"manage": {Roles: []string{access.RoleManager}},
		}))
	}
	return reg
}

// tree creates R > D > {M1 > V1, M2} and D2 > M3.
func (e *adminEnv) tree(t *testing.T) {
	t.Helper()
	testkit.Locations(t, e.p,
		location.Location{ID: "R", Level: "region"},
		location.Location{ID: "D", Level: "district", ParentID: "R"},
		location.Location{ID: "D2", Level: "district", ParentID: "R"},
		location.Location{ID: "M1", Level: "municipality", ParentID: "D"},
		location.Location{ID: "M2", Level: "municipality", ParentID: "D"},
		location.Location{ID: "M3", Level: "municipality", ParentID: "D2"},
		location.Location{ID: "V1", Level: "village", ParentID: "M1"},
	)
}

// superAdmin creates user id and flags it (System).
func (e *adminEnv) superAdmin(t *testing.T, id string) {
	t.Helper()
	testkit.User(t, e.p, id)
	require.NoError(t, e.p.Admin.SetSuperAdmin(context.Background(), access.System(), id, true))
}

// platformAdmin creates user id with platform_admin at "*" (System).
func (e *adminEnv) platformAdmin(t *testing.T, id string) {
	t.Helper()
	testkit.User(t, e.p, id)
	require.NoError(t, e.p.Admin.Grant(context.Background(), access.System(), id, access.RolePlatformAdmin, "*"))
}

// technical creates a technical user id.
func (e *adminEnv) technical(t *testing.T, id string) {
	t.Helper()
	_, err := e.p.Users.Create(context.Background(), users.NewUser{ID: id, Username: id, Kind: users.Technical})
	require.NoError(t, err)
}

// profile gives user id an approved, active profile at loc with no grant.
func (e *adminEnv) profile(t *testing.T, id, loc string, cats ...string) {
	t.Helper()
	_, err := e.p.Profiles.Create(context.Background(), users.Profile{
		UserID: id, LocationID: loc, IsApproved: true, IsActive: true, AllowedCategories: cats,
	})
	require.NoError(t, err)
}

// mark flushes pending audit events and returns the head of the log.
func (e *adminEnv) mark(t *testing.T) int64 {
	t.Helper()
	require.NoError(t, e.p.Audit.Flush(context.Background()))
	seq, err := e.p.Audit.Head(context.Background())
	require.NoError(t, err)
	return seq
}

// changesSince returns the change events (decisions left out) recorded
// after seq.
func (e *adminEnv) changesSince(t *testing.T, seq int64) []audit.Event {
	t.Helper()
	events, err := e.p.Audit.Query(context.Background(), audit.Query{AfterSeq: seq, Limit: audit.MaxLimit})
	require.NoError(t, err)
	var out []audit.Event
	for _, ev := range events {
		if !audit.IsDecision(ev.Type) {
			out = append(out, ev)
		}
	}
	return out
}

// fingerprint sums up every row a change of access could touch, so that a
// refused change can be shown to have changed nothing: the grant rows in
// full, and for the other tables their row count and latest update (every
// townhall write stamps updated_at; sessions are ended, not updated).
func (e *adminEnv) fingerprint(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	summary := func(table, extra string) string {
		return "SELECT COUNT(*), " + extra + " FROM " + table
	}
	for _, q := range []string{
		"SELECT v0, v1, v2 FROM " + policy.Table + " WHERE ptype = 'g' ORDER BY v0, v1, v2",
		summary(users.UsersTable, "MAX(updated_at), SUM(CASE WHEN is_active THEN 1 ELSE 0 END), SUM(CASE WHEN is_super_admin THEN 1 ELSE 0 END)"),
		summary(users.ProfilesTable, "MAX(updated_at), SUM(CASE WHEN is_approved THEN 1 ELSE 0 END), SUM(CASE WHEN is_active THEN 1 ELSE 0 END)"),
		summary(users.APIKeysTable, "COUNT(revoked_at)"),
		summary(location.LocationsTable, "MAX(updated_at), COUNT(deleted_at)"),
		summary(affiliation.OrganisationsTable, "MAX(updated_at), COUNT(deleted_at)"),
		summary(affiliation.LinksTable, "MAX(updated_at), COUNT(deleted_at)"),
		summary(access.ModuleSettingsTable, "MAX(updated_at), SUM(CASE WHEN enabled THEN 1 ELSE 0 END)"),
		summary(access.MunicipalitySettingsTable, "MAX(updated_at), SUM(CASE WHEN approval_required THEN 1 ELSE 0 END)"),
		summary(access.SessionsTable, "COUNT(ended_at)"),
	} {
		fmt.Fprintln(&b, q)
		rows, err := e.db.Raw(q).Rows()
		require.NoError(t, err, q)
		cols, err := rows.Columns()
		require.NoError(t, err)
		vals := make([]sql.RawBytes, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		for rows.Next() {
			require.NoError(t, rows.Scan(ptrs...))
			for _, v := range vals {
				fmt.Fprintf(&b, "%q ", v)
			}
			b.WriteByte('\n')
		}
		require.NoError(t, rows.Err())
		require.NoError(t, rows.Close())
	}
	return b.String()
}

// refusalBaseline is the fingerprint to compare with after a change that
// is expected to be refused ("" when it is expected to be applied: the
// fingerprint is the expensive part of the governance tables).
func (e *adminEnv) refusalBaseline(t *testing.T, allowed bool) string {
	t.Helper()
	if allowed {
		return ""
	}
	return e.fingerprint(t)
}

// hasGrant reports whether the casbin_rule row of the grant exists.
func (e *adminEnv) hasGrant(t *testing.T, userID, role, loc string) bool {
	t.Helper()
	gs, err := policy.GrantsOf(context.Background(), e.db, userID)
	require.NoError(t, err)
	return slices.Contains(gs, policy.Grant{UserID: userID, Role: role, Domain: loc})
}

// allowed asks the platform's checker.
func (e *adminEnv) allowed(t *testing.T, s access.Subject, req access.Request) access.Decision {
	t.Helper()
	d, err := e.p.Checker.Check(context.Background(), s, req)
	require.NoError(t, err)
	return d
}

// freshAgrees opens a second platform on the same database (a fresh
// snapshot, as another process would load it) and asserts that it decides
// exactly like the live one.
func (e *adminEnv) freshAgrees(t *testing.T, subjects, municipalities, locations []string) {
	t.Helper()
	fresh, err := townhall.Open(context.Background(), dbtest.Open(t, e.dsn),
		townhall.WithKDF(testkit.FastKDF), townhall.WithRegistry(e.reg), townhall.WithSyncInterval(-1))
	require.NoError(t, err)
	defer fresh.Close()
	testkit.SameDecisions(t, e.p, fresh, e.reg, subjects, municipalities, locations)
}

// assertRefused asserts that err is a refusal, that nothing changed and
// that the refusal was audited with Allowed false.
func (e *adminEnv) assertRefused(t *testing.T, err error, before string, seq int64, typ, actorID string) audit.Event {
	t.Helper()
	require.Error(t, err)
	assert.ErrorIs(t, err, access.ErrForbidden)
	assert.Equal(t, before, e.fingerprint(t), "a refused change changes nothing")
	var ev audit.Event
	events := e.changesSince(t, seq)
	if assert.Len(t, events, 1, "one audit event per refusal") {
		ev = events[0]
		assert.Equal(t, typ, ev.Type)
		assert.Equal(t, actorID, ev.ActorID)
		if assert.NotNil(t, ev.Allowed) {
			assert.False(t, *ev.Allowed)
		}
		assert.NotEmpty(t, ev.Reason)
	}
	return ev
}

// assertApplied asserts that err is nil and that exactly one audit event of
// typ, allowed, was recorded for the change.
func (e *adminEnv) assertApplied(t *testing.T, err error, seq int64, typ, actorID string) audit.Event {
	t.Helper()
	require.NoError(t, err)
	var ev audit.Event
	events := e.changesSince(t, seq)
	if assert.Len(t, events, 1, "one audit event per change") {
		ev = events[0]
		assert.Equal(t, typ, ev.Type)
		assert.Equal(t, actorID, ev.ActorID)
		if assert.NotNil(t, ev.Allowed) {
			assert.True(t, *ev.Allowed)
		}
	}
	return ev
}

// usersProfile is an active, unapproved profile with no restriction.
func usersProfile(userID, loc string) users.Profile {
	return users.Profile{UserID: userID, LocationID: loc, IsActive: true}
}

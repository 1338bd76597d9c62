package affiliation_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/civicstack/townhall/affiliation"
	"github.com/civicstack/townhall/audit"
	"github.com/civicstack/townhall/internal/dbtest"
	"github.com/civicstack/townhall/internal/dbx"
	"github.com/civicstack/townhall/internal/policy"
	"github.com/civicstack/townhall/internal/userwrite"
	"github.com/civicstack/townhall/location"
	"github.com/civicstack/townhall/users"
)

// t0 is the tests' starting time; it has a fractional second so that
// windows are compared at microsecond precision on every database.
var t0 = time.Date(2030, 3, 1, 12, 0, 0, 123456000, time.UTC)

// clock is a settable clock shared by the stores under test.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// env is a migrated database with every store the tests need, a
// municipality "m1" and a village "v1" under it.
type env struct {
	ctx      context.Context
	db       *gorm.DB
	clock    *clock
	log      *audit.Log
	store    *affiliation.Store
	users    *users.Store
	profiles *users.ProfileStore
	locs     *location.Store
}

func newEnv(t *testing.T) *env {
	t.Helper()
	ctx := context.Background()
	db := dbtest.New(t)
	err := dbx.Migrate(ctx, db, func(tx *gorm.DB) error {
		for _, m := range []func(*gorm.DB) error{audit.Migrate, location.Migrate, users.Migrate, policy.Migrate, affiliation.Migrate} {
			if err := m(tx); err != nil {
				return err
			}
		}
		return nil
	})
	require.NoError(t, err)
	c := &clock{now: t0}
	log := audit.New(db, audit.WithClock(c.Now))
	t.Cleanup(func() { _ = log.Close() })
	locs, err := location.NewStore(db, log, location.WithClock(c.Now))
	require.NoError(t, err)
	e := &env{
		ctx:      ctx,
		db:       db,
		clock:    c,
		log:      log,
		store:    affiliation.NewStore(db, log, affiliation.WithClock(c.Now)),
		users:    users.NewStore(db, log, users.WithClock(c.Now)),
		profiles: users.NewProfileStore(db, log, locs, users.WithClock(c.Now)),
		locs:     locs,
	}
	_, err = locs.Create(ctx, location.Location{ID: "m1", Name: "Municipality", Level: location.Municipality})
	require.NoError(t, err)
	_, err = locs.Create(ctx, location.Location{ID: "v1", Name: "Village", Level: "village", ParentID: "m1"})
	require.NoError(t, err)
	return e
}

// user creates an active interactive user with ID and username id.
func (e *env) user(t *testing.T, id string) *users.User {
	t.Helper()
	u, err := e.users.Create(e.ctx, users.NewUser{
		ID: id, Username: id, Email: id + "@example.org", FirstName: "First " + id, LastName: "Last " + id,
	})
	require.NoError(t, err)
	return u
}

func (e *env) deleteUser(t *testing.T, id string) {
	t.Helper()
	require.NoError(t, dbx.Tx(e.ctx, e.db, func(tx *gorm.DB) error { return userwrite.Delete(e.ctx, tx, time.Now(), id) }))
}

func (e *env) setSuperAdmin(t *testing.T, id string) {
	t.Helper()
	require.NoError(t, dbx.Tx(e.ctx, e.db, func(tx *gorm.DB) error { return userwrite.SetSuperAdmin(e.ctx, tx, time.Now(), id, true) }))
}

func (e *env) setInactive(t *testing.T, id string) {
	t.Helper()
	require.NoError(t, dbx.Tx(e.ctx, e.db, func(tx *gorm.DB) error { return userwrite.SetActive(e.ctx, tx, time.Now(), id, false) }))
}

func (e *env) profile(t *testing.T, userID, locationID string, active bool) {
	t.Helper()
	_, err := e.profiles.Create(e.ctx, users.Profile{UserID: userID, LocationID: locationID, IsActive: active, IsApproved: true})
	require.NoError(t, err)
}

// grant inserts a grouping row directly, as package access would.
func (e *env) grant(t *testing.T, userID, role, domain string) {
	t.Helper()
	_, err := policy.InsertGrant(e.db, policy.Grant{UserID: userID, Role: role, Domain: domain})
	require.NoError(t, err)
}

func (e *env) org(t *testing.T, id string, services ...string) *affiliation.Organisation {
	t.Helper()
	o, err := e.store.CreateOrganisation(e.ctx, affiliation.Organisation{
		ID: id, Name: "Organisation " + id, Kind: "health facility", LocationID: "m1", Services: services,
	})
	require.NoError(t, err)
	return o
}

func (e *env) link(t *testing.T, userID, orgID string, from, to *time.Time) {
	t.Helper()
	require.NoError(t, e.store.Link(e.ctx, affiliation.Link{UserID: userID, OrganisationID: orgID, ValidFrom: from, ValidTo: to}))
}

func (e *env) isActive(t *testing.T, id string) bool {
	t.Helper()
	u, err := e.users.Get(e.ctx, id)
	require.NoError(t, err)
	return u.IsActive
}

// events returns every audit event of type typ, in order.
func (e *env) events(t *testing.T, typ string) []audit.Event {
	t.Helper()
	evs, err := e.log.Query(e.ctx, audit.Query{Type: typ, Limit: audit.MaxLimit})
	require.NoError(t, err)
	return evs
}

// eventCount returns the number of audit events of every type.
func (e *env) eventCount(t *testing.T) int {
	t.Helper()
	evs, err := e.log.Query(e.ctx, audit.Query{Limit: audit.MaxLimit})
	require.NoError(t, err)
	return len(evs)
}

// count returns the number of rows of table (deleted ones included) that
// match where.
func (e *env) count(t *testing.T, table, where string, args ...any) int64 {
	t.Helper()
	var n int64
	require.NoError(t, e.db.Table(table).Where(where, args...).Count(&n).Error)
	return n
}

func at(t time.Time) *time.Time { return &t }

func memberIDs(ms []affiliation.Member) []string {
	out := []string{}
	for _, m := range ms {
		out = append(out, m.UserID)
	}
	return out
}

func orgIDs(os []affiliation.Organisation) []string {
	out := []string{}
	for _, o := range os {
		out = append(out, o.ID)
	}
	return out
}

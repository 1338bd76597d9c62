// Package testkit builds platforms for tests: a fresh database from
// internal/dbtest, townhall.Open with a fast password hash, and helpers
// that fail the test on error.
package testkit

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/civicstack/townhall"
	"github.com/civicstack/townhall/access"
	"github.com/civicstack/townhall/internal/dbtest"
	"github.com/civicstack/townhall/internal/dbx"
	"github.com/civicstack/townhall/internal/policy"
	"github.com/civicstack/townhall/location"
	"github.com/civicstack/townhall/users"
)

// FastKDF is a password hash cost for tests only.
var FastKDF = users.KDFParams{Time: 1, MemoryKiB: 64, Threads: 1}

// Clock is a settable clock for WithClock, safe to read from the handlers
// of a test server while the test moves it.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock starts a clock at a fixed instant.
func NewClock() *Clock { return &Clock{t: time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// Open opens a platform on a fresh database, closed when t ends.
func Open(t testing.TB, opts ...townhall.Option) *townhall.Platform {
	t.Helper()
	db := dbtest.New(t)
	p, err := townhall.Open(context.Background(), db, append([]townhall.Option{townhall.WithKDF(FastKDF)}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, p.Close()) })
	return p
}

// Locations creates locations in order.
func Locations(t testing.TB, p *townhall.Platform, locs ...location.Location) {
	t.Helper()
	for _, l := range locs {
		_, err := p.Locations.Create(context.Background(), l)
		require.NoError(t, err, "create location %s", l.ID)
	}
}

// User creates an interactive user whose ID is also its username.
func User(t testing.TB, p *townhall.Platform, id string) {
	t.Helper()
	_, err := p.Users.Create(context.Background(), users.NewUser{ID: id, Username: id})
	require.NoError(t, err, "create user %s", id)
}

// Member creates user id (when new), a membership with role at loc, and
// approves it.
func Member(t testing.TB, p *townhall.Platform, id, role, loc string) {
	t.Helper()
	ctx := context.Background()
	if _, err := p.Users.Get(ctx, id); err != nil {
		User(t, p, id)
	}
	_, err := p.Admin.AddMember(ctx, access.System(), access.Membership{UserID: id, LocationID: loc, Role: role})
	require.NoError(t, err, "add member %s", id)
	require.NoError(t, p.Admin.Approve(ctx, access.System(), id, loc))
}

// RawGrant writes the casbin_rule row of a grant of role at loc straight
// into the database, as a host's import might (a grant already held stays
// as it is), and refreshes the checker.
// Admin.Grant refuses a grant that no profile anchors; such rows can still
// exist (written by other means, or left by a profile deleted later), and
// count for nothing.
func RawGrant(t testing.TB, p *townhall.Platform, id, role, loc string) {
	t.Helper()
	ctx := context.Background()
	// Through dbx.Tx, as townhall's own writes go: on SQLite it queues on
	// the pool's writer lock and retries a lost SQLITE_BUSY, where a bare
	// statement could be starved by the audit writer for the whole busy
	// timeout.
	err := dbx.Tx(ctx, p.DB(), func(tx *gorm.DB) error {
		_, err := policy.InsertGrant(tx, policy.Grant{UserID: id, Role: role, Domain: loc})
		return err
	})
	require.NoError(t, err)
	require.NoError(t, p.Checker.RefreshUser(ctx, id))
}

// Grant grants role at loc as System, or, when no profile anchors the
// grant (Admin.Grant: ErrInvalidInput), writes it with RawGrant.
func Grant(t testing.TB, p *townhall.Platform, id, role, loc string) {
	t.Helper()
	err := p.Admin.Grant(context.Background(), access.System(), id, role, loc)
	if errors.Is(err, access.ErrInvalidInput) {
		RawGrant(t, p, id, role, loc)
		return
	}
	require.NoError(t, err)
}

// SameDecisions asserts that two platforms on the same database decide
// alike: every subject × every action of reg × every municipality (gate)
// and every location (as a resource, with and without category "c1").
func SameDecisions(t testing.TB, a, b *townhall.Platform, reg *access.Registry, subjects, municipalities, locations []string) {
	t.Helper()
	ctx := context.Background()
	var reqs []access.Request
	for _, m := range reg.Modules() {
		for _, act := range reg.Actions(m) {
			for _, muni := range municipalities {
				reqs = append(reqs, access.Request{Municipality: muni, Module: m, Action: act})
			}
			for _, loc := range locations {
				for _, cat := range []string{"", "c1"} {
					reqs = append(reqs, access.Request{Module: m, Action: act, Resource: &access.Resource{LocationID: loc, Category: cat}})
				}
			}
		}
	}
	for _, s := range subjects {
		subj := access.Subject{UserID: s}
		for _, r := range reqs {
			da, errA := a.Checker.Check(ctx, subj, r)
			db, errB := b.Checker.Check(ctx, subj, r)
			if da != db || (errA == nil) != (errB == nil) {
				t.Fatalf("%q %+v: %+v (%v) vs %+v (%v)", s, r, da, errA, db, errB)
			}
		}
	}
}

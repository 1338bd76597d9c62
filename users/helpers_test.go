package users_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/civicstack/townhall/audit"
	"github.com/civicstack/townhall/internal/dbtest"
	"github.com/civicstack/townhall/internal/dbx"
	"github.com/civicstack/townhall/internal/policy"
	"github.com/civicstack/townhall/internal/userwrite"
	"github.com/civicstack/townhall/location"
	"github.com/civicstack/townhall/users"
)

// testKDF keeps password hashing cheap in tests.
var testKDF = users.KDFParams{Time: 1, MemoryKiB: 64, Threads: 1}

// fakeClock is a settable clock shared by the stores and the audit log.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2025, 3, 14, 9, 26, 53, 589793000, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// memLocations is an in-memory Locations.
type memLocations map[string]location.Location

func (m memLocations) Get(_ context.Context, id string) (*location.Location, error) {
	l, ok := m[id]
	if !ok {
		return nil, fmt.Errorf("location %q: %w", id, location.ErrNotFound)
	}
	return &l, nil
}

// testTree is region r1 > district d1 > municipalities m1, m2; m1 > village v1.
func testTree() memLocations {
	m := memLocations{}
	for _, l := range []location.Location{
		{ID: "r1", Name: "Region", Level: "region"},
		{ID: "d1", Name: "District", Level: "district", ParentID: "r1"},
		{ID: "m1", Name: "Town", Level: location.Municipality, ParentID: "d1"},
		{ID: "m2", Name: "Other town", Level: location.Municipality, ParentID: "d1"},
		{ID: "v1", Name: "Village", Level: "village", ParentID: "m1"},
	} {
		m[l.ID] = l
	}
	return m
}

type env struct {
	db       *gorm.DB
	log      *audit.Log
	clock    *fakeClock
	users    *users.Store
	profiles *users.ProfileStore
}

var ctx = context.Background()

// newEnv gives a fresh database with the audit, users and policy tables, and
// stores using a fake clock and a cheap KDF (opts come after those).
func newEnv(t testing.TB, opts ...users.Option) *env {
	t.Helper()
	db := dbtest.New(t)
	require.NoError(t, dbx.Migrate(ctx, db, func(tx *gorm.DB) error {
		if err := audit.Migrate(tx); err != nil {
			return err
		}
		if err := users.Migrate(tx); err != nil {
			return err
		}
		return policy.Migrate(tx)
	}))
	clock := newFakeClock()
	log := audit.New(db, audit.WithClock(clock.Now))
	t.Cleanup(func() { _ = log.Close() })
	opts = append([]users.Option{users.WithClock(clock.Now), users.WithKDF(testKDF)}, opts...)
	return &env{
		db:       db,
		log:      log,
		clock:    clock,
		users:    users.NewStore(db, log, opts...),
		profiles: users.NewProfileStore(db, log, testTree(), opts...),
	}
}

// events returns every audit event of type typ.
func (e *env) events(t *testing.T, typ string) []audit.Event {
	t.Helper()
	evs, err := e.log.Query(ctx, audit.Query{Type: typ, Limit: audit.MaxLimit})
	require.NoError(t, err)
	return evs
}

// lastEvent returns the latest audit event of type typ.
func (e *env) lastEvent(t *testing.T, typ string) audit.Event {
	t.Helper()
	evs := e.events(t, typ)
	require.NotEmpty(t, evs, "no %s event", typ)
	return evs[len(evs)-1]
}

// mustUser creates an interactive user with username name (and ID name).
func (e *env) mustUser(t testing.TB, u users.NewUser) *users.User {
	t.Helper()
	if u.ID == "" {
		u.ID = u.Username
	}
	got, err := e.users.Create(ctx, u)
	require.NoError(t, err)
	return got
}

// deleteUser soft-deletes a user the way Admin does.
func (e *env) deleteUser(t *testing.T, id string) {
	t.Helper()
	require.NoError(t, dbx.Tx(ctx, e.db, func(tx *gorm.DB) error {
		return userwrite.Delete(ctx, tx, e.clock.Now(), id)
	}))
}

// tx runs fn in a transaction and returns its error.
func (e *env) tx(fn func(tx *gorm.DB) error) error {
	return dbx.Tx(ctx, e.db, fn)
}

// count counts the rows of table, deleted ones included, matching where.
func (e *env) count(t *testing.T, table, where string, args ...any) int64 {
	t.Helper()
	var n int64
	require.NoError(t, e.db.Table(table).Where(where, args...).Count(&n).Error)
	return n
}

func ptr[T any](v T) *T { return &v }

// outbox is a Mailer that keeps what it is given, or fails with fail.
type outbox struct {
	mu   sync.Mutex
	sent []users.Message
	fail error
}

func (o *outbox) Send(_ context.Context, m users.Message) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.fail != nil {
		return o.fail
	}
	o.sent = append(o.sent, m)
	return nil
}

// messages returns the messages of kind sent so far, oldest first.
func (o *outbox) messages(kind users.MessageKind) []users.Message {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []users.Message
	for _, m := range o.sent {
		if m.Kind == kind {
			out = append(out, m)
		}
	}
	return out
}

// last returns the latest message of kind.
func (o *outbox) last(t *testing.T, kind users.MessageKind) users.Message {
	t.Helper()
	ms := o.messages(kind)
	require.NotEmpty(t, ms, "no %s message", kind)
	return ms[len(ms)-1]
}

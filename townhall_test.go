package townhall_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/civicstack/townhall"
	"github.com/civicstack/townhall/access"
	"github.com/civicstack/townhall/audit"
	"github.com/civicstack/townhall/internal/dbtest"
	"github.com/civicstack/townhall/internal/testkit"
	"github.com/civicstack/townhall/location"
	"github.com/civicstack/townhall/users"
)

func TestOpen_IsIdempotent(t *testing.T) {
	ctx := context.Background()
	db := dbtest.New(t)
	p1, err := townhall.Open(ctx, db, townhall.WithKDF(testkit.FastKDF))
	require.NoError(t, err)
	_, err = p1.Locations.Create(ctx, location.Location{ID: "M1", Level: "municipality"})
	require.NoError(t, err)
	require.NoError(t, p1.Close())
	require.NoError(t, p1.Close(), "Close is idempotent")

	p2, err := townhall.Open(ctx, db, townhall.WithKDF(testkit.FastKDF))
	require.NoError(t, err)
	defer p2.Close()
	got, err := p2.Locations.Get(ctx, "M1")
	require.NoError(t, err)
	assert.Equal(t, "municipality", got.Level)
	events, err := p2.Audit.Query(ctx, audit.Query{Type: audit.TypeRegistryChanged})
	require.NoError(t, err)
	assert.Len(t, events, 1, "the policy rows are written once, not rewritten when unchanged")
	require.NoError(t, p2.Audit.Verify(ctx))
}

func TestOpen_TwoProcessesRacing(t *testing.T) {
	ctx := context.Background()
	_, dsn := dbtest.NewWithDSN(t)
	const n = 3
	var wg sync.WaitGroup
	errs := make([]error, n)
	platforms := make([]*townhall.Platform, n)
	for i := range n {
		db := dbtest.Open(t, dsn) // a pool of its own, as another process would have
		wg.Add(1)
		go func() {
			defer wg.Done()
			platforms[i], errs[i] = townhall.Open(ctx, db, townhall.WithKDF(testkit.FastKDF))
		}()
	}
	wg.Wait()
	for i := range n {
		require.NoError(t, errs[i], "open %d", i)
		defer platforms[i].Close()
	}
	_, err := platforms[0].Users.Create(ctx, users.NewUser{ID: "u1", Username: "u1"})
	require.NoError(t, err)
	_, err = platforms[1].Users.Get(ctx, "u1")
	require.NoError(t, err, "all platforms share one schema")
	events, err := platforms[2].Audit.Query(ctx, audit.Query{Type: audit.TypeRegistryChanged})
	require.NoError(t, err)
	assert.Len(t, events, 1, "exactly one process wrote the policy rows")
	require.NoError(t, platforms[2].Audit.Verify(ctx))
}

func TestOpen_ConcurrentWritersOnOneSQLitePlatform(t *testing.T) {
	ctx := context.Background()
	p := testkit.Open(t)
	testkit.Locations(t, p, location.Location{ID: "M1", Level: "municipality"})
	const writers, each = 2, 15
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				id := fmt.Sprintf("w%d-u%d", w, i)
				if _, err := p.Users.Create(ctx, users.NewUser{ID: id, Username: id}); err != nil {
					errs <- err
					continue
				}
				_, err := p.Admin.AddMember(ctx, access.System(), access.Membership{UserID: id, LocationID: "M1", Role: "operator"})
				if err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	list, err := p.Users.List(ctx, users.ListOptions{Limit: 1000})
	require.NoError(t, err)
	assert.Len(t, list, writers*each)
	require.NoError(t, p.Audit.Verify(ctx))
}

func TestOpen_BadInput(t *testing.T) {
	ctx := context.Background()
	_, err := townhall.Open(ctx, nil)
	assert.ErrorIs(t, err, townhall.ErrInvalidInput)
	_, err = townhall.Open(ctx, dbtest.New(t), townhall.WithLevels("region", "district"))
	assert.ErrorIs(t, err, location.ErrInvalidLevel, "the tenant level is required")
	_, err = townhall.OpenSQLite("")
	assert.ErrorIs(t, err, townhall.ErrInvalidInput)
	assert.False(t, errors.Is(err, nil))
}

func TestOpen_CustomLevels(t *testing.T) {
	ctx := context.Background()
	p := testkit.Open(t, townhall.WithLevels("country", "province", "municipality", "ward"))
	testkit.Locations(t, p,
		location.Location{ID: "C", Level: "country"},
		location.Location{ID: "P", Level: "province", ParentID: "C"},
		location.Location{ID: "M", Level: "municipality", ParentID: "P"},
		location.Location{ID: "W", Level: "ward", ParentID: "M"},
	)
	testkit.Member(t, p, "op", access.RoleOperator, "W")
	d, err := p.Checker.Check(ctx, access.Subject{UserID: "op"}, access.Request{Municipality: "M", Module: "occurrences", Action: "update"})
	require.NoError(t, err)
	assert.True(t, d.Allowed)
	assert.Equal(t, "W", d.Domain)
	_, err = p.Locations.Create(ctx, location.Location{ID: "V", Level: "village", ParentID: "M"})
	assert.ErrorIs(t, err, location.ErrInvalidLevel)
}

package townhall_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/civicstack/townhall"
	"github.com/civicstack/townhall/access"
	"github.com/civicstack/townhall/affiliation"
	"github.com/civicstack/townhall/internal/dbtest"
	"github.com/civicstack/townhall/internal/notify"
	"github.com/civicstack/townhall/internal/testkit"
	"github.com/civicstack/townhall/location"
	"github.com/civicstack/townhall/users"
)

// replicas opens two platforms on two connection pools to one database, as
// two processes of a host service would.
func replicas(t *testing.T, optsB ...townhall.Option) (a, b *townhall.Platform, dsn string) {
	t.Helper()
	ctx := context.Background()
	dbA, dsn := dbtest.NewWithDSN(t)
	var err error
	a, err = townhall.Open(ctx, dbA, townhall.WithKDF(testkit.FastKDF))
	require.NoError(t, err)
	t.Cleanup(func() { a.Close() })
	b, err = townhall.Open(ctx, dbtest.Open(t, dsn), append([]townhall.Option{townhall.WithKDF(testkit.FastKDF)}, optsB...)...)
	require.NoError(t, err)
	t.Cleanup(func() { b.Close() })
	return a, b, dsn
}

func TestSync_ReadYourWritesOnDemand(t *testing.T) {
	ctx := context.Background()
	a, b, _ := replicas(t, townhall.WithSyncInterval(-1)) // b only moves on Sync
	testkit.Locations(t, a, location.Location{ID: "M1", Level: "municipality"})
	testkit.Member(t, a, "u1", access.RoleAdmin, "M1")
	req := access.Request{Municipality: "M1", Module: "occurrences", Action: "delete"}

	_, err := b.Checker.Check(ctx, access.Subject{UserID: "u1"}, req)
	require.Error(t, err, "b has not seen u1 yet")
	before := b.Checker.Revision()
	require.NoError(t, b.Checker.Sync(ctx))
	assert.Greater(t, b.Checker.Revision(), before)
	d, err := b.Checker.Check(ctx, access.Subject{UserID: "u1"}, req)
	require.NoError(t, err)
	assert.True(t, d.Allowed)

	require.NoError(t, a.Admin.Revoke(ctx, access.System(), "u1", access.RoleAdmin, "M1"))
	require.NoError(t, b.Checker.Sync(ctx))
	d, err = b.Checker.Check(ctx, access.Subject{UserID: "u1"}, req)
	require.NoError(t, err)
	assert.False(t, d.Allowed)
	assert.Equal(t, a.Checker.Revision() <= b.Checker.Revision(), true)
}

// TestSync_EveryKindOfChange makes one of each change through one platform
// and checks that the other, after Sync, decides exactly like a platform
// freshly opened on the database.
func TestSync_EveryKindOfChange(t *testing.T) {
	ctx := context.Background()
	clock := testkit.NewClock()
	a, b, dsn := replicas(t, townhall.WithSyncInterval(-1), townhall.WithClock(clock.Now))
	sys := access.System()
	testkit.Locations(t, a,
		location.Location{ID: "R", Level: "region"},
		location.Location{ID: "D1", Level: "district", ParentID: "R"},
		location.Location{ID: "D2", Level: "district", ParentID: "R"},
		location.Location{ID: "M1", Level: "municipality", ParentID: "D1"},
		location.Location{ID: "M2", Level: "municipality", ParentID: "D1"},
		location.Location{ID: "M3", Level: "municipality", ParentID: "D2"},
		location.Location{ID: "V1", Level: "village", ParentID: "M1"},
	)
	testkit.Member(t, a, "boss", access.RoleManager, "D1")
	testkit.Member(t, a, "op", access.RoleOperator, "M1")
	testkit.Member(t, a, "gone", access.RoleAdmin, "M2")
	testkit.Member(t, a, "v3", access.RoleViewer, "M3")
	testkit.User(t, a, "super")
	require.NoError(t, a.Admin.SetSuperAdmin(ctx, sys, "super", true))
	testkit.User(t, a, "pat")
	require.NoError(t, a.Admin.Grant(ctx, sys, "pat", access.RolePlatformAdmin, "*"))
	_, err := a.Profiles.CreateDepartment(ctx, users.Department{ID: "roads", MunicipalityID: "M1", Name: "Roads", Categories: []string{"c1"}})
	require.NoError(t, err)
	testkit.User(t, a, "cat")
	_, err = a.Admin.AddMember(ctx, sys, access.Membership{UserID: "cat", LocationID: "M1", Role: "operator", DepartmentID: "roads"})
	require.NoError(t, err)
	require.NoError(t, a.Admin.SetApprovalRequired(ctx, sys, "M3", false))
	testkit.User(t, a, "auto")
	_, err = a.Admin.AddMember(ctx, sys, access.Membership{UserID: "auto", LocationID: "M3", Role: "operator"})
	require.NoError(t, err)
	require.NoError(t, a.Admin.SetModuleEnabled(ctx, sys, "M2", "equipment", false))
	require.NoError(t, a.Admin.SetProfileActive(ctx, sys, "op", "M1", false))
	require.NoError(t, a.Admin.SetProfileActive(ctx, sys, "op", "M1", true))
	require.NoError(t, a.Admin.SetUserActive(ctx, sys, "v3", false))
	require.NoError(t, a.Admin.MoveLocation(ctx, sys, "M2", "D2"))
	require.NoError(t, a.Admin.DeleteUser(ctx, sys, "gone"))
	_, err = a.Affiliations.CreateOrganisation(ctx, affiliation.Organisation{ID: "clinic", Name: "Clinic", Kind: "health_facility", LocationID: "M1", Services: []string{"occurrences"}})
	require.NoError(t, err)
	require.NoError(t, a.Admin.Link(ctx, sys, affiliation.Link{UserID: "op", OrganisationID: "clinic"}))
	testkit.Locations(t, a, location.Location{ID: "V2", Level: "village", ParentID: "M3"})
	testkit.Member(t, a, "temp", access.RoleOperator, "V2")
	require.NoError(t, a.Admin.DeleteLocation(ctx, sys, "V2"))

	require.NoError(t, b.Checker.Sync(ctx))
	fresh, err := townhall.Open(ctx, dbtest.Open(t, dsn), townhall.WithKDF(testkit.FastKDF), townhall.WithSyncInterval(-1), townhall.WithClock(clock.Now))
	require.NoError(t, err)
	defer fresh.Close()

	subjects := []string{"", "boss", "op", "gone", "v3", "super", "pat", "cat", "auto", "temp"}
	munis := []string{"M1", "M2", "M3"}
	locs := []string{"R", "D1", "D2", "M1", "M2", "M3", "V1"}
	testkit.SameDecisions(t, a, fresh, access.DefaultRegistry(), subjects, munis, locs)
	testkit.SameDecisions(t, b, fresh, access.DefaultRegistry(), subjects, munis, locs)
}

// TestSync_Propagation makes 200 grants and revokes through one platform
// and measures how long the other takes to agree. On PostgreSQL the other
// is woken by LISTEN/NOTIFY only (its polling interval is an hour), and the
// listening connection is killed half way: every change must still arrive.
// Elsewhere the other polls every 250 ms.
func TestSync_Propagation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var optsB []townhall.Option
	postgres := dbtest.Name() == "postgres"
	if postgres {
		optsB = append(optsB, townhall.WithSyncInterval(time.Hour))
	}
	a, b, dsn := replicas(t, optsB...)
	testkit.Locations(t, a, location.Location{ID: "M1", Level: "municipality"})
	testkit.Member(t, a, "u1", access.RoleOperator, "M1")
	subject := access.Subject{UserID: "u1"}
	req := access.Request{Municipality: "M1", Module: "occurrences", Action: "delete"}
	waitFor := func(want bool) (time.Duration, error) {
		start := time.Now()
		deadline := start.Add(20 * time.Second)
		for time.Now().Before(deadline) {
			d, err := b.Checker.Check(ctx, subject, req)
			if err == nil && d.Allowed == want {
				return time.Since(start), nil
			}
			time.Sleep(time.Millisecond)
		}
		return 0, fmt.Errorf("replica did not see allowed=%v within 20s", want)
	}
	_, err := waitFor(false)
	require.NoError(t, err, "b knows u1")

	const changes = 200
	delays := make([]time.Duration, 0, changes)
	for i := range changes {
		if postgres && i == changes/2 {
			killListeners(t, dsn)
		}
		if i%2 == 0 {
			require.NoError(t, a.Admin.Grant(ctx, access.System(), "u1", access.RoleAdmin, "M1"))
		} else {
			require.NoError(t, a.Admin.Revoke(ctx, access.System(), "u1", access.RoleAdmin, "M1"))
		}
		d, err := waitFor(i%2 == 0)
		require.NoError(t, err, "change %d", i)
		delays = append(delays, d)
	}
	slices.Sort(delays)
	t.Logf("%s: propagation of %d changes: p50 %v, p99 %v, max %v", dbtest.Name(), changes,
		delays[len(delays)/2], delays[len(delays)*99/100], delays[len(delays)-1])
}

// killListeners terminates the LISTEN sessions of the database and schema
// behind dsn, as a network failure or a server restart would.
func killListeners(t *testing.T, dsn string) {
	t.Helper()
	ctx := context.Background()
	db := dbtest.Open(t, dsn)
	channel, err := notify.Channel(ctx, db)
	require.NoError(t, err)
	var killed []bool
	require.NoError(t, db.Raw("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query = ?", "LISTEN "+channel).
		Scan(&killed).Error)
	require.NotEmpty(t, killed, "a listening session was terminated")
}

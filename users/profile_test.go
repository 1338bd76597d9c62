package users_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/civicstack/townhall/audit"
	"github.com/civicstack/townhall/internal/txwrite"
	"github.com/civicstack/townhall/location"
	"github.com/civicstack/townhall/users"
)

// withDepartments adds departments "dm1" at m1 and "dm2" at m2.
func (e *env) withDepartments(t *testing.T) {
	t.Helper()
	for _, d := range []users.Department{
		{ID: "dm1", MunicipalityID: "m1", Name: "Roads", Categories: []string{"potholes", "lights"}},
		{ID: "dm2", MunicipalityID: "m2", Name: "Parks"},
	} {
		_, err := e.profiles.CreateDepartment(ctx, d)
		require.NoError(t, err)
	}
}

func TestProfileCreate_ValidatesAndStores(t *testing.T) {
	e := newEnv(t)
	e.withDepartments(t)
	e.mustUser(t, users.NewUser{Username: "una"})
	e.mustUser(t, users.NewUser{Username: "gone"})
	e.deleteUser(t, "gone")

	p, err := e.profiles.Create(ctx, users.Profile{
		UserID: "una", LocationID: "m1", DepartmentID: "dm1",
		AllowedCategories: []string{"potholes", "graffiti", "potholes"}, IsActive: true,
	})
	require.NoError(t, err)
	assert.True(t, len(p.ID) > 0)
	assert.Equal(t, []string{"graffiti", "potholes"}, p.AllowedCategories, "sorted, without duplicates")
	assert.True(t, p.IsActive)
	assert.False(t, p.IsApproved)
	assert.Equal(t, e.clock.Now().Truncate(time.Microsecond), p.CreatedAt)

	got, err := e.profiles.Get(ctx, "una", "m1")
	require.NoError(t, err)
	assert.Equal(t, p, got)

	ev := e.lastEvent(t, audit.TypeProfileCreated)
	assert.Equal(t, "una", ev.UserID)
	assert.Equal(t, "m1", ev.LocationID)
	assert.Equal(t, p.ID, ev.Details["profile_id"])
	assert.Equal(t, "dm1", ev.Details["department_id"])

	tests := []struct {
		name string
		p    users.Profile
		want error
	}{
		{"village profile, department of its municipality", users.Profile{UserID: "una", LocationID: "v1", DepartmentID: "dm1"}, nil},
		{"given id", users.Profile{ID: "P-1", UserID: "una", LocationID: "d1"}, nil},
		{"district profile, no department", users.Profile{UserID: "una", LocationID: "r1", AllowedCategories: []string{}}, nil},
		{"second live profile at the same location", users.Profile{UserID: "una", LocationID: "m1"}, users.ErrDuplicate},
		{"taken profile id", users.Profile{ID: "P-1", UserID: "una", LocationID: "m2"}, users.ErrDuplicate},
		{"department of another municipality", users.Profile{UserID: "una", LocationID: "m2", DepartmentID: "dm1"}, users.ErrInvalidInput},
		{"department below the profile's location", users.Profile{UserID: "una", LocationID: "m2", DepartmentID: "dm2", ID: "x"}, nil},
		{"unknown department", users.Profile{UserID: "una", LocationID: "v1", DepartmentID: "nope"}, users.ErrNotFound},
		{"unknown user", users.Profile{UserID: "nobody", LocationID: "m2"}, users.ErrNotFound},
		{"deleted user", users.Profile{UserID: "gone", LocationID: "m2"}, users.ErrNotFound},
		{"unknown location", users.Profile{UserID: "una", LocationID: "nowhere"}, location.ErrNotFound},
		{"malformed profile id", users.Profile{ID: "a b", UserID: "una", LocationID: "m2"}, users.ErrInvalidInput},
		{"missing user id", users.Profile{LocationID: "m2"}, users.ErrInvalidInput},
		{"missing location id", users.Profile{UserID: "una"}, users.ErrInvalidInput},
		{"malformed department id", users.Profile{UserID: "una", LocationID: "m2", DepartmentID: "a/b"}, users.ErrInvalidInput},
		{"empty category", users.Profile{UserID: "una", LocationID: "m2", AllowedCategories: []string{""}}, users.ErrInvalidInput},
		{"category with space", users.Profile{UserID: "una", LocationID: "m2", AllowedCategories: []string{"a b"}}, users.ErrInvalidInput},
		{"category of 65 characters", users.Profile{UserID: "una", LocationID: "m2", AllowedCategories: []string{strings.Repeat("c", 65)}}, users.ErrInvalidInput},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(e.events(t, audit.TypeProfileCreated))
			_, err := e.profiles.Create(ctx, tt.p)
			if tt.want == nil {
				assert.NoError(t, err)
				assert.Len(t, e.events(t, audit.TypeProfileCreated), before+1)
				return
			}
			assert.ErrorIs(t, err, tt.want)
			assert.Len(t, e.events(t, audit.TypeProfileCreated), before, "a refused profile leaves no event")
		})
	}
	assert.Equal(t, int64(1), e.count(t, users.ProfilesTable, "user_id = ? AND location_id = ?", "una", "m1"),
		"a refused duplicate leaves no row")
}

func TestProfile_DeletedProfileFreesTheLocation(t *testing.T) {
	e := newEnv(t)
	e.mustUser(t, users.NewUser{Username: "vic"})
	first, err := e.profiles.Create(ctx, users.Profile{UserID: "vic", LocationID: "m1", IsActive: true})
	require.NoError(t, err)

	deleteAtM1 := func(tx *gorm.DB) error { return txwrite.DeleteProfilesAt(ctx, tx, e.profiles, []string{"m1"}) }
	require.NoError(t, e.tx(deleteAtM1))
	_, err = e.profiles.Get(ctx, "vic", "m1")
	assert.ErrorIs(t, err, users.ErrNotFound)

	second, err := e.profiles.Create(ctx, users.Profile{UserID: "vic", LocationID: "m1"})
	require.NoError(t, err, "one live profile per user and location; deleted ones do not count")
	assert.NotEqual(t, first.ID, second.ID)
	require.NoError(t, e.tx(deleteAtM1))
	_, err = e.profiles.Create(ctx, users.Profile{UserID: "vic", LocationID: "m1"})
	require.NoError(t, err, "any number of deleted ones")
	assert.Equal(t, int64(3), e.count(t, users.ProfilesTable, "user_id = ?", "vic"), "deleted profiles stay on record")
}

func TestProfile_ListForUser(t *testing.T) {
	e := newEnv(t)
	e.mustUser(t, users.NewUser{Username: "wes"})
	e.mustUser(t, users.NewUser{Username: "xan"})
	for _, loc := range []string{"m2", "m1", "v1"} {
		_, err := e.profiles.Create(ctx, users.Profile{UserID: "wes", LocationID: loc})
		require.NoError(t, err)
	}
	_, err := e.profiles.Create(ctx, users.Profile{UserID: "xan", LocationID: "m1"})
	require.NoError(t, err)
	require.NoError(t, e.tx(func(tx *gorm.DB) error { return txwrite.DeleteProfilesAt(ctx, tx, e.profiles, []string{"v1"}) }))

	list, err := e.profiles.ListForUser(ctx, "wes")
	require.NoError(t, err)
	var locs []string
	for _, p := range list {
		assert.Equal(t, "wes", p.UserID)
		locs = append(locs, p.LocationID)
	}
	assert.Equal(t, []string{"m1", "m2"}, locs, "live profiles by location")

	for _, id := range []string{"nobody", "xan"} {
		if id == "xan" {
			e.deleteUser(t, "xan")
		}
		list, err := e.profiles.ListForUser(ctx, id)
		require.NoError(t, err, id)
		assert.NotNil(t, list, id)
		assert.Empty(t, list, "an unknown or deleted user has no profiles")
	}
	_, err = e.profiles.ListForUser(ctx, "bad id")
	assert.ErrorIs(t, err, users.ErrInvalidInput)
	_, err = e.profiles.Get(ctx, "wes", "bad id")
	assert.ErrorIs(t, err, users.ErrInvalidInput)
	_, err = e.profiles.Get(ctx, "wes", "r1")
	assert.ErrorIs(t, err, users.ErrNotFound)
}

func TestProfileUpdate_ChangesDepartmentAndCategories(t *testing.T) {
	e := newEnv(t)
	e.withDepartments(t)
	e.mustUser(t, users.NewUser{Username: "yan"})
	_, err := e.profiles.Create(ctx, users.Profile{UserID: "yan", LocationID: "m1", IsActive: true})
	require.NoError(t, err)
	e.clock.Advance(time.Minute)

	p, err := e.profiles.Update(ctx, "yan", "m1", users.ProfileUpdate{
		DepartmentID: ptr("dm1"), AllowedCategories: &[]string{"b", "a", "a"},
	})
	require.NoError(t, err)
	assert.Equal(t, "dm1", p.DepartmentID)
	assert.Equal(t, []string{"a", "b"}, p.AllowedCategories)
	assert.True(t, p.IsActive)
	assert.Equal(t, e.clock.Now().Truncate(time.Microsecond), p.UpdatedAt)
	ev := e.lastEvent(t, audit.TypeProfileUpdated)
	assert.Equal(t, "yan", ev.UserID)
	assert.Equal(t, "m1", ev.LocationID)
	assert.ElementsMatch(t, []any{"department_id", "allowed_categories"}, ev.Details["fields"])

	p, err = e.profiles.Update(ctx, "yan", "m1", users.ProfileUpdate{DepartmentID: ptr(""), AllowedCategories: &[]string{}})
	require.NoError(t, err)
	assert.Empty(t, p.DepartmentID)
	assert.Empty(t, p.AllowedCategories)

	events := len(e.events(t, audit.TypeProfileUpdated))
	_, err = e.profiles.Update(ctx, "yan", "m1", users.ProfileUpdate{})
	require.NoError(t, err)
	assert.Len(t, e.events(t, audit.TypeProfileUpdated), events, "an empty update writes nothing")

	for name, tt := range map[string]struct {
		user, loc string
		u         users.ProfileUpdate
		want      error
	}{
		"other municipality's department": {"yan", "m1", users.ProfileUpdate{DepartmentID: ptr("dm2")}, users.ErrInvalidInput},
		"unknown department":              {"yan", "m1", users.ProfileUpdate{DepartmentID: ptr("nope")}, users.ErrNotFound},
		"bad category":                    {"yan", "m1", users.ProfileUpdate{AllowedCategories: &[]string{"a b"}}, users.ErrInvalidInput},
		"no profile there":                {"yan", "m2", users.ProfileUpdate{AllowedCategories: &[]string{"a"}}, users.ErrNotFound},
		"unknown user":                    {"nobody", "m1", users.ProfileUpdate{AllowedCategories: &[]string{"a"}}, users.ErrNotFound},
		"bad user id":                     {"", "m1", users.ProfileUpdate{}, users.ErrInvalidInput},
		"bad location id":                 {"yan", "*", users.ProfileUpdate{}, users.ErrInvalidInput},
	} {
		_, err := e.profiles.Update(ctx, tt.user, tt.loc, tt.u)
		assert.ErrorIs(t, err, tt.want, name)
	}
	assert.Len(t, e.events(t, audit.TypeProfileUpdated), events, "refused updates are not audited")
}

func TestProfile_TxOperations(t *testing.T) {
	e := newEnv(t)
	e.mustUser(t, users.NewUser{Username: "zoe"})

	var created *users.Profile
	require.NoError(t, e.tx(func(tx *gorm.DB) error {
		var err error
		created, err = txwrite.CreateProfile(ctx, tx, e.profiles, users.Profile{UserID: "zoe", LocationID: "m1", IsActive: true})
		return err
	}))
	assert.Empty(t, e.events(t, audit.TypeProfileCreated), "the Tx variant leaves auditing to the caller")

	require.NoError(t, e.tx(func(tx *gorm.DB) error { return txwrite.SetProfileApproved(ctx, tx, e.profiles, "zoe", "m1", true) }))
	require.NoError(t, e.tx(func(tx *gorm.DB) error { return txwrite.SetProfileApproved(ctx, tx, e.profiles, "zoe", "m1", true) }), "idempotent")
	require.NoError(t, e.tx(func(tx *gorm.DB) error { return txwrite.SetProfileActive(ctx, tx, e.profiles, "zoe", "m1", false) }))
	p, err := e.profiles.Get(ctx, "zoe", "m1")
	require.NoError(t, err)
	assert.Equal(t, created.ID, p.ID)
	assert.True(t, p.IsApproved)
	assert.False(t, p.IsActive)

	boom := errors.New("boom")
	err = e.tx(func(tx *gorm.DB) error {
		if _, err := txwrite.CreateProfile(ctx, tx, e.profiles, users.Profile{UserID: "zoe", LocationID: "m2"}); err != nil {
			return err
		}
		if err := txwrite.DeleteProfilesAt(ctx, tx, e.profiles, []string{"m1"}); err != nil {
			return err
		}
		return boom
	})
	require.ErrorIs(t, err, boom)
	list, err := e.profiles.ListForUser(ctx, "zoe")
	require.NoError(t, err)
	require.Len(t, list, 1, "the caller's rollback undoes both")
	assert.Equal(t, "m1", list[0].LocationID)

	_, err = txwrite.CreateProfile(ctx, e.db, e.profiles, users.Profile{UserID: "zoe", LocationID: "v1"})
	require.NoError(t, err)
	require.NoError(t, e.tx(func(tx *gorm.DB) error { return txwrite.DeleteProfilesOf(ctx, tx, e.profiles, "zoe") }))
	list, err = e.profiles.ListForUser(ctx, "zoe")
	require.NoError(t, err)
	assert.Empty(t, list)
	_, err = e.profiles.Create(ctx, users.Profile{UserID: "zoe", LocationID: "m1"})
	assert.NoError(t, err, "deleted profiles free their locations")
	require.NoError(t, e.tx(func(tx *gorm.DB) error { return txwrite.DeleteProfilesOf(ctx, tx, e.profiles, "nobody") }),
		"nothing to delete is not an error")

	for name, err := range map[string]error{
		"approve, no profile": e.tx(func(tx *gorm.DB) error { return txwrite.SetProfileApproved(ctx, tx, e.profiles, "zoe", "m2", true) }),
		"active, no profile":  e.tx(func(tx *gorm.DB) error { return txwrite.SetProfileActive(ctx, tx, e.profiles, "nobody", "m1", true) }),
	} {
		assert.ErrorIs(t, err, users.ErrNotFound, name)
	}
	for name, err := range map[string]error{
		"create, nil tx":      func() error { _, err := txwrite.CreateProfile(ctx, nil, e.profiles, users.Profile{}); return err }(),
		"get, nil tx":         func() error { _, err := e.profiles.GetTx(ctx, nil, "zoe", "m1"); return err }(),
		"approve, nil tx":     txwrite.SetProfileApproved(ctx, nil, e.profiles, "zoe", "m1", true),
		"delete all, nil tx":  txwrite.DeleteProfilesOf(ctx, nil, e.profiles, "zoe"),
		"delete all, bad id":  txwrite.DeleteProfilesOf(ctx, e.db, e.profiles, "a b"),
		"active, bad user id": txwrite.SetProfileActive(ctx, e.db, e.profiles, "", "m1", true),
	} {
		assert.ErrorIs(t, err, users.ErrInvalidInput, name)
	}
}

func TestProfile_DeleteAtTxEndsProfilesAtThoseLocations(t *testing.T) {
	e := newEnv(t)
	e.mustUser(t, users.NewUser{Username: "abe"})
	for _, loc := range []string{"m1", "v1", "m2"} {
		_, err := e.profiles.Create(ctx, users.Profile{UserID: "abe", LocationID: loc})
		require.NoError(t, err)
	}
	require.NoError(t, e.tx(func(tx *gorm.DB) error { return txwrite.DeleteProfilesAt(ctx, tx, e.profiles, []string{"m1", "v1"}) }))
	list, err := e.profiles.ListForUser(ctx, "abe")
	require.NoError(t, err)
	require.Len(t, list, 1)
	assert.Equal(t, "m2", list[0].LocationID)
	_, err = e.profiles.Create(ctx, users.Profile{UserID: "abe", LocationID: "m1"})
	assert.NoError(t, err, "the deleted profile frees the location")

	assert.NoError(t, e.tx(func(tx *gorm.DB) error { return txwrite.DeleteProfilesAt(ctx, tx, e.profiles, nil) }))
	assert.ErrorIs(t, txwrite.DeleteProfilesAt(ctx, nil, e.profiles, []string{"m1"}), users.ErrInvalidInput)
}

package users_test

import (
	"errors"
	"testing"

	gormadapter "github.com/casbin/gorm-adapter/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/civicstack/townhall/internal/policy"
	"github.com/civicstack/townhall/internal/txwrite"
	"github.com/civicstack/townhall/location"
	"github.com/civicstack/townhall/users"
)

func TestOnboarding_ReportsEachStep(t *testing.T) {
	mail := &outbox{}
	e := newEnv(t, users.WithMailer(mail))
	e.withDepartments(t)
	check := func() users.Checklist {
		t.Helper()
		c, err := e.profiles.Onboarding(ctx, "amy", "m1")
		require.NoError(t, err)
		return c
	}

	c := check()
	assert.Equal(t, users.Checklist{UserID: "amy", MunicipalityID: "m1"}, c, "an unknown user has nothing done")
	assert.False(t, c.Done())

	e.mustUser(t, users.NewUser{Username: "amy", Email: "amy@example.org"})
	c = check()
	assert.True(t, c.UserCreated)
	assert.False(t, c.ProfileCreated)

	grant := func(loc string) {
		t.Helper()
		_, err := policy.InsertGrant(e.db, policy.Grant{UserID: "amy", Role: "operator", Domain: loc})
		require.NoError(t, err)
	}
	grant("m2")
	assert.False(t, check().RoleAssigned, "a grant elsewhere does not count")
	require.NoError(t, e.db.Create(&gormadapter.CasbinRule{
		Ptype: "p", V0: policy.UserKey("amy"), V1: "m1", V2: "m1",
	}).Error)
	assert.False(t, check().RoleAssigned, "a policy row is not a grant")
	grant("m1")
	assert.True(t, check().RoleAssigned)

	_, err := e.profiles.Create(ctx, users.Profile{UserID: "amy", LocationID: "m1", IsActive: true})
	require.NoError(t, err)
	c = check()
	assert.True(t, c.ProfileCreated)
	assert.False(t, c.DepartmentSet)
	assert.False(t, c.CategoriesSet)
	assert.False(t, c.Approved)

	_, err = e.profiles.Update(ctx, "amy", "m1", users.ProfileUpdate{DepartmentID: ptr("dm1"), AllowedCategories: &[]string{"potholes"}})
	require.NoError(t, err)
	c = check()
	assert.True(t, c.DepartmentSet)
	assert.True(t, c.CategoriesSet)
	assert.False(t, c.Done())

	require.NoError(t, e.tx(func(tx *gorm.DB) error { return txwrite.SetProfileApproved(ctx, tx, e.profiles, "amy", "m1", true) }))
	c = check()
	assert.True(t, c.Approved)
	assert.False(t, c.WelcomeSent)
	assert.False(t, c.Done(), "the welcome email is a step")

	mail.fail = errors.New("smtp down")
	require.Error(t, e.users.SendWelcome(ctx, "amy"))
	assert.False(t, check().WelcomeSent, "a message the mailer refused was not sent")
	mail.fail = nil
	require.NoError(t, e.users.SendWelcome(ctx, "amy"))
	assert.Equal(t, "amy@example.org", mail.last(t, users.MessageWelcome).To)
	c = check()
	assert.True(t, c.WelcomeSent)
	assert.True(t, c.Done())
	assert.Equal(t, "onboarding of user amy at m1:\n"+
		"[x] user created\n[x] profile created\n[x] role assigned\n"+
		"[x] department set\n[x] categories set\n[x] approved\n[x] welcome email sent\n", c.String())

	e.deleteUser(t, "amy")
	assert.Equal(t, users.Checklist{UserID: "amy", MunicipalityID: "m1"}, check(), "a deleted user starts over")

	_, err = e.profiles.Onboarding(ctx, "amy", "nowhere")
	assert.ErrorIs(t, err, location.ErrNotFound)
	_, err = e.profiles.Onboarding(ctx, "amy", "v1")
	assert.ErrorIs(t, err, users.ErrInvalidInput, "not a municipality")
	assert.ErrorIs(t, err, location.ErrInvalidLevel)
	_, err = e.profiles.Onboarding(ctx, "a b", "m1")
	assert.ErrorIs(t, err, users.ErrInvalidInput)
	_, err = e.profiles.Onboarding(ctx, "amy", "")
	assert.ErrorIs(t, err, users.ErrInvalidInput)
}

func TestChecklist_String(t *testing.T) {
	c := users.Checklist{UserID: "u", MunicipalityID: "m", UserCreated: true, RoleAssigned: true}
	assert.Equal(t, "onboarding of user u at m:\n"+
		"[x] user created\n[ ] profile created\n[x] role assigned\n"+
		"[ ] department set\n[ ] categories set\n[ ] approved\n[ ] welcome email sent\n", c.String())
	assert.False(t, c.Done())
}

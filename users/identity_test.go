package users_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/civicstack/townhall/audit"
	"github.com/civicstack/townhall/users"
)

func TestIdentity_LinkFindUnlink(t *testing.T) {
	e := newEnv(t)
	e.mustUser(t, users.NewUser{Username: "amy"})
	e.mustUser(t, users.NewUser{Username: "bob"})
	e.mustUser(t, users.NewUser{Username: "bot", Kind: users.Technical})

	require.NoError(t, e.users.LinkIdentity(ctx, "amy", "google", "1234567890"))
	u, err := e.users.FindByIdentity(ctx, "google", "1234567890")
	require.NoError(t, err)
	assert.Equal(t, "amy", u.ID)
	_, err = e.users.FindByIdentity(ctx, "keycloak", "1234567890")
	assert.ErrorIs(t, err, users.ErrNotFound, "the provider is part of the key")

	assert.ErrorIs(t, e.users.LinkIdentity(ctx, "bob", "google", "1234567890"), users.ErrDuplicate)
	assert.ErrorIs(t, e.users.LinkIdentity(ctx, "bot", "google", "x"), users.ErrTechnicalUser)
	assert.ErrorIs(t, e.users.LinkIdentity(ctx, "nobody", "google", "x"), users.ErrNotFound)
	assert.ErrorIs(t, e.users.LinkIdentity(ctx, "amy", "bad provider", "x"), users.ErrInvalidInput)
	assert.ErrorIs(t, e.users.LinkIdentity(ctx, "amy", "google", ""), users.ErrInvalidInput)
	assert.ErrorIs(t, e.users.LinkIdentity(ctx, "amy", "google", strings.Repeat("x", 256)), users.ErrInvalidInput)
	assert.ErrorIs(t, e.users.LinkIdentity(ctx, "amy", "google", "a\nb"), users.ErrInvalidInput)

	ids, err := e.users.Identities(ctx, "amy")
	require.NoError(t, err)
	require.Len(t, ids, 1)
	assert.Equal(t, "google", ids[0].Provider)
	assert.Equal(t, "google", e.lastEvent(t, audit.TypeIdentityLinked).Details["provider"])

	require.NoError(t, e.users.UnlinkIdentity(ctx, "google", "1234567890"))
	_, err = e.users.FindByIdentity(ctx, "google", "1234567890")
	assert.ErrorIs(t, err, users.ErrNotFound)
	assert.ErrorIs(t, e.users.UnlinkIdentity(ctx, "google", "1234567890"), users.ErrNotFound)
	require.NoError(t, e.users.LinkIdentity(ctx, "bob", "google", "1234567890"), "an ended link frees the pair")
}

func TestSignInExternal_ProvisionsOnFirstSignIn(t *testing.T) {
	e := newEnv(t)
	_, err := e.users.SignInExternal(ctx, users.ExternalSignIn{Provider: "google", Subject: "42"})
	assert.ErrorIs(t, err, users.ErrNotFound, "no link, no provisioning")

	in, err := e.users.SignInExternal(ctx, users.ExternalSignIn{Provider: "google", Subject: "42",
		Provision: &users.NewUser{Username: "amy.g", Email: "amy@example.org"}})
	require.NoError(t, err)
	assert.Equal(t, "amy.g", in.User.Username)
	assert.Equal(t, "google", in.Session.Method)
	got, err := e.users.ResolveSession(ctx, in.Token)
	require.NoError(t, err)
	assert.Equal(t, in.User.ID, got.UserID)

	again, err := e.users.SignInExternal(ctx, users.ExternalSignIn{Provider: "google", Subject: "42",
		Provision: &users.NewUser{Username: "someone.else"}})
	require.NoError(t, err)
	assert.Equal(t, in.User.ID, again.User.ID, "the second sign-in finds the linked user")
	_, err = e.users.GetByUsername(ctx, "someone.else")
	assert.ErrorIs(t, err, users.ErrNotFound)

	_, err = e.users.SignInExternal(ctx, users.ExternalSignIn{Provider: "google", Subject: "43",
		Provision: &users.NewUser{Username: "x", Password: "correct horse"}})
	assert.ErrorIs(t, err, users.ErrInvalidInput, "provisioned users have no password")
	_, err = e.users.SignInExternal(ctx, users.ExternalSignIn{Provider: "google", Subject: "44",
		Provision: &users.NewUser{Username: "amy.g"}})
	assert.ErrorIs(t, err, users.ErrDuplicate, "a taken username")
	_, err = e.users.FindByIdentity(ctx, "google", "44")
	assert.ErrorIs(t, err, users.ErrNotFound, "and no link is left behind")
}

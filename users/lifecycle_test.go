package users_test

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/civicstack/townhall/users"
)

func TestLifecycle_FlagsAndSuperAdmins(t *testing.T) {
	e := newEnv(t)
	e.mustUser(t, users.NewUser{Username: "root1"})
	e.mustUser(t, users.NewUser{Username: "root2"})
	e.mustUser(t, users.NewUser{Username: "robot", Kind: users.Technical})

	count := func() int64 {
		t.Helper()
		n, err := e.users.CountActiveSuperAdmins(ctx, nil)
		require.NoError(t, err)
		return n
	}
	assert.Zero(t, count())
	for _, id := range []string{"root1", "root2"} {
		require.NoError(t, e.tx(func(tx *gorm.DB) error { return e.users.SetSuperAdminTx(ctx, tx, id, true) }))
	}
	u, err := e.users.Get(ctx, "root1")
	require.NoError(t, err)
	assert.True(t, u.IsSuperAdmin)
	assert.Equal(t, int64(2), count())

	require.NoError(t, e.tx(func(tx *gorm.DB) error { return e.users.SetActiveTx(ctx, tx, "root2", false) }))
	assert.Equal(t, int64(1), count(), "inactive super admins do not count")
	u, err = e.users.Get(ctx, "root2")
	require.NoError(t, err)
	assert.False(t, u.IsActive)
	require.NoError(t, e.tx(func(tx *gorm.DB) error { return e.users.SetActiveTx(ctx, tx, "root2", false) }),
		"setting a flag to its value is not an error")

	require.NoError(t, e.tx(func(tx *gorm.DB) error {
		n, err := e.users.CountActiveSuperAdmins(ctx, tx)
		assert.Equal(t, int64(1), n)
		return err
	}))
	e.deleteUser(t, "root1")
	assert.Zero(t, count(), "deleted super admins do not count")

	err = e.tx(func(tx *gorm.DB) error { return e.users.SetSuperAdminTx(ctx, tx, "robot", true) })
	assert.ErrorIs(t, err, users.ErrInvalidInput, "technical users are never super admins")
	assert.ErrorIs(t, err, users.ErrTechnicalUser)
	assert.NoError(t, e.tx(func(tx *gorm.DB) error { return e.users.SetSuperAdminTx(ctx, tx, "robot", false) }))

	for name, fn := range map[string]func(tx *gorm.DB) error{
		"active of deleted":      func(tx *gorm.DB) error { return e.users.SetActiveTx(ctx, tx, "root1", true) },
		"super admin of unknown": func(tx *gorm.DB) error { return e.users.SetSuperAdminTx(ctx, tx, "nobody", true) },
		"delete unknown":         func(tx *gorm.DB) error { return e.users.DeleteTx(ctx, tx, "nobody") },
	} {
		assert.ErrorIs(t, e.tx(fn), users.ErrNotFound, name)
	}
	for name, err := range map[string]error{
		"active, nil tx":      e.users.SetActiveTx(ctx, nil, "root2", true),
		"super admin, nil tx": e.users.SetSuperAdminTx(ctx, nil, "root2", true),
		"delete, nil tx":      e.users.DeleteTx(ctx, nil, "root2"),
		"anonymize, nil tx":   e.users.AnonymizeTx(ctx, nil, "root2"),
		"get, nil tx":         func() error { _, err := e.users.GetTx(ctx, nil, "root2"); return err }(),
		"active, bad id":      e.users.SetActiveTx(ctx, e.db, "bad id", true),
		"delete, bad id":      e.users.DeleteTx(ctx, e.db, ""),
		"anonymize, bad id":   e.users.AnonymizeTx(ctx, e.db, "*"),
	} {
		assert.ErrorIs(t, err, users.ErrInvalidInput, name)
	}
}

func TestLifecycle_RolledBackWithTheCallersTransaction(t *testing.T) {
	e := newEnv(t)
	e.mustUser(t, users.NewUser{Username: "sam", Kind: users.Technical})
	key, err := e.users.CreateAPIKey(ctx, "sam", "key")
	require.NoError(t, err)

	boom := errors.New("boom")
	err = e.tx(func(tx *gorm.DB) error {
		if err := e.users.SetActiveTx(ctx, tx, "sam", false); err != nil {
			return err
		}
		if err := e.users.DeleteTx(ctx, tx, "sam"); err != nil {
			return err
		}
		return boom
	})
	require.ErrorIs(t, err, boom)

	u, err := e.users.Get(ctx, "sam")
	require.NoError(t, err, "the deletion rolled back")
	assert.True(t, u.IsActive, "so did the deactivation")
	_, err = e.users.AuthenticateAPIKey(ctx, key)
	assert.NoError(t, err, "and the key revocation")
}

package users_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/civicstack/townhall/internal/userwrite"
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
		require.NoError(t, e.tx(func(tx *gorm.DB) error { return userwrite.SetSuperAdmin(ctx, tx, e.clock.Now(), id, true) }))
	}
	u, err := e.users.Get(ctx, "root1")
	require.NoError(t, err)
	assert.True(t, u.IsSuperAdmin)
	assert.Equal(t, int64(2), count())

	require.NoError(t, e.tx(func(tx *gorm.DB) error { return userwrite.SetActive(ctx, tx, e.clock.Now(), "root2", false) }))
	assert.Equal(t, int64(1), count(), "inactive super admins do not count")
	u, err = e.users.Get(ctx, "root2")
	require.NoError(t, err)
	assert.False(t, u.IsActive)
	require.NoError(t, e.tx(func(tx *gorm.DB) error { return userwrite.SetActive(ctx, tx, e.clock.Now(), "root2", false) }),
		"setting a flag to its value is not an error")

	require.NoError(t, e.tx(func(tx *gorm.DB) error {
		n, err := e.users.CountActiveSuperAdmins(ctx, tx)
		assert.Equal(t, int64(1), n)
		return err
	}))
	e.deleteUser(t, "root1")
	assert.Zero(t, count(), "deleted super admins do not count")

	err = e.tx(func(tx *gorm.DB) error { return userwrite.SetSuperAdmin(ctx, tx, e.clock.Now(), "robot", true) })
	assert.ErrorIs(t, err, users.ErrInvalidInput, "technical users are never super admins")
	assert.ErrorIs(t, err, users.ErrTechnicalUser)
	assert.NoError(t, e.tx(func(tx *gorm.DB) error { return userwrite.SetSuperAdmin(ctx, tx, e.clock.Now(), "robot", false) }))

	for name, fn := range map[string]func(tx *gorm.DB) error{
		"active of deleted":      func(tx *gorm.DB) error { return userwrite.SetActive(ctx, tx, e.clock.Now(), "root1", true) },
		"super admin of unknown": func(tx *gorm.DB) error { return userwrite.SetSuperAdmin(ctx, tx, e.clock.Now(), "nobody", true) },
		"delete unknown":         func(tx *gorm.DB) error { return userwrite.Delete(ctx, tx, e.clock.Now(), "nobody") },
	} {
		assert.ErrorIs(t, e.tx(fn), users.ErrNotFound, name)
	}
	for name, err := range map[string]error{
		"active, nil tx":      userwrite.SetActive(ctx, nil, e.clock.Now(), "root2", true),
		"super admin, nil tx": userwrite.SetSuperAdmin(ctx, nil, e.clock.Now(), "root2", true),
		"delete, nil tx":      userwrite.Delete(ctx, nil, e.clock.Now(), "root2"),
		"anonymize, nil tx":   userwrite.Anonymize(ctx, nil, e.clock.Now(), "root2"),
		"get, nil tx":         func() error { _, err := e.users.GetTx(ctx, nil, "root2"); return err }(),
		"active, bad id":      userwrite.SetActive(ctx, e.db, e.clock.Now(), "bad id", true),
		"delete, bad id":      userwrite.Delete(ctx, e.db, e.clock.Now(), ""),
		"anonymize, bad id":   userwrite.Anonymize(ctx, e.db, e.clock.Now(), "*"),
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
		if err := userwrite.SetActive(ctx, tx, e.clock.Now(), "sam", false); err != nil {
			return err
		}
		if err := userwrite.Delete(ctx, tx, e.clock.Now(), "sam"); err != nil {
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

// TestStore_NoExportedLifecycleWrites: only access.Admin flags super
// admins, (de)activates and deletes users (SPEC §3); Store offers no
// method that would let a host do it without Admin's rules, audit event
// and snapshot update.
func TestStore_NoExportedLifecycleWrites(t *testing.T) {
	typ := reflect.TypeOf(&users.Store{})
	for i := range typ.NumMethod() {
		name := typ.Method(i).Name
		for _, word := range []string{"SuperAdmin", "Active", "Delete", "Anonymi"} {
			if strings.Contains(name, word) && !strings.HasPrefix(name, "Count") {
				t.Errorf("users.Store exports %s", name)
			}
		}
	}
}

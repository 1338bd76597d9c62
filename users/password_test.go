package users_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/civicstack/townhall/audit"
	"github.com/civicstack/townhall/users"
)

func (e *env) passwordHash(t *testing.T, id string) string {
	t.Helper()
	var hash string
	require.NoError(t, e.db.Table(users.UsersTable).Where("id = ?", id).Select("password_hash").Scan(&hash).Error)
	return hash
}

func TestPassword_StoredAsArgon2idPHC(t *testing.T) {
	e := newEnv(t)
	e.mustUser(t, users.NewUser{Username: "nia", Password: goodPassword})
	e.mustUser(t, users.NewUser{Username: "oli", Password: goodPassword})

	hash := e.passwordHash(t, "nia")
	assert.True(t, strings.HasPrefix(hash, "$argon2id$v=19$m=64,t=1,p=1$"), hash)
	assert.Len(t, strings.Split(hash, "$"), 6)
	assert.NotContains(t, hash, goodPassword)
	assert.NotEqual(t, hash, e.passwordHash(t, "oli"), "salted")
}

func TestPassword_OldHashesVerifyWithTheirOwnCost(t *testing.T) {
	e := newEnv(t)
	e.mustUser(t, users.NewUser{Username: "pat", Password: goodPassword})
	// A store with another cost still verifies the hash made with the old one.
	other := users.NewStore(e.db, e.log, users.WithClock(e.clock.Now),
		users.WithKDF(users.KDFParams{Time: 2, MemoryKiB: 128, Threads: 2}))
	_, err := other.Authenticate(ctx, "pat", goodPassword)
	require.NoError(t, err)
	require.NoError(t, other.SetPassword(ctx, "pat", "another password"))
	assert.True(t, strings.HasPrefix(e.passwordHash(t, "pat"), "$argon2id$v=19$m=128,t=2,p=2$"))
	_, err = e.users.Authenticate(ctx, "pat", "another password")
	assert.NoError(t, err)
}

func TestSetPassword_AppliesRules(t *testing.T) {
	e := newEnv(t)
	e.mustUser(t, users.NewUser{Username: "quinn"})
	e.mustUser(t, users.NewUser{Username: "robot", Kind: users.Technical})

	tests := []struct {
		name, id, password string
		want               error
	}{
		{"eight characters", "quinn", "12345678", nil},
		{"eight multibyte characters", "quinn", "öööööööö", nil},
		{"spaces only count", "quinn", "        ", nil},
		{"seven characters", "quinn", "1234567", users.ErrInvalidInput},
		{"empty", "quinn", "", users.ErrInvalidInput},
		{"too long", "quinn", strings.Repeat("x", users.MaxPasswordBytes+1), users.ErrInvalidInput},
		{"not utf-8", "quinn", "\xff\xfe\xfd\xfc\xfb\xfa\xf9\xf8", users.ErrInvalidInput},
		{"technical user", "robot", goodPassword, users.ErrTechnicalUser},
		{"unknown user", "nobody", goodPassword, users.ErrNotFound},
		{"malformed id", "a b", goodPassword, users.ErrInvalidInput},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(e.events(t, audit.TypePasswordChanged))
			err := e.users.SetPassword(ctx, tt.id, tt.password)
			if tt.want != nil {
				assert.ErrorIs(t, err, tt.want)
				assert.Len(t, e.events(t, audit.TypePasswordChanged), before)
				return
			}
			require.NoError(t, err)
			_, err = e.users.Authenticate(ctx, tt.id, tt.password)
			assert.NoError(t, err)
			ev := e.lastEvent(t, audit.TypePasswordChanged)
			assert.Equal(t, tt.id, ev.UserID)
			assert.Equal(t, false, ev.Details["cleared"])
		})
	}
	t.Run("technical user is also invalid input", func(t *testing.T) {
		assert.ErrorIs(t, e.users.SetPassword(ctx, "robot", goodPassword), users.ErrInvalidInput)
	})
}

func TestClearPassword_LeavesNoWayIn(t *testing.T) {
	e := newEnv(t)
	e.mustUser(t, users.NewUser{Username: "rae", Password: goodPassword})
	require.NoError(t, e.users.ClearPassword(ctx, "rae"))
	assert.Empty(t, e.passwordHash(t, "rae"))
	assert.Equal(t, true, e.lastEvent(t, audit.TypePasswordChanged).Details["cleared"])

	_, err := e.users.Authenticate(ctx, "rae", goodPassword)
	assert.ErrorIs(t, err, users.ErrInvalidCredentials)
	assert.Equal(t, users.ReasonNoPassword, e.lastEvent(t, audit.TypeLoginFailed).Reason)

	assert.ErrorIs(t, e.users.ClearPassword(ctx, "nobody"), users.ErrNotFound)
	assert.ErrorIs(t, e.users.ClearPassword(ctx, "*"), users.ErrInvalidInput)
}

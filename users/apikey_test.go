package users_test

import (
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/civicstack/townhall/audit"
	"github.com/civicstack/townhall/internal/userwrite"
	"github.com/civicstack/townhall/users"
)

func TestAPIKey_Lifecycle(t *testing.T) {
	e := newEnv(t)
	e.mustUser(t, users.NewUser{Username: "importer", Kind: users.Technical})

	key, err := e.users.CreateAPIKey(ctx, "importer", "nightly import")
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(key, "th_"), key)
	e.clock.Advance(time.Second)
	second, err := e.users.CreateAPIKey(ctx, "importer", "backup")
	require.NoError(t, err)
	assert.NotEqual(t, key, second)

	u, err := e.users.AuthenticateAPIKey(ctx, key)
	require.NoError(t, err)
	assert.Equal(t, "importer", u.ID)

	keys, err := e.users.APIKeys(ctx, "importer")
	require.NoError(t, err)
	require.Len(t, keys, 2)
	assert.Equal(t, "nightly import", keys[0].Name)
	assert.Equal(t, "importer", keys[0].UserID)
	assert.True(t, strings.HasPrefix(key, "th_"+keys[0].ID+"_"), "the key starts with its ID")

	var stored []string
	require.NoError(t, e.db.Table(users.APIKeysTable).Pluck("secret_hash", &stored).Error)
	for _, h := range stored {
		_, err := hex.DecodeString(h)
		assert.NoError(t, err)
		assert.Len(t, h, 64, "sha-256")
		assert.NotContains(t, key, h)
		assert.NotContains(t, second, h)
	}
	created := e.lastEvent(t, audit.TypeAPIKeyCreated)
	assert.Equal(t, "importer", created.UserID)
	assert.Equal(t, keys[1].ID, created.Details["key_id"])

	require.NoError(t, e.users.RevokeAPIKey(ctx, keys[0].ID))
	_, err = e.users.AuthenticateAPIKey(ctx, key)
	assert.ErrorIs(t, err, users.ErrInvalidCredentials, "a revoked key")
	_, err = e.users.AuthenticateAPIKey(ctx, second)
	assert.NoError(t, err, "other keys keep working")
	revoked := e.lastEvent(t, audit.TypeAPIKeyRevoked)
	assert.Equal(t, "importer", revoked.UserID)
	assert.Equal(t, keys[0].ID, revoked.Details["key_id"])

	keys, err = e.users.APIKeys(ctx, "importer")
	require.NoError(t, err)
	assert.Len(t, keys, 1, "revoked keys are not listed")
	assert.ErrorIs(t, e.users.RevokeAPIKey(ctx, revoked.Details["key_id"].(string)), users.ErrNotFound, "revoking twice")
	assert.ErrorIs(t, e.users.RevokeAPIKey(ctx, "unknown"), users.ErrNotFound)
	assert.ErrorIs(t, e.users.RevokeAPIKey(ctx, ""), users.ErrInvalidInput)
	assert.Len(t, e.events(t, audit.TypeAPIKeyRevoked), 1)
}

func TestAPIKey_TechnicalUsersOnly(t *testing.T) {
	e := newEnv(t)
	e.mustUser(t, users.NewUser{Username: "person"})
	e.mustUser(t, users.NewUser{Username: "robot", Kind: users.Technical})

	_, err := e.users.CreateAPIKey(ctx, "person", "key")
	assert.ErrorIs(t, err, users.ErrTechnicalOnly)
	assert.ErrorIs(t, err, users.ErrInvalidInput)
	for name, tt := range map[string]struct {
		id, name string
		want     error
	}{
		"unknown user":    {"nobody", "key", users.ErrNotFound},
		"malformed id":    {"a b", "key", users.ErrInvalidInput},
		"empty name":      {"robot", "", users.ErrInvalidInput},
		"blank name":      {"robot", "   ", users.ErrInvalidInput},
		"long name":       {"robot", strings.Repeat("n", users.MaxAPIKeyNameRunes+1), users.ErrInvalidInput},
		"control in name": {"robot", "a\tb", users.ErrInvalidInput},
	} {
		_, err := e.users.CreateAPIKey(ctx, tt.id, tt.name)
		assert.ErrorIs(t, err, tt.want, name)
	}
	assert.Empty(t, e.events(t, audit.TypeAPIKeyCreated), "refused keys are not audited")
	assert.Zero(t, e.count(t, users.APIKeysTable, "1 = 1"), "nor stored")
}

func TestAuthenticateAPIKey_RejectsBadKeys(t *testing.T) {
	e := newEnv(t)
	e.mustUser(t, users.NewUser{Username: "robot", Kind: users.Technical})
	key, err := e.users.CreateAPIKey(ctx, "robot", "key")
	require.NoError(t, err)
	id, secret, _ := strings.Cut(strings.TrimPrefix(key, "th_"), "_")

	flip := []byte(secret)
	if flip[0] == 'A' {
		flip[0] = 'B'
	} else {
		flip[0] = 'A'
	}
	for name, k := range map[string]string{
		"empty":            "",
		"prefix only":      "th_",
		"no prefix":        strings.TrimPrefix(key, "th_"),
		"other prefix":     "xx_" + strings.TrimPrefix(key, "th_"),
		"no secret":        "th_" + id,
		"empty secret":     "th_" + id + "_",
		"upper-case id":    "th_" + strings.ToUpper(id) + "_" + secret,
		"short id":         "th_" + id[1:] + "_" + secret,
		"wrong secret":     "th_" + id + "_" + string(flip),
		"short secret":     "th_" + id + "_" + secret[1:],
		"padded secret":    key + "=",
		"unknown id":       "th_000000000000000000000000_" + secret,
		"trailing garbage": key + "x",
		"not base64":       "th_" + id + "_" + strings.Repeat("!", len(secret)),
	} {
		_, err := e.users.AuthenticateAPIKey(ctx, k)
		assert.ErrorIs(t, err, users.ErrInvalidCredentials, name)
	}

	require.NoError(t, e.tx(func(tx *gorm.DB) error { return userwrite.SetActive(ctx, tx, e.clock.Now(), "robot", false) }))
	_, err = e.users.AuthenticateAPIKey(ctx, key)
	assert.ErrorIs(t, err, users.ErrInactive)

	require.NoError(t, e.tx(func(tx *gorm.DB) error { return userwrite.SetActive(ctx, tx, e.clock.Now(), "robot", true) }))
	e.deleteUser(t, "robot")
	_, err = e.users.AuthenticateAPIKey(ctx, key)
	assert.ErrorIs(t, err, users.ErrInvalidCredentials, "the user is deleted")
	keys, err := e.users.APIKeys(ctx, "robot")
	require.NoError(t, err)
	assert.NotNil(t, keys)
	assert.Empty(t, keys, "deleting a user revokes its keys")
	assert.Equal(t, int64(1), e.count(t, users.APIKeysTable, "revoked_at IS NOT NULL"))

	keys, err = e.users.APIKeys(ctx, "nobody")
	require.NoError(t, err)
	assert.Empty(t, keys)
	_, err = e.users.APIKeys(ctx, "")
	assert.ErrorIs(t, err, users.ErrInvalidInput)
}

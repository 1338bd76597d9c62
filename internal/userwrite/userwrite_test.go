package userwrite_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/civicstack/townhall/audit"
	"github.com/civicstack/townhall/internal/dbtest"
	"github.com/civicstack/townhall/internal/dbx"
	"github.com/civicstack/townhall/internal/userwrite"
	"github.com/civicstack/townhall/users"
)

// TestAnonymize_NameCannotClashWithALiveUsername: the anonymised username
// uses the prefix users refuses for live usernames, and frees the old one.
func TestAnonymize_NameCannotClashWithALiveUsername(t *testing.T) {
	ctx := context.Background()
	db := dbtest.New(t)
	require.NoError(t, dbx.Migrate(ctx, db, func(tx *gorm.DB) error {
		if err := audit.Migrate(tx); err != nil {
			return err
		}
		return users.Migrate(tx)
	}))
	log := audit.New(db)
	t.Cleanup(func() { _ = log.Close() })
	store := users.NewStore(db, log, users.WithKDF(users.KDFParams{Time: 1, MemoryKiB: 64, Threads: 1}))
	_, err := store.Create(ctx, users.NewUser{ID: "dave", Username: "dave"})
	require.NoError(t, err)

	_, err = store.Create(ctx, users.NewUser{Username: userwrite.AnonymizedPrefix + "x"})
	assert.ErrorIs(t, err, users.ErrInvalidInput, "live usernames cannot take the prefix")

	tx := func(fn func(tx *gorm.DB) error) error { return dbx.Tx(ctx, db, fn) }
	now := func() time.Time { return time.Now() }
	assert.ErrorIs(t, tx(func(tx *gorm.DB) error { return userwrite.Anonymize(ctx, tx, now(), "dave") }), users.ErrInvalidInput,
		"only deleted users are anonymised")
	require.NoError(t, tx(func(tx *gorm.DB) error { return userwrite.Delete(ctx, tx, now(), "dave") }))
	require.NoError(t, tx(func(tx *gorm.DB) error { return userwrite.Anonymize(ctx, tx, now(), "dave") }))
	_, err = store.Create(ctx, users.NewUser{ID: "dave2", Username: "dave"})
	assert.NoError(t, err, "the old username is free again")
	assert.ErrorIs(t, tx(func(tx *gorm.DB) error { return userwrite.Anonymize(ctx, tx, now(), "nobody") }), users.ErrNotFound)
}

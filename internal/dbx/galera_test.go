package dbx_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/civicstack/townhall/internal/dbtest"
	"github.com/civicstack/townhall/internal/dbx"
)

// Migrations through two Galera nodes never overlap: the second waits for
// the lease the first holds, although GET_LOCK would have let it in.
func TestMigrate_GaleraLeaseHoldsAcrossNodes(t *testing.T) {
	dsns := dbtest.Galera(t)
	ctx := context.Background()
	n1, n2 := dbtest.OpenMySQL(t, dsns[0]), dbtest.OpenMySQL(t, dsns[1])
	require.True(t, dbx.IsGalera(ctx, n1))

	var inside, overlapped atomic.Bool
	entered := make(chan struct{})
	release := make(chan struct{})
	first := make(chan error, 1)
	go func() {
		first <- dbx.Migrate(ctx, n1, func(*gorm.DB) error {
			inside.Store(true)
			close(entered)
			<-release
			inside.Store(false)
			return nil
		})
	}()
	<-entered
	second := make(chan error, 1)
	go func() {
		second <- dbx.Migrate(ctx, n2, func(*gorm.DB) error {
			overlapped.Store(inside.Load())
			return nil
		})
	}()
	select {
	case err := <-second:
		t.Fatalf("the second migration ran while the first held the lease (err %v)", err)
	case <-time.After(time.Second):
	}
	close(release)
	require.NoError(t, <-first)
	require.NoError(t, <-second)
	assert.False(t, overlapped.Load())
}

// A lease left by a process that died expires: the next migration takes it
// over instead of waiting forever.
func TestMigrate_GaleraLeaseOfADeadHolderExpires(t *testing.T) {
	dsns := dbtest.Galera(t)
	ctx := context.Background()
	n1, n2 := dbtest.OpenMySQL(t, dsns[0]), dbtest.OpenMySQL(t, dsns[1])
	require.NoError(t, dbx.Migrate(ctx, n1, func(*gorm.DB) error { return nil }), "creates the lease table")
	require.NoError(t, n1.Exec("INSERT INTO townhall_migrate_lease (id, holder, expires_at) VALUES (1, 'dead', UTC_TIMESTAMP(6) - INTERVAL 1 SECOND)").Error)
	ran := false
	require.NoError(t, dbx.Migrate(ctx, n2, func(*gorm.DB) error { ran = true; return nil }))
	assert.True(t, ran)
	var left int64
	require.NoError(t, n2.Raw("SELECT COUNT(*) FROM townhall_migrate_lease").Scan(&left).Error)
	assert.Zero(t, left, "the lease is released after the migration")
}

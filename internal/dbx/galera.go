package dbx

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/go-sql-driver/mysql"
	"gorm.io/gorm"
)

// galeraPools caches, per connection pool, whether its server is a Galera
// node (wsrep_on). A pool points at one server for its lifetime.
var galeraPools sync.Map // *sql.DB → bool

// IsGalera reports whether db's server is a MariaDB Galera node
// (@@wsrep_on). The answer is cached per connection pool; a failed probe is
// not cached and reports false.
func IsGalera(ctx context.Context, db *gorm.DB) bool {
	if DialectOf(db) != MySQL {
		return false
	}
	// Inside a transaction or on a dedicated connection there is no pool
	// to cache by: probe every time.
	sqlDB, poolErr := db.DB()
	if poolErr == nil {
		if v, ok := galeraPools.Load(sqlDB); ok {
			return v.(bool)
		}
	}
	var on sql.NullInt64
	err := db.WithContext(ctx).Raw("SELECT @@wsrep_on").Row().Scan(&on)
	var myErr *mysql.MySQLError
	switch {
	case err == nil:
	case errors.As(err, &myErr) && myErr.Number == 1193:
		// ER_UNKNOWN_SYSTEM_VARIABLE: MySQL without wsrep.
	default:
		return false
	}
	galera := on.Valid && on.Int64 == 1
	if poolErr == nil {
		galeraPools.Store(sqlDB, galera)
	}
	return galera
}

// CausalRead returns the prefix that makes the SELECT it precedes a causal
// read on a Galera node ("SET STATEMENT wsrep_sync_wait=1 FOR "): the node
// first applies every write set the cluster committed before the read
// began, so a read on node B sees a write that returned on node A. It is
// empty elsewhere, where a committed write is visible to the next read
// anyway.
func CausalRead(ctx context.Context, db *gorm.DB) string {
	if IsGalera(ctx, db) {
		return "SET STATEMENT wsrep_sync_wait=1 FOR "
	}
	return ""
}

// The lease that serialises migrations on a Galera cluster. GET_LOCK is
// local to one node, so two processes migrating through two nodes would
// both hold it. A row is cluster-wide: the INSERT that takes the lease is
// certified against every other node's, and only one commits. The lease
// expires unless its holder renews it, so a process that dies holding it
// delays the next migration by at most leaseTTL.
const (
	leaseTable   = "townhall_migrate_lease"
	leaseTTL     = 60 * time.Second
	leaseRenew   = 15 * time.Second
	leaseWait    = 120 * time.Second
	leasePollMin = 20 * time.Millisecond
	leasePollMax = 500 * time.Millisecond
)

// migrateGalera runs fn on one connection of db while holding the
// cluster-wide lease. The lease is taken, renewed and released through the
// pool, so a renewal never waits behind a long DDL statement of fn.
func migrateGalera(ctx context.Context, db *gorm.DB, fn func(tx *gorm.DB) error) error {
	pool := db.Session(&gorm.Session{})
	if err := pool.Exec("CREATE TABLE IF NOT EXISTS " + leaseTable + ` (
		id INT NOT NULL PRIMARY KEY,
		holder VARCHAR(64) NOT NULL,
		expires_at DATETIME(6) NOT NULL
	) ENGINE=InnoDB`).Error; err != nil {
		return fmt.Errorf("migration lease: %w", err)
	}
	holder := NewID()
	deadline := time.Now().Add(leaseWait)
	for n := 1; ; n++ {
		// An expired lease belongs to a process that died: take it away.
		// Two nodes doing so at once is harmless; one INSERT below wins.
		err := pool.Exec("DELETE FROM " + leaseTable + " WHERE id = 1 AND expires_at < UTC_TIMESTAMP(6)").Error
		if err == nil {
			err = pool.Exec("INSERT INTO "+leaseTable+" (id, holder, expires_at) VALUES (1, ?, UTC_TIMESTAMP(6) + INTERVAL ? SECOND)",
				holder, int(leaseTTL/time.Second)).Error
		}
		if err == nil {
			break
		}
		if !IsUniqueViolation(err) && !Retryable(err) {
			return fmt.Errorf("migration lease: %w", err)
		}
		if time.Now().After(deadline) {
			return errors.New("migration lease: timed out waiting for another process")
		}
		if !pause(ctx, min(leasePollMin<<min(n-1, 8), leasePollMax)) {
			return fmt.Errorf("migration lease: %w", ctx.Err())
		}
	}
	stop := make(chan struct{})
	renewed := make(chan struct{})
	go func() {
		defer close(renewed)
		t := time.NewTicker(leaseRenew)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				// A failed renewal is retried on the next tick; the lease
				// only lapses after leaseTTL without one.
				pool.Exec("UPDATE "+leaseTable+" SET expires_at = UTC_TIMESTAMP(6) + INTERVAL ? SECOND WHERE id = 1 AND holder = ?",
					int(leaseTTL/time.Second), holder)
			}
		}
	}()
	defer func() {
		close(stop)
		<-renewed
		// Released with a context of its own: the caller's may have ended.
		pool.WithContext(context.Background()).Exec("DELETE FROM "+leaseTable+" WHERE id = 1 AND holder = ?", holder)
	}()
	return db.Connection(func(conn *gorm.DB) error {
		return fn(conn.Session(&gorm.Session{}))
	})
}

package dbx

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"hash/fnv"

	"gorm.io/gorm"
)

// Migrate runs fn while holding a lock that serialises townhall migrations
// across processes sharing the database, so two processes opening the same
// database at once never race on DDL.
//
// PostgreSQL: a transaction-scoped advisory lock keyed by the current schema
// (DDL is transactional there, so fn runs inside that transaction).
// MySQL/MariaDB: a named lock held on one connection (DDL is not
// transactional there); on a Galera cluster, where named locks are local to
// one node, a lease row instead (see migrateGalera). SQLite: an immediate
// transaction.
func Migrate(ctx context.Context, db *gorm.DB, fn func(tx *gorm.DB) error) error {
	db = db.WithContext(ctx)
	switch DialectOf(db) {
	case Postgres:
		return db.Transaction(func(tx *gorm.DB) error {
			if err := tx.Exec("SELECT pg_advisory_xact_lock(hashtext(current_schema() || '.townhall_migrate'))").Error; err != nil {
				return fmt.Errorf("migration lock: %w", err)
			}
			return fn(tx)
		})
	case MySQL:
		if IsGalera(ctx, db) {
			return migrateGalera(ctx, db, fn)
		}
		return db.Connection(func(conn *gorm.DB) error {
			// A new session, so that each statement below starts clean
			// instead of accumulating clauses on the connection's statement.
			conn = conn.Session(&gorm.Session{})
			var name string
			if err := conn.Raw("SELECT DATABASE()").Scan(&name).Error; err != nil {
				return fmt.Errorf("migration lock: %w", err)
			}
			h := fnv.New64a()
			h.Write([]byte(name))
			lock := fmt.Sprintf("townhall_migrate_%x", h.Sum64())
			var got sql.NullInt64
			if err := conn.Raw("SELECT GET_LOCK(?, 120)", lock).Row().Scan(&got); err != nil {
				return fmt.Errorf("migration lock: %w", err)
			}
			if !got.Valid || got.Int64 != 1 {
				return errors.New("migration lock: timed out waiting for another process")
			}
			defer conn.Exec("SELECT RELEASE_LOCK(?)", lock)
			return fn(conn)
		})
	default:
		return db.Transaction(fn)
	}
}

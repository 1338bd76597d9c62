package dbx

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"hash/fnv"
	"sync"

	"gorm.io/gorm"
)

// Tx runs fn in a transaction on db bound to ctx. It commits when fn returns
// nil and rolls back otherwise, so a failed write leaves nothing behind.
// Nested calls (db already in a transaction) use a savepoint.
//
// On SQLite, transactions on one connection pool also take a Go mutex
// first: SQLite lets waiting writers retry until the busy timeout without
// any fairness, so a steady stream of writes (the audit writer under a flood
// of denied checks) could starve another writer into SQLITE_BUSY; the
// mutex queues them fairly instead.
func Tx(ctx context.Context, db *gorm.DB, fn func(tx *gorm.DB) error) error {
	if DialectOf(db) == SQLite && !inTx(db) {
		if mu := writerLock(db); mu != nil {
			mu.Lock()
			defer mu.Unlock()
		}
	}
	return db.WithContext(ctx).Transaction(fn)
}

// inTx reports whether db is already inside a transaction.
func inTx(db *gorm.DB) bool {
	committer, ok := db.Statement.ConnPool.(gorm.TxCommitter)
	return ok && committer != nil
}

// writers holds one mutex per SQLite connection pool.
var writers sync.Map // *sql.DB → *sync.Mutex

func writerLock(db *gorm.DB) *sync.Mutex {
	sqlDB, err := db.DB()
	if err != nil {
		return nil
	}
	mu, _ := writers.LoadOrStore(sqlDB, &sync.Mutex{})
	return mu.(*sync.Mutex)
}

// Migrate runs fn while holding a lock that serialises townhall migrations
// across processes sharing the database, so two processes opening the same
// database at once never race on DDL.
//
// PostgreSQL: a transaction-scoped advisory lock keyed by the current schema
// (DDL is transactional there, so fn runs inside that transaction).
// MySQL/MariaDB: a named lock held on one connection (DDL is not
// transactional there). SQLite: an immediate transaction.
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

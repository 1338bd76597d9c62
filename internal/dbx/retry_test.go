package dbx_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/glebarez/sqlite"
	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/civicstack/townhall/internal/dbtest"
	"github.com/civicstack/townhall/internal/dbx"
)

func TestRetryable_ConflictsOnly(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"mysql deadlock or galera certification failure", &mysql.MySQLError{Number: 1213, SQLState: [5]byte{'4', '0', '0', '0', '1'}}, true},
		{"wrapped", fmt.Errorf("audit: record: %w", &mysql.MySQLError{Number: 1213}), true},
		{"postgres serialization failure", &pgconn.PgError{Code: "40001"}, true},
		{"postgres deadlock", &pgconn.PgError{Code: "40P01"}, true},
		{"mysql duplicate key", &mysql.MySQLError{Number: 1062}, false},
		{"galera node not ready", &mysql.MySQLError{Number: 1047}, false},
		{"mysql lock wait timeout", &mysql.MySQLError{Number: 1205}, false},
		{"postgres unique violation", &pgconn.PgError{Code: "23505"}, false},
		{"postgres admin shutdown", &pgconn.PgError{Code: "57P01"}, false},
		{"lost connection", errors.New("driver: bad connection"), false},
		{"a lost race the caller recognised", fmt.Errorf("insert events: %w: %w", dbx.ErrConflict, &mysql.MySQLError{Number: 1062}), true},
		{"nil", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, dbx.Retryable(tt.err))
		})
	}
}

type counter struct {
	ID int `gorm:"primaryKey;autoIncrement:false"`
	N  int
}

func newCounters(t *testing.T) *gorm.DB {
	t.Helper()
	db := dbtest.New(t)
	require.NoError(t, dbx.TableOptions(db).AutoMigrate(&counter{}))
	require.NoError(t, db.Create(&[]counter{{ID: 1}, {ID: 2}}).Error)
	return db
}

// Two transactions that take two rows in opposite order deadlock on
// PostgreSQL and MariaDB; the database aborts one, and Tx runs it again as
// a whole, so both increments land exactly once. SQLite serialises writers,
// so there both commit at the first attempt.
func TestTx_RetriesADeadlockAsAWhole(t *testing.T) {
	db := newCounters(t)
	ctx := context.Background()
	crossing := dbx.DialectOf(db) != dbx.SQLite
	var attempts atomic.Int32
	ready := [2]chan struct{}{make(chan struct{}), make(chan struct{})}
	var once [2]sync.Once
	bump := func(tx *gorm.DB, id int) error {
		return tx.Exec("UPDATE counters SET n = n + 1 WHERE id = ?", id).Error
	}
	run := func(me int) error {
		first, second := 1+me, 2-me
		return dbx.Tx(ctx, db, func(tx *gorm.DB) error {
			attempts.Add(1)
			if err := bump(tx, first); err != nil {
				return err
			}
			if crossing {
				// Only the first attempts meet; a retry goes straight on.
				once[me].Do(func() { close(ready[me]); <-ready[1-me] })
			}
			return bump(tx, second)
		})
	}
	errs := make(chan error, 2)
	for me := range 2 {
		go func() { errs <- run(me) }()
	}
	require.NoError(t, <-errs)
	require.NoError(t, <-errs)

	var rows []counter
	require.NoError(t, db.Order("id").Find(&rows).Error)
	assert.Equal(t, []counter{{ID: 1, N: 2}, {ID: 2, N: 2}}, rows, "each transaction applied exactly once")
	if crossing {
		assert.Greater(t, attempts.Load(), int32(2), "the deadlock victim ran again")
	} else {
		assert.Equal(t, int32(2), attempts.Load())
	}
}

// A transaction that loses every attempt is tried MaxAttempts times, and
// nothing of any attempt stays behind.
func TestTx_GivesUpAfterMaxAttemptsLeavingNothing(t *testing.T) {
	db := newCounters(t)
	lost := &mysql.MySQLError{Number: 1213, Message: "Deadlock found when trying to get lock; try restarting transaction"}
	attempts := 0
	err := dbx.Tx(context.Background(), db, func(tx *gorm.DB) error {
		attempts++
		if err := tx.Exec("UPDATE counters SET n = n + 1 WHERE id = 1").Error; err != nil {
			return err
		}
		return fmt.Errorf("write: %w", lost)
	})
	require.ErrorIs(t, err, lost)
	assert.Equal(t, dbx.MaxAttempts, attempts)
	var n int
	require.NoError(t, db.Raw("SELECT n FROM counters WHERE id = 1").Scan(&n).Error)
	assert.Zero(t, n, "every attempt rolled back")
}

// A nested Tx (a savepoint) leaves the retry to the outermost one: the
// conflict aborted the whole transaction.
func TestTx_NestedLeavesTheRetryToTheOutermost(t *testing.T) {
	db := newCounters(t)
	lost := &pgconn.PgError{Code: "40001", Message: "could not serialize access"}
	outer, inner := 0, 0
	err := dbx.Tx(context.Background(), db, func(tx *gorm.DB) error {
		outer++
		return dbx.Tx(context.Background(), tx, func(tx *gorm.DB) error {
			inner++
			if inner == 1 {
				return lost
			}
			return tx.Exec("UPDATE counters SET n = n + 1 WHERE id = 2").Error
		})
	})
	require.NoError(t, err)
	assert.Equal(t, 2, outer, "the outer transaction ran again")
	assert.Equal(t, 2, inner)
	var n int
	require.NoError(t, db.Raw("SELECT n FROM counters WHERE id = 2").Scan(&n).Error)
	assert.Equal(t, 1, n)
}

// A cancelled context stops the retries at once.
func TestTx_StopsRetryingWhenTheContextEnds(t *testing.T) {
	db := newCounters(t)
	ctx, cancel := context.WithCancel(context.Background())
	attempts := 0
	err := dbx.Tx(ctx, db, func(tx *gorm.DB) error {
		attempts++
		cancel()
		return &mysql.MySQLError{Number: 1213}
	})
	require.Error(t, err)
	assert.True(t, dbx.Retryable(err))
	assert.Equal(t, 1, attempts)
}

// TestRetryable_SQLiteBusy takes a real SQLITE_BUSY: one pool holds the
// write lock while another, with no busy timeout, asks for it.
func TestRetryable_SQLiteBusy(t *testing.T) {
	path := t.TempDir() + "/busy.db"
	open := func() *gorm.DB {
		db, err := gorm.Open(sqlite.Open(path+"?_pragma=busy_timeout(0)&_pragma=journal_mode(WAL)&_txlock=immediate"), &gorm.Config{Logger: logger.Discard})
		require.NoError(t, err)
		sqlDB, err := db.DB()
		require.NoError(t, err)
		t.Cleanup(func() { _ = sqlDB.Close() })
		return db
	}
	a, b := open(), open()
	require.NoError(t, a.Exec("CREATE TABLE t (x INTEGER)").Error)
	holder := a.Begin()
	require.NoError(t, holder.Error)
	defer holder.Rollback()
	require.NoError(t, holder.Exec("INSERT INTO t VALUES (1)").Error)
	err := b.Exec("INSERT INTO t VALUES (2)").Error
	require.Error(t, err)
	assert.True(t, dbx.Retryable(fmt.Errorf("write grant: %w", err)), "%v", err)
	assert.False(t, dbx.Retryable(b.Exec("INSERT INTO missing VALUES (1)").Error))
}

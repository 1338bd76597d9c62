package dbx

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5/pgconn"
)

// Bounds of Tx's retries. A transaction that loses a conflict is re-run up
// to MaxAttempts times in all, sleeping a random time in [0, d) before
// attempt n+1, where d doubles from retryBase up to retryCap ("full
// jitter": losers of one conflict spread out instead of colliding again).
// The sleeps add at most about 2 s (1 s expected) before the last error
// returns. Measured on a three-node Galera cluster with every node writing
// flat out (access/cluster_test.go), 10 attempts still let about one write
// in a thousand fail; none failed with 20.
const (
	MaxAttempts = 20
	retryBase   = 2 * time.Millisecond
	retryCap    = 128 * time.Millisecond
)

// ErrConflict marks an error a caller knows to be a lost race with a
// concurrent transaction (say, a key taken under a lock that, on Galera,
// only holds on one node); Retryable reports it as retryable.
var ErrConflict = errors.New("conflict with a concurrent transaction")

// Retryable reports whether err means the database rolled the whole
// transaction back because it lost a conflict with another one, so running
// it again from the start is safe and may succeed:
//
//   - MySQL/MariaDB 1213 (ER_LOCK_DEADLOCK, SQLSTATE 40001): an InnoDB
//     deadlock, and on Galera a certification failure or a brute-force
//     abort by a replicated write set;
//   - PostgreSQL 40001 (serialization_failure) and 40P01
//     (deadlock_detected);
//   - SQLite SQLITE_BUSY (5, and its extended codes): the write lock was
//     not had within the busy timeout, as when a stream of other writers
//     keeps taking it first; the statement failed and the caller rolls the
//     transaction back, so it is safe to run again;
//   - anything wrapping ErrConflict.
//
// Lost connections are not retryable here: whether the commit happened is
// unknown.
func Retryable(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, ErrConflict) {
		return true
	}
	var myErr *mysql.MySQLError
	if errors.As(err, &myErr) {
		return myErr.Number == 1213 || string(myErr.SQLState[:]) == "40001"
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "40001" || pgErr.Code == "40P01"
	}
	// The SQLite driver's error carries its result code behind Code();
	// the primary code is the low byte.
	var sqliteErr interface{ Code() int }
	if errors.As(err, &sqliteErr) {
		return sqliteErr.Code()&0xff == sqliteBusy
	}
	return false
}

// sqliteBusy is SQLite's SQLITE_BUSY result code.
const sqliteBusy = 5

// retryDelay is the pause before attempt n+1 (n counts from 1).
func retryDelay(n int) time.Duration {
	d := retryBase << min(n-1, 16)
	if d > retryCap || d <= 0 {
		d = retryCap
	}
	return rand.N(d)
}

// pause sleeps for d or until ctx ends, reporting whether it slept in full.
func pause(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

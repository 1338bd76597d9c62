package dbx

import (
	"context"
	"sync"

	"gorm.io/gorm"
)

// Tx runs fn in a transaction on db bound to ctx. It commits when fn returns
// nil and rolls back otherwise, so a failed write leaves nothing behind.
// Nested calls (db already in a transaction) use a savepoint.
//
// When the transaction loses a conflict (Retryable: a deadlock, a Galera
// certification failure, a PostgreSQL serialization failure), the database
// has rolled all of it back, and Tx runs fn again in a new transaction, up
// to MaxAttempts times in all with jittered exponential backoff; the last
// error is returned when every attempt lost. fn must therefore be safe to
// re-run: it may only act through tx, and must reset anything it captures
// from the enclosing function (results are read after Tx returns). Nested
// calls never retry on their own: the conflict aborted the outer
// transaction too, so the error goes up to the outermost Tx, which re-runs
// the whole.
//
// Top-level transactions on one connection pool also queue on a Go mutex
// where concurrency within a process only hurts:
//
//   - SQLite lets waiting writers retry until the busy timeout without any
//     fairness, so a steady stream of writes (the audit writer under a
//     flood of denied checks) could starve another writer into
//     SQLITE_BUSY; the mutex queues them fairly instead.
//   - On a Galera node every townhall write updates the audit head row, so
//     a process's writers are serialised by its lock anyway, and each one
//     waiting for it is aborted by the next write set replicated from
//     another node. Queued, a process has one write in flight, which only
//     conflicts with the other nodes' ones.
//
// The mutex is released while Tx sleeps between attempts.
func Tx(ctx context.Context, db *gorm.DB, fn func(tx *gorm.DB) error) error {
	if inTx(db) {
		return db.WithContext(ctx).Transaction(fn)
	}
	return Retry(ctx, func() error { return TxOnce(ctx, db, fn) })
}

// TxOnce is Tx without the retries: one attempt, queued on the writer mutex
// like Tx. Callers that must redo more than the transaction when it loses a
// conflict (re-read state, re-judge the change) wrap their whole attempt in
// Retry instead, so that nothing they hold is held across the backoff.
func TxOnce(ctx context.Context, db *gorm.DB, fn func(tx *gorm.DB) error) error {
	if inTx(db) {
		return db.WithContext(ctx).Transaction(fn)
	}
	var mu *sync.Mutex
	if DialectOf(db) == SQLite || IsGalera(ctx, db) {
		mu = writerLock(db)
	}
	if mu != nil {
		mu.Lock()
		defer mu.Unlock()
	}
	return db.WithContext(ctx).Transaction(fn)
}

// Retry runs attempt until it returns an error that is not Retryable (or
// nil), up to MaxAttempts times in all with jittered exponential backoff,
// and returns the last error. attempt must be safe to re-run as a whole.
func Retry(ctx context.Context, attempt func() error) error {
	for n := 1; ; n++ {
		err := attempt()
		if n == MaxAttempts || !Retryable(err) || !pause(ctx, retryDelay(n)) {
			return err
		}
	}
}

// inTx reports whether db is already inside a transaction.
func inTx(db *gorm.DB) bool {
	committer, ok := db.Statement.ConnPool.(gorm.TxCommitter)
	return ok && committer != nil
}

// writers holds one mutex per SQLite or Galera connection pool.
var writers sync.Map // *sql.DB → *sync.Mutex

func writerLock(db *gorm.DB) *sync.Mutex {
	sqlDB, err := db.DB()
	if err != nil {
		return nil
	}
	mu, _ := writers.LoadOrStore(sqlDB, &sync.Mutex{})
	return mu.(*sync.Mutex)
}

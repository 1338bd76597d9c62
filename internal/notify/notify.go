// Package notify carries "the database changed" between processes sharing a
// PostgreSQL database with LISTEN/NOTIFY.
//
// A writer calls Hook's function inside the transaction of each change
// (pg_notify is delivered at commit, and not at all on rollback). A
// listener holds one dedicated connection taken out of the pool (LISTEN
// needs a session of its own) and calls back on every notification. When
// the connection drops it reconnects with backoff and calls back once more,
// so the receiver catches up from its revision: nothing is lost, because
// notifications only wake the receiver, which reads the changes themselves
// from the database.
//
// A transaction-mode connection pooler (PgBouncer in transaction mode)
// cannot carry LISTEN; use polling there.
package notify

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/stdlib"
	"gorm.io/gorm"
)

// Channel returns the notification channel of the database and schema db
// works in. Channels are per database, not per schema, so the name hashes
// both: two townhall schemas in one database never hear each other.
func Channel(ctx context.Context, db *gorm.DB) (string, error) {
	var dbName, schema string
	row := db.WithContext(ctx).Raw("SELECT current_database(), current_schema()").Row()
	if err := row.Scan(&dbName, &schema); err != nil {
		return "", fmt.Errorf("notify channel: %w", err)
	}
	h := fnv.New64a()
	h.Write([]byte(dbName + "\x00" + schema))
	return fmt.Sprintf("townhall_%016x", h.Sum64()), nil
}

// Hook returns a function that notifies channel with seq inside tx.
func Hook(channel string) func(tx *gorm.DB, seq int64) error {
	return func(tx *gorm.DB, seq int64) error {
		return tx.Exec("SELECT pg_notify(?, ?)", channel, strconv.FormatInt(seq, 10)).Error
	}
}

// Listener listens on a channel until Close.
type Listener struct {
	cancel context.CancelFunc
	done   chan struct{}
	log    *slog.Logger

	mu        sync.Mutex
	connected bool
	sessions  int
	lastErr   error
}

// Status is a Listener's state.
type Status struct {
	Connected bool  // a LISTEN session is up
	Sessions  int   // LISTEN sessions established so far; more than one means reconnects
	LastError error // why the last session ended or could not start (kept after a reconnection)
}

// Listen starts listening on channel with a connection taken from db's
// pool. wake is called (from the listener's goroutine) after each
// notification and after each (re)connection. Every lost session and every
// failed reconnection is logged to log at Warn.
func Listen(db *gorm.DB, channel string, wake func(), log *slog.Logger) (*Listener, error) {
	sqlDB, err := db.DB()
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	l := &Listener{cancel: cancel, done: make(chan struct{}), log: log}
	go func() {
		defer close(l.done)
		backoff := 50 * time.Millisecond
		for ctx.Err() == nil {
			established, err := l.session(ctx, sqlDB.Conn, channel, wake)
			if ctx.Err() != nil {
				return
			}
			if established {
				backoff = 50 * time.Millisecond
			}
			l.failed(err, established, backoff)
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 2*time.Second)
		}
	}()
	return l, nil
}

// failed records and logs why a session ended (established) or could not
// start.
func (l *Listener) failed(err error, established bool, retry time.Duration) {
	if err == nil {
		err = errors.New("listen session ended")
	}
	l.mu.Lock()
	l.lastErr = err
	l.mu.Unlock()
	msg := "townhall: listener reconnect failed"
	if established {
		msg = "townhall: listener connection lost"
	}
	l.log.Warn(msg, slog.Any("error", err), slog.Duration("retry_in", retry))
}

// session runs one LISTEN session on a dedicated connection until it fails
// or ctx ends; established reports whether LISTEN succeeded.
func (l *Listener) session(ctx context.Context, conn func(context.Context) (*sql.Conn, error), channel string, wake func()) (established bool, err error) {
	c, err := conn(ctx)
	if err != nil {
		return false, err
	}
	defer c.Close()
	err = c.Raw(func(dc any) error {
		sc, ok := dc.(*stdlib.Conn)
		if !ok {
			return errors.New("listen: not a pgx connection")
		}
		pc := sc.Conn()
		if _, err := pc.Exec(ctx, "LISTEN "+channel); err != nil {
			return fmt.Errorf("%w: listen: %w", driver.ErrBadConn, err)
		}
		established = true
		l.setConnected(true)
		defer l.setConnected(false)
		wake() // catch up with whatever happened while not listening
		for {
			if _, err := pc.WaitForNotification(ctx); err != nil {
				// The session is unusable after an error or a cancelled
				// wait: have the pool discard the connection.
				return fmt.Errorf("%w: wait for notification: %w", driver.ErrBadConn, err)
			}
			wake()
		}
	})
	return established, err
}

func (l *Listener) setConnected(on bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if on && !l.connected {
		l.sessions++
	}
	l.connected = on
}

// Connections reports how many LISTEN sessions have been established.
func (l *Listener) Connections() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.sessions
}

// Status returns the listener's state.
func (l *Listener) Status() Status {
	l.mu.Lock()
	defer l.mu.Unlock()
	return Status{Connected: l.connected, Sessions: l.sessions, LastError: l.lastErr}
}

// Close stops the listener and returns its connection to the pool's care.
func (l *Listener) Close() error {
	l.cancel()
	<-l.done
	return nil
}

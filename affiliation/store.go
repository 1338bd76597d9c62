package affiliation

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/civicstack/townhall/audit"
	"github.com/civicstack/townhall/internal/dbx"
)

// Errors returned by the store. They are wrapped with context; test for
// them with errors.Is.
var (
	// ErrNotFound reports an unknown or deleted organisation, user or
	// location, or a missing link. When a user is missing the error also
	// matches users.ErrNotFound, and when a location is missing it also
	// matches location.ErrNotFound.
	ErrNotFound = errors.New("affiliation: not found")
	// ErrInvalidInput reports malformed input: a bad ID, name, kind,
	// service name, validity window, or a nil context, database or log.
	ErrInvalidInput = errors.New("affiliation: invalid input")
	// ErrDuplicate reports an organisation ID already used (deleted
	// organisations included), or a link whose window overlaps a
	// non-deleted link of the same user to the same organisation.
	ErrDuplicate = errors.New("affiliation: duplicate")
)

// TypeOrganisationUpdated is the audit event type of UpdateServices.
const TypeOrganisationUpdated = "organisation_updated"

type options struct {
	now      func() time.Time
	onChange func(context.Context, Change) error
}

// Option configures a Store.
type Option func(*options)

// WithClock sets the clock that decides which links are live and stamps
// created, updated and deleted times (default time.Now). A nil function
// keeps the default.
func WithClock(now func() time.Time) Option {
	return func(o *options) {
		if now != nil {
			o.now = now
		}
	}
}

// Store keeps organisations and affiliation links. Its writes are
// unguarded (bootstrap, imports, host code that has authorised the change;
// access.Admin is the guarded way) and each runs in one transaction with
// its audit event, attributed to the subject in the context or "system".
// A Store is safe for concurrent use.
type Store struct {
	db       *gorm.DB
	log      *audit.Log
	now      func() time.Time
	onChange func(context.Context, Change) error
}

// NewStore returns a store on db (prepared by Migrate) that audits its
// writes to log. A nil db or log makes every call that needs it fail with
// ErrInvalidInput.
func NewStore(db *gorm.DB, log *audit.Log, opts ...Option) *Store {
	o := options{now: time.Now}
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	return &Store{db: db, log: log, now: o.now, onChange: o.onChange}
}

// nowUTC is the clock's time in UTC at the microsecond precision the
// databases store.
func (s *Store) nowUTC() time.Time {
	return s.now().UTC().Truncate(time.Microsecond)
}

// reader checks what every read needs and returns the database bound to ctx.
func (s *Store) reader(ctx context.Context) (*gorm.DB, error) {
	if ctx == nil {
		return nil, fmt.Errorf("%w: nil context", ErrInvalidInput)
	}
	if s == nil || s.db == nil {
		return nil, fmt.Errorf("%w: store has no database", ErrInvalidInput)
	}
	return s.db.WithContext(ctx), nil
}

// readerFor validates id (what names it) and returns the database bound to
// ctx; errors name the operation op.
func (s *Store) readerFor(ctx context.Context, op, what, id string) (*gorm.DB, error) {
	if err := checkID(what, id); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	db, err := s.reader(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s %q: %w", op, id, err)
	}
	return db, nil
}

// writer checks what every audited write needs.
func (s *Store) writer(ctx context.Context) error {
	if _, err := s.reader(ctx); err != nil {
		return err
	}
	if s.log == nil {
		return fmt.Errorf("%w: store has no audit log", ErrInvalidInput)
	}
	return nil
}

// inTx checks the arguments of the in-transaction writes and binds tx to
// ctx.
func (s *Store) inTx(ctx context.Context, tx *gorm.DB) (*gorm.DB, error) {
	if ctx == nil || tx == nil {
		return nil, fmt.Errorf("%w: nil context or transaction", ErrInvalidInput)
	}
	if s == nil || s.now == nil {
		return nil, fmt.Errorf("%w: store not created with NewStore", ErrInvalidInput)
	}
	return tx.WithContext(ctx), nil
}

// write runs fn and then records the events it returns, all in one
// transaction: the events are recorded last because RecordTx locks the
// audit chain until the transaction ends.
func (s *Store) write(ctx context.Context, fn func(tx *gorm.DB) ([]audit.Event, error)) error {
	if err := s.writer(ctx); err != nil {
		return err
	}
	var touched []string
	err := dbx.Tx(ctx, s.db, func(tx *gorm.DB) error {
		touched = touched[:0] // dbx.Tx may run this again
		events, err := fn(tx)
		if err != nil {
			return err
		}
		for _, ev := range events {
			if err := s.log.RecordTx(ctx, tx, ev); err != nil {
				return fmt.Errorf("record audit event: %w", err)
			}
			if ev.UserID != "" {
				touched = append(touched, ev.UserID)
			}
		}
		return nil
	})
	if err != nil || s.onChange == nil {
		return err
	}
	return s.onChange(ctx, Change{UserIDs: touched})
}

// exclusive and shared return the locking clause appended to a
// single-table SELECT inside a write. Besides keeping concurrent writers
// apart, a locking read on MySQL/MariaDB sees the latest committed rows
// instead of the REPEATABLE READ snapshot the transaction started with.
// PostgreSQL (READ COMMITTED) sees them anyway; SQLite has one writer.
func exclusive(db *gorm.DB) string {
	if dbx.DialectOf(db) == dbx.SQLite {
		return ""
	}
	return " FOR UPDATE"
}

// liveWindow is the SQL condition "the link's window contains ?" on a
// links table aliased l; pass the time twice.
const liveWindow = "(l.valid_from IS NULL OR l.valid_from <= ?) AND (l.valid_to IS NULL OR l.valid_to > ?)"

package location

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"time"

	"gorm.io/gorm"

	"github.com/civicstack/townhall/audit"
	"github.com/civicstack/townhall/internal/dbx"
)

// Store keeps the location tree in the database. Every write runs in one
// transaction together with its audit event; reads never see a deleted
// location. A Store is safe for concurrent use.
type Store struct {
	mu       sync.Mutex // held across a write and its WithOnChange callback
	db       *gorm.DB
	log      *audit.Log
	levels   []string
	rank     map[string]int
	now      func() time.Time
	onChange func(Change)
}

type options struct {
	levels    []string
	levelsSet bool
	now       func() time.Time
	onChange  func(Change)
}

// Option configures a Store.
type Option func(*options)

// WithLevels sets the level names, top first (default DefaultLevels). They
// must satisfy ValidateLevels; NewStore reports ErrInvalidLevel otherwise.
func WithLevels(levels ...string) Option {
	return func(o *options) {
		o.levels = append([]string(nil), levels...)
		o.levelsSet = true
	}
}

// WithClock sets the clock that stamps created, updated and deleted times
// (default time.Now). A nil function keeps the default.
func WithClock(now func() time.Time) Option {
	return func(o *options) {
		if now != nil {
			o.now = now
		}
	}
}

// WithOnChange registers fn to be called after each write made through
// Create, Move or Delete has committed, in the calling goroutine and in
// commit order, so that an in-memory Tree (Tree.Apply) or another cache
// sees the change before the call returns. fn must not write through the
// Store. access.Admin's in-transaction forms of these writes do not call
// it: Admin applies the change after its own commit, stamped with
// TreeVersion.
func WithOnChange(fn func(Change)) Option {
	return func(o *options) { o.onChange = fn }
}

// NewStore returns a store on db, which Migrate must have prepared. log
// records every write. On db it registers a GORM plugin that keeps, for a
// minute at a time, whether host tables' location columns are indexed
// (the PostgreSQL forms of Filter.Condition depend on it); call it before
// db serves queries. The error wraps ErrInvalidInput for a nil db or log
// and ErrInvalidLevel for a bad WithLevels.
func NewStore(db *gorm.DB, log *audit.Log, opts ...Option) (*Store, error) {
	if db == nil || log == nil {
		return nil, fmt.Errorf("location: new store: nil database or audit log: %w", ErrInvalidInput)
	}
	o := options{levels: DefaultLevels, now: time.Now}
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	if err := ValidateLevels(o.levels); err != nil {
		return nil, fmt.Errorf("location: new store: %w", err)
	}
	s := &Store{
		db:       db,
		log:      log,
		levels:   append([]string(nil), o.levels...),
		rank:     make(map[string]int, len(o.levels)),
		now:      o.now,
		onChange: o.onChange,
	}
	for i, l := range s.levels {
		s.rank[l] = i
	}
	useIndexFacts(db, o.now)
	return s, nil
}

// Levels returns the configured level names, top first.
func (s *Store) Levels() []string { return append([]string(nil), s.levels...) }

// LoadTree reads the live tree into a new in-memory Tree.
func (s *Store) LoadTree(ctx context.Context) (*Tree, error) {
	return LoadTree(ctx, s.db)
}

// Get returns the live location id (ErrNotFound when unknown or deleted).
func (s *Store) Get(ctx context.Context, id string) (*Location, error) {
	return s.GetTx(ctx, s.db, id)
}

// GetTx is Get inside the caller's transaction tx, which sees the
// transaction's own uncommitted locations.
func (s *Store) GetTx(ctx context.Context, tx *gorm.DB, id string) (*Location, error) {
	if err := checkRead(ctx, id); err != nil {
		return nil, err
	}
	if tx == nil {
		return nil, fmt.Errorf("%w: nil transaction", ErrInvalidInput)
	}
	r, err := getLive(tx.WithContext(ctx), id, "")
	if err != nil {
		return nil, fmt.Errorf("get %q: %w", id, err)
	}
	l := r.location()
	return &l, nil
}

// Children returns the live children of id, ordered by ID. An unknown or
// deleted id is ErrNotFound.
func (s *Store) Children(ctx context.Context, id string) ([]Location, error) {
	if err := checkRead(ctx, id); err != nil {
		return nil, err
	}
	db := s.db.WithContext(ctx)
	if _, err := getLive(db, id, ""); err != nil {
		return nil, fmt.Errorf("children of %q: %w", id, err)
	}
	out, err := queryLocations(db, "SELECT id, name, level, parent_id FROM "+LocationsTable+
		" WHERE parent_id = ? AND deleted_at IS NULL ORDER BY id", id)
	if err != nil {
		return nil, fmt.Errorf("location: children of %q: %w", id, err)
	}
	return out, nil
}

// Ancestors returns the ancestors of id, parent first and top-level
// location last (empty for a top-level location). An unknown or deleted id
// is ErrNotFound.
func (s *Store) Ancestors(ctx context.Context, id string) ([]Location, error) {
	if err := checkRead(ctx, id); err != nil {
		return nil, err
	}
	// The self row (depth 0) comes first and tells a live id from an
	// unknown one in the same query.
	rows, err := queryLocations(s.db.WithContext(ctx), "SELECT l.id, l.name, l.level, l.parent_id FROM "+PathsTable+" p JOIN "+
		LocationsTable+" l ON l.id = p.ancestor_id WHERE p.descendant_id = ? AND l.deleted_at IS NULL ORDER BY p.depth", id)
	if err != nil {
		return nil, fmt.Errorf("location: ancestors of %q: %w", id, err)
	}
	if len(rows) == 0 || rows[0].ID != id {
		return nil, fmt.Errorf("ancestors of %q: %w", id, ErrNotFound)
	}
	return rows[1:], nil
}

// Descendants returns the live locations in the subtree of id, id itself
// excluded, ordered by depth then ID. With levels, only locations of those
// levels are returned (an unknown level is ErrInvalidLevel). An unknown or
// deleted id is ErrNotFound.
func (s *Store) Descendants(ctx context.Context, id string, levels ...string) ([]Location, error) {
	if err := checkRead(ctx, id); err != nil {
		return nil, err
	}
	for _, l := range levels {
		if _, ok := s.rank[l]; !ok {
			return nil, fmt.Errorf("descendants of %q: %w: unknown level %q", id, ErrInvalidLevel, l)
		}
	}
	db := s.db.WithContext(ctx)
	q := "SELECT l.id, l.name, l.level, l.parent_id FROM " + PathsTable + " p JOIN " + LocationsTable +
		" l ON l.id = p.descendant_id WHERE p.ancestor_id = ? AND l.deleted_at IS NULL"
	if len(levels) > 0 {
		// The level condition stays a plain conjunct, so the database can
		// apply it while reading the locations.
		if _, err := getLive(db, id, ""); err != nil {
			return nil, fmt.Errorf("descendants of %q: %w", id, err)
		}
		out, err := queryLocations(db, q+" AND p.depth > 0 AND l.level IN ? ORDER BY p.depth, l.id", id, levels)
		if err != nil {
			return nil, fmt.Errorf("location: descendants of %q: %w", id, err)
		}
		return out, nil
	}
	// The self row (depth 0) comes first and tells a live id from an
	// unknown one in the same query.
	rows, err := queryLocations(db, q+" ORDER BY p.depth, l.id", id)
	if err != nil {
		return nil, fmt.Errorf("location: descendants of %q: %w", id, err)
	}
	if len(rows) == 0 || rows[0].ID != id {
		return nil, fmt.Errorf("descendants of %q: %w", id, ErrNotFound)
	}
	return rows[1:], nil
}

// MunicipalityOf returns the location of the municipality level that is id
// or one of its ancestors. An unknown or deleted id is ErrNotFound; a live
// location without one is ErrNoMunicipality.
func (s *Store) MunicipalityOf(ctx context.Context, id string) (*Location, error) {
	if err := checkRead(ctx, id); err != nil {
		return nil, err
	}
	rows, err := queryLocations(s.db.WithContext(ctx), "SELECT l.id, l.name, l.level, l.parent_id FROM "+PathsTable+" p JOIN "+
		LocationsTable+" l ON l.id = p.ancestor_id WHERE p.descendant_id = ? AND l.deleted_at IS NULL"+
		" AND (p.depth = 0 OR l.level = ?) ORDER BY p.depth", id, Municipality)
	if err != nil {
		return nil, fmt.Errorf("location: municipality of %q: %w", id, err)
	}
	if len(rows) == 0 || rows[0].ID != id {
		return nil, fmt.Errorf("municipality of %q: %w", id, ErrNotFound)
	}
	for _, l := range rows {
		if l.Level == Municipality {
			return &l, nil
		}
	}
	return nil, fmt.Errorf("municipality of %q: %w", id, ErrNoMunicipality)
}

// IsWithin reports whether x lies in the subtree of y (x == y included),
// both live. One indexed lookup in the closure table.
func (s *Store) IsWithin(ctx context.Context, x, y string) (bool, error) {
	if err := checkRead(ctx, x); err != nil {
		return false, err
	}
	if err := checkID("location id", y); err != nil {
		return false, err
	}
	var n int64
	err := s.db.WithContext(ctx).Raw("SELECT COUNT(*) FROM "+PathsTable+" WHERE ancestor_id = ? AND descendant_id = ?", y, x).
		Scan(&n).Error
	if err != nil {
		return false, fmt.Errorf("location: is %q within %q: %w", x, y, err)
	}
	return n > 0, nil
}

func checkRead(ctx context.Context, id string) error {
	if ctx == nil {
		return fmt.Errorf("%w: nil context", ErrInvalidInput)
	}
	return checkID("location id", id)
}

// getLive reads a live location row; lock is appended to the query (a
// locking clause inside writes, see lockingRead).
func getLive(db *gorm.DB, id, lock string) (*locationRow, error) {
	var rows []locationRow
	err := db.Raw("SELECT id, name, level, parent_id, depth FROM "+LocationsTable+
		" WHERE id = ? AND deleted_at IS NULL"+lock, id).Scan(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("location: read %q: %w", id, err)
	}
	if len(rows) == 0 {
		return nil, ErrNotFound
	}
	return &rows[0], nil
}

// queryLocations runs q, which selects id, name, level and parent_id, and
// scans the rows without reflection (descendant lists run to tens of
// thousands of rows).
func queryLocations(db *gorm.DB, q string, args ...any) ([]Location, error) {
	rows, err := db.Raw(q, args...).Rows()
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Location
	for rows.Next() {
		l, err := scanLocation(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, l)
	}
	return out, rows.Err()
}

func scanLocation(rows *sql.Rows) (Location, error) {
	var (
		l      Location
		parent sql.NullString
	)
	err := rows.Scan(&l.ID, &l.Name, &l.Level, &parent)
	l.ParentID = parent.String
	return l, err
}

// lockingRead is appended to the SELECTs of a write. On MySQL/MariaDB a
// plain SELECT inside a REPEATABLE READ transaction reads the snapshot the
// transaction started with, which may predate the tree lock; a locking read
// sees the latest committed rows. PostgreSQL (READ COMMITTED) and SQLite
// (one writer) see them anyway.
func lockingRead(db *gorm.DB) string {
	if dbx.DialectOf(db) == dbx.MySQL {
		return " LOCK IN SHARE MODE"
	}
	return ""
}

package dbx

import (
	"errors"
	"fmt"
	"strings"

	"github.com/glebarez/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// ErrInvalidPath is returned for a SQLite path townhall cannot configure.
var ErrInvalidPath = errors.New("invalid sqlite path")

// sqliteParams make a SQLite file safe for concurrent use from one pool:
// writers wait for each other (busy timeout) instead of failing with
// SQLITE_BUSY, every transaction takes the write lock up front (so a read
// inside a transaction is never upgraded into a deadlock), and WAL lets
// readers proceed while a writer commits.
var sqliteParams = []string{
	"_pragma=busy_timeout(10000)",
	"_pragma=journal_mode(WAL)",
	"_pragma=synchronous(NORMAL)",
	"_txlock=immediate",
}

// SQLiteDSN returns the DSN for a SQLite file at path with townhall's
// concurrency settings added (settings already in path are kept).
func SQLiteDSN(path string) (string, error) {
	if path == "" || strings.ContainsRune(path, 0) {
		return "", fmt.Errorf("%w: %q", ErrInvalidPath, path)
	}
	base, query, _ := strings.Cut(path, "?")
	var parts []string
	if query != "" {
		parts = append(parts, query)
	}
	for _, p := range sqliteParams {
		key, _, _ := strings.Cut(p, "=")
		if key == "_pragma" {
			name, _, _ := strings.Cut(strings.TrimPrefix(p, "_pragma="), "(")
			if strings.Contains(query, "_pragma="+name) {
				continue
			}
		} else if strings.Contains(query, key+"=") {
			continue
		}
		parts = append(parts, p)
	}
	return base + "?" + strings.Join(parts, "&"), nil
}

// OpenSQLite opens the SQLite file at path with townhall's concurrency
// settings. The file is created when missing.
func OpenSQLite(path string) (*gorm.DB, error) {
	dsn, err := SQLiteDSN(path)
	if err != nil {
		return nil, err
	}
	db, err := gorm.Open(sqlite.Open(dsn), &gorm.Config{Logger: logger.Discard})
	if err != nil {
		return nil, fmt.Errorf("open sqlite %q: %w", path, err)
	}
	return db, nil
}

// IsMemorySQLite reports whether dsn names an in-memory SQLite database.
func IsMemorySQLite(dsn string) bool {
	return dsn == "" || strings.Contains(dsn, ":memory:") || strings.Contains(dsn, "mode=memory")
}

// SafeSQLite returns a handle on the same SQLite database as db that is safe
// for townhall's concurrent writes, and whether it is a new pool the caller
// must close. For a file, that is a new pool on the same file opened with
// townhall's settings; for an in-memory database, db itself, limited to one
// connection when every connection would otherwise see its own database.
func SafeSQLite(db *gorm.DB) (*gorm.DB, bool, error) {
	d, ok := db.Dialector.(*sqlite.Dialector)
	if !ok || d.Conn != nil {
		return db, false, nil
	}
	if IsMemorySQLite(d.DSN) {
		if !strings.Contains(d.DSN, "cache=shared") {
			sqlDB, err := db.DB()
			if err != nil {
				return nil, false, err
			}
			sqlDB.SetMaxOpenConns(1)
		}
		return db, false, nil
	}
	dsn, err := SQLiteDSN(d.DSN)
	if err != nil {
		return nil, false, err
	}
	own, err := gorm.Open(sqlite.Open(dsn), &gorm.Config{Logger: db.Logger, NowFunc: db.NowFunc})
	if err != nil {
		return nil, false, fmt.Errorf("open sqlite %q: %w", d.DSN, err)
	}
	return own, true, nil
}

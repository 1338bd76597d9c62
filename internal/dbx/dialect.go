package dbx

import (
	"errors"
	"strings"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5/pgconn"
	"gorm.io/gorm"
)

// Dialect names a supported database family.
type Dialect string

// The supported dialects.
const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
	MySQL    Dialect = "mysql"
)

// DialectOf reports the dialect of db. Anything that is neither PostgreSQL
// nor MySQL/MariaDB is treated as SQLite.
func DialectOf(db *gorm.DB) Dialect {
	switch db.Dialector.Name() {
	case "postgres":
		return Postgres
	case "mysql":
		return MySQL
	default:
		return SQLite
	}
}

// TableOptions returns db prepared for creating townhall tables: on MySQL and
// MariaDB every string column gets a binary collation, so IDs compare byte
// for byte as on the other databases.
func TableOptions(db *gorm.DB) *gorm.DB {
	if DialectOf(db) == MySQL {
		return db.Set("gorm:table_options", "ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin")
	}
	return db
}

// IsUniqueViolation reports whether err is a unique-constraint violation on
// any supported database.
func IsUniqueViolation(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, gorm.ErrDuplicatedKey) {
		return true
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "23505"
	}
	var myErr *mysql.MySQLError
	if errors.As(err, &myErr) {
		return myErr.Number == 1062
	}
	return strings.Contains(err.Error(), "UNIQUE constraint failed")
}

// SharedLock returns the clause that makes a SELECT on db a shared locking
// read (" FOR SHARE", " LOCK IN SHARE MODE"; "" on SQLite, which has one
// writer): inside a write it sees the latest committed rows, where a plain
// read on MySQL/MariaDB (REPEATABLE READ) sees the transaction's snapshot.
func SharedLock(db *gorm.DB) string {
	switch DialectOf(db) {
	case Postgres:
		return " FOR SHARE"
	case MySQL:
		return " LOCK IN SHARE MODE"
	}
	return ""
}

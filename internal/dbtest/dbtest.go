// Package dbtest gives tests a fresh, isolated database.
//
// By default each call opens a new SQLite file in the test's temporary
// directory. With TOWNHALL_TEST_POSTGRES_DSN set, each call creates a fresh
// schema on that server; with TOWNHALL_TEST_MYSQL_DSN set, a fresh database.
// Either is dropped when the test ends. Names are random, so packages running
// in parallel never collide. Galera and PGFailover give tests a fresh
// database on the clusters scripts/cluster starts (GaleraEnv,
// PGFailoverEnv), and skip without them.
package dbtest

import (
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	gmysql "gorm.io/driver/mysql"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/civicstack/townhall/internal/dbx"
)

// Environment variables that select the server under test.
const (
	PostgresEnv = "TOWNHALL_TEST_POSTGRES_DSN"
	MySQLEnv    = "TOWNHALL_TEST_MYSQL_DSN"
)

// Name reports which database New returns: "sqlite", "postgres" or "mysql".
func Name() string {
	switch {
	case os.Getenv(PostgresEnv) != "":
		return "postgres"
	case os.Getenv(MySQLEnv) != "":
		return "mysql"
	default:
		return "sqlite"
	}
}

// New returns a fresh empty database for t, removed when t ends.
func New(t testing.TB) *gorm.DB {
	t.Helper()
	db, _ := NewWithDSN(t)
	return db
}

// NewWithDSN is New that also returns a DSN for opening a second,
// independent connection pool on the same database (for tests that simulate
// another process). On SQLite the DSN is the file path.
func NewWithDSN(t testing.TB) (*gorm.DB, string) {
	t.Helper()
	switch Name() {
	case "postgres":
		return newPostgres(t, os.Getenv(PostgresEnv))
	case "mysql":
		return newMySQL(t, os.Getenv(MySQLEnv))
	default:
		path := t.TempDir() + "/townhall.db"
		db, err := dbx.OpenSQLite(path)
		if err != nil {
			t.Fatalf("dbtest: %v", err)
		}
		t.Cleanup(func() { closeDB(db) })
		return db, path
	}
}

// Open opens another pool on a database returned by NewWithDSN.
func Open(t testing.TB, dsn string) *gorm.DB {
	t.Helper()
	var (
		db  *gorm.DB
		err error
	)
	switch Name() {
	case "postgres":
		db, err = gorm.Open(postgres.Open(dsn), gormConfig())
	case "mysql":
		db, err = gorm.Open(gmysql.Open(dsn), gormConfig())
	default:
		db, err = dbx.OpenSQLite(dsn)
	}
	if err != nil {
		t.Fatalf("dbtest: open %s: %v", Name(), err)
	}
	t.Cleanup(func() { closeDB(db) })
	return db
}

func gormConfig() *gorm.Config {
	return &gorm.Config{Logger: logger.Discard}
}

func uniqueName() string {
	return fmt.Sprintf("th_%d_%s", time.Now().Unix(), dbx.NewID()[:12])
}

func newPostgres(t testing.TB, dsn string) (*gorm.DB, string) {
	admin, err := gorm.Open(postgres.Open(dsn), gormConfig())
	if err != nil {
		t.Fatalf("dbtest: postgres: %v", err)
	}
	schema := uniqueName()
	if err := admin.Exec("CREATE SCHEMA " + schema).Error; err != nil {
		t.Fatalf("dbtest: create schema: %v", err)
	}
	scoped := withPostgresSearchPath(dsn, schema)
	db, err := gorm.Open(postgres.Open(scoped), gormConfig())
	if err != nil {
		t.Fatalf("dbtest: postgres: %v", err)
	}
	t.Cleanup(func() {
		closeDB(db)
		admin.Exec("DROP SCHEMA " + schema + " CASCADE")
		closeDB(admin)
	})
	return db, scoped
}

// withPostgresSearchPath adds search_path to a URL or keyword/value DSN; pgx
// sends it as a run-time parameter on every connection of the pool.
func withPostgresSearchPath(dsn, schema string) string {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err == nil {
			q := u.Query()
			q.Set("search_path", schema)
			u.RawQuery = q.Encode()
			return u.String()
		}
	}
	return dsn + " search_path=" + schema
}

func newMySQL(t testing.TB, dsn string) (*gorm.DB, string) {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		t.Fatalf("dbtest: mysql dsn: %v", err)
	}
	cfg.ParseTime = true
	cfg.Loc = time.UTC
	admin, err := gorm.Open(gmysql.Open(cfg.FormatDSN()), gormConfig())
	if err != nil {
		t.Fatalf("dbtest: mysql: %v", err)
	}
	name := uniqueName()
	if err := admin.Exec("CREATE DATABASE " + name).Error; err != nil {
		t.Fatalf("dbtest: create database: %v", err)
	}
	cfg.DBName = name
	scoped := cfg.FormatDSN()
	db, err := gorm.Open(gmysql.Open(scoped), gormConfig())
	if err != nil {
		t.Fatalf("dbtest: mysql: %v", err)
	}
	t.Cleanup(func() {
		closeDB(db)
		admin.Exec("DROP DATABASE " + name)
		closeDB(admin)
	})
	return db, scoped
}

func closeDB(db *gorm.DB) {
	if sqlDB, err := db.DB(); err == nil {
		sqlDB.Close()
	}
}

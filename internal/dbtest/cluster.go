package dbtest

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"
	gmysql "gorm.io/driver/mysql"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
)

// Environment variables naming the clusters that scripts/cluster starts
// (.ci/run sets them): the Galera nodes' DSNs, space separated, and the
// multi-host DSN of the PostgreSQL primary and its synchronous standby.
const (
	GaleraEnv     = "TOWNHALL_TEST_GALERA_DSNS"
	PGFailoverEnv = "TOWNHALL_TEST_PG_FAILOVER_DSN"
)

// Galera returns one DSN per Galera node, all naming a fresh database that
// is dropped when t ends. Without GaleraEnv the test is skipped: the
// cluster only exists where scripts/cluster/galera.sh started it.
func Galera(t testing.TB) []string {
	t.Helper()
	env := strings.Fields(os.Getenv(GaleraEnv))
	if len(env) < 2 {
		t.Skipf("dbtest: %s is not set (start a cluster with scripts/cluster/galera.sh up)", GaleraEnv)
	}
	admin, err := gorm.Open(gmysql.Open(env[0]), gormConfig())
	if err != nil {
		t.Fatalf("dbtest: galera: %v", err)
	}
	name := uniqueName()
	if err := admin.Exec("CREATE DATABASE " + name).Error; err != nil {
		t.Fatalf("dbtest: create database: %v", err)
	}
	t.Cleanup(func() {
		admin.Exec("DROP DATABASE " + name)
		closeDB(admin)
	})
	out := make([]string, len(env))
	for i, dsn := range env {
		cfg, err := mysql.ParseDSN(dsn)
		if err != nil {
			t.Fatalf("dbtest: galera dsn %d: %v", i, err)
		}
		// DDL is ordered cluster-wide but applied on each node in its
		// turn: wait until this node has the database (a causal read).
		node, err := gorm.Open(gmysql.Open(cfg.FormatDSN()), gormConfig())
		if err != nil {
			t.Fatalf("dbtest: galera node %d: %v", i, err)
		}
		var found []string
		err = node.Raw("SET STATEMENT wsrep_sync_wait=15 FOR SELECT schema_name FROM information_schema.schemata WHERE schema_name = ?", name).Scan(&found).Error
		closeDB(node)
		if err != nil || len(found) != 1 {
			t.Fatalf("dbtest: galera node %d does not have database %s: %v", i, name, err)
		}
		cfg.DBName = name
		out[i] = cfg.FormatDSN()
	}
	return out
}

// PGFailover returns the failover DSN with search_path set to a fresh
// schema, dropped when t ends (on whichever server is primary then).
// Without PGFailoverEnv the test is skipped.
func PGFailover(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv(PGFailoverEnv)
	if dsn == "" {
		t.Skipf("dbtest: %s is not set (start the pair with scripts/cluster/pg.sh up)", PGFailoverEnv)
	}
	admin, err := gorm.Open(postgres.Open(dsn), gormConfig())
	if err != nil {
		t.Fatalf("dbtest: postgres failover: %v", err)
	}
	schema := uniqueName()
	if err := admin.Exec("CREATE SCHEMA " + schema).Error; err != nil {
		t.Fatalf("dbtest: create schema: %v", err)
	}
	t.Cleanup(func() {
		admin.Exec("DROP SCHEMA " + schema + " CASCADE")
		closeDB(admin)
	})
	return withPostgresSearchPath(dsn, schema)
}

// OpenMySQL opens a pool on a MySQL/MariaDB DSN, closed when t ends.
func OpenMySQL(t testing.TB, dsn string) *gorm.DB {
	t.Helper()
	db, err := gorm.Open(gmysql.Open(dsn), gormConfig())
	if err != nil {
		t.Fatalf("dbtest: open mysql: %v", err)
	}
	t.Cleanup(func() { closeDB(db) })
	return db
}

// OpenPostgres opens a pool on a PostgreSQL DSN, closed when t ends.
func OpenPostgres(t testing.TB, dsn string) *gorm.DB {
	t.Helper()
	db, err := gorm.Open(postgres.Open(dsn), gormConfig())
	if err != nil {
		t.Fatalf("dbtest: open postgres: %v", err)
	}
	t.Cleanup(func() { closeDB(db) })
	return db
}

// Cluster runs scripts/cluster/<script> with args and fails t when it
// fails. Tests use it to kill, start and promote nodes.
func Cluster(t testing.TB, script string, args ...string) {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	path := filepath.Join(filepath.Dir(file), "..", "..", "scripts", "cluster", script)
	out, err := exec.Command("bash", append([]string{path}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("dbtest: %s %s: %v\n%s", script, strings.Join(args, " "), err, out)
	}
	t.Logf("%s %s:\n%s", script, strings.Join(args, " "), strings.TrimSpace(string(out)))
}

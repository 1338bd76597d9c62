package location_test

import (
	"os"
	"regexp"
	"strconv"
	"testing"

	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/civicstack/townhall/internal/dbtest"
	"github.com/civicstack/townhall/location"
)

// BenchmarkSweepWorldKept builds BenchmarkFilterSweep's world in the
// PostgreSQL schema TOWNHALL_BENCH_SWEEP_SCHEMA (dropped first, kept after
// the run) for ../internal/pgformcpu, which times filter forms on it; it
// skips without that variable. TOWNHALL_BENCH_SWEEP_RECORDS as for the sweep.
func BenchmarkSweepWorldKept(b *testing.B) {
	schema := os.Getenv("TOWNHALL_BENCH_SWEEP_SCHEMA")
	if schema == "" || dbtest.Name() != "postgres" {
		b.Skip("TOWNHALL_BENCH_SWEEP_SCHEMA and TOWNHALL_TEST_POSTGRES_DSN not set")
	}
	if !regexp.MustCompile(`^[a-z_][a-z0-9_]*$`).MatchString(schema) {
		b.Fatalf("schema %q: lower-case letters, digits and _ only", schema)
	}
	n, _ := strconv.Atoi(os.Getenv("TOWNHALL_BENCH_SWEEP_RECORDS"))
	if n == 0 {
		n = 300_000
	}
	dsn := os.Getenv("TOWNHALL_TEST_POSTGRES_DSN")
	admin, err := gorm.Open(postgres.Open(dsn), &gorm.Config{Logger: logger.Discard})
	if err != nil {
		b.Fatal(err)
	}
	admin.Exec("DROP SCHEMA IF EXISTS " + schema + " CASCADE")
	if err := admin.Exec("CREATE SCHEMA " + schema).Error; err != nil {
		b.Fatal(err)
	}
	db, err := gorm.Open(postgres.Open(dsn+" search_path="+schema), &gorm.Config{Logger: logger.Discard})
	if err != nil {
		b.Fatal(err)
	}
	if err := location.Migrate(db); err != nil {
		b.Fatal(err)
	}
	w := buildSweepWorld(b, db, n)
	for _, c := range w.cases {
		b.Logf("case %s/%s/%d roots=%v exclude=%v count=%d", c.kind, c.carve, c.size, c.roots, c.exclude, w.count(c))
	}
}

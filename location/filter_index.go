package location

import (
	"database/sql"
	"sync"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/civicstack/townhall/internal/dbx"
)

// indexState is what a filter knows about an index on the host's column.
type indexState uint8

const (
	indexUnknown indexState = iota // a dry run, an alias, another database or a failed lookup
	indexed                        // a valid, non-partial index whose first column is the column
	unindexed                      // none
)

// indexFactsTTL is how long a PostgreSQL lookup of the host column's index
// is reused: an index the host creates or drops changes the form of later
// filters within that time.
const indexFactsTTL = time.Minute

// indexFacts caches, per *gorm.DB configuration (connection pool),
// whether host columns are indexed on PostgreSQL. NewStore registers it
// on the store's database as a GORM plugin; a filter run through another
// pool looks the index up for each query.
type indexFacts struct {
	now  func() time.Time
	mu   sync.Mutex
	seen map[string]indexFact
}

type indexFact struct {
	state indexState
	at    time.Time
}

const indexFactsName = "townhall:location-index-facts"

// Name implements gorm.Plugin.
func (*indexFacts) Name() string { return indexFactsName }

// Initialize implements gorm.Plugin.
func (*indexFacts) Initialize(*gorm.DB) error { return nil }

// useIndexFacts registers an indexFacts on db unless one is there.
func useIndexFacts(db *gorm.DB, now func() time.Time) {
	if _, ok := db.Config.Plugins[indexFactsName]; ok {
		return
	}
	// Registered already by a concurrent NewStore: nothing to do.
	_ = db.Use(&indexFacts{now: now, seen: map[string]indexFact{}})
}

// indexQuery tells whether a table (a regclass name, resolved through the
// search path as the host's query resolves it) has a valid, non-partial
// index led by a column: NULL when no such table exists (an alias).
const indexQuery = `SELECT CASE WHEN to_regclass(@t) IS NULL THEN NULL ELSE EXISTS (SELECT 1 FROM pg_catalog.pg_index i` +
	` JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]` +
	` WHERE i.indrelid = to_regclass(@t) AND a.attname = @c AND i.indisvalid AND i.indpred IS NULL) END`

// myIndexQuery is indexQuery for MySQL and MariaDB, in the current
// database: NULL when no such table exists.
// sqIndexQuery is indexQuery on SQLite: NULL for an unknown table, else
// whether one of its full (not partial) indexes starts with the column.
const sqIndexQuery = `SELECT CASE WHEN NOT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = @t COLLATE NOCASE)` +
	` THEN NULL ELSE EXISTS (SELECT 1 FROM pragma_index_list(@t) AS l, pragma_index_info(l.name) AS i` +
	` WHERE l.partial = 0 AND i.seqno = 0 AND i.name = @c COLLATE NOCASE) END`

const myIndexQuery = `SELECT CASE WHEN (SELECT COUNT(*) FROM information_schema.tables` +
	` WHERE table_schema = DATABASE() AND table_name = @t) = 0 THEN NULL ELSE EXISTS (SELECT 1 FROM information_schema.statistics` +
	` WHERE table_schema = DATABASE() AND table_name = @t AND column_name = @c AND seq_in_index = 1) END`

// hostIndex reports whether col of the table db's statement reads is
// indexed, on PostgreSQL, MySQL and MariaDB. The table is col's qualifier or the statement's
// table; an unknown table (an alias, a table expression) is indexUnknown,
// and so is any failure: the answer only steers the form of the
// condition, never what it selects.
func hostIndex(db *gorm.DB, col clause.Column) indexState {
	if db == nil || db.DryRun {
		return indexUnknown
	}
	table := col.Table
	if table == "" && db.Statement != nil {
		if db.Statement.Table == "" && db.Statement.Model != nil {
			// Scopes run before GORM parses the model.
			_ = db.Statement.Parse(db.Statement.Model)
		}
		// For "t AS a" GORM keeps the alias, which to_regclass does not
		// resolve: the index is then unknown.
		table = db.Statement.Table
	}
	name, ok := regclass(table)
	query := indexQuery
	switch dbx.DialectOf(db) {
	case dbx.SQLite:
		query = sqIndexQuery
		if c, valid := dbx.ParseColumn(table); valid && c.Table == "" {
			name, ok = table, true
		} else {
			ok = false // an attached database: not looked up
		}
	case dbx.MySQL:
		query = myIndexQuery
		if c, valid := dbx.ParseColumn(table); valid && c.Table == "" {
			name = table
		} else {
			ok = false // another database: not looked up
		}
	}
	if !ok {
		return indexUnknown
	}
	key := name + "\x00" + col.Name
	facts, _ := db.Config.Plugins[indexFactsName].(*indexFacts)
	if facts != nil {
		facts.mu.Lock()
		f, ok := facts.seen[key]
		facts.mu.Unlock()
		if ok && facts.now().Sub(f.at) < indexFactsTTL {
			return f.state
		}
	}
	var found []*bool
	err := db.Session(&gorm.Session{NewDB: true}).Raw(query, sql.Named("t", name), sql.Named("c", col.Name)).Scan(&found).Error
	if err != nil || len(found) != 1 || found[0] == nil {
		return indexUnknown
	}
	state := unindexed
	if *found[0] {
		state = indexed
	}
	if facts != nil {
		facts.mu.Lock()
		facts.seen[key] = indexFact{state: state, at: facts.now()}
		facts.mu.Unlock()
	}
	return state
}

// regclass returns table ("t" or "schema.t", identifiers only) quoted for
// to_regclass, as PostgreSQL resolves the quoted identifiers GORM writes.
func regclass(table string) (string, bool) {
	c, ok := dbx.ParseColumn(table)
	if !ok {
		return "", false
	}
	if c.Table == "" {
		return `"` + c.Name + `"`, true
	}
	return `"` + c.Table + `"."` + c.Name + `"`, true
}

package policy

import (
	"bytes"
	"context"
	"fmt"
	"slices"

	gormadapter "github.com/casbin/gorm-adapter/v3"
	"gorm.io/gorm"

	"github.com/civicstack/townhall/internal/dbx"
)

// Every function here reads or writes through the *gorm.DB it is given, so
// that a write joins the caller's transaction and fails with it; none uses
// gorm-adapter's own Transaction, RemovePolicies or SavePolicy (the first
// two swallow errors, the last truncates outside its transaction). Lists
// of IDs are cut into chunks of at most chunk values per statement.
const chunk = 500

// Grant is one grouping row: UserID holds Role at Domain (a location ID, or
// PlatformDomain). IDs and the role are plain, without the key prefixes.
type Grant struct {
	UserID, Role, Domain string
}

// row is the casbin_rule row of g.
func (g Grant) row() gormadapter.CasbinRule {
	return gormadapter.CasbinRule{Ptype: "g", V0: UserKey(g.UserID), V1: RoleKey(g.Role), V2: g.Domain}
}

// grantOf reads a row back; ok is false for rows townhall did not write
// (a subject or role without its prefix).
func grantOf(v0, v1, v2 string) (Grant, bool) {
	user, uok := UserFromKey(v0)
	role, rok := RoleFromKey(v1)
	return Grant{UserID: user, Role: role, Domain: v2}, uok && rok
}

// grants returns db scoped to the grouping rows.
func grants(db *gorm.DB) *gorm.DB {
	return db.Model(&gormadapter.CasbinRule{}).Where("ptype = ?", "g")
}

// InsertGrant writes g's row in tx unless it is already there, and reports
// whether it wrote one. Two transactions inserting the same grant at once
// both succeed, whichever commits first: the second waits on the table's
// unique index for the first and then finds the row instead of failing.
// On PostgreSQL and SQLite the insert is ON CONFLICT DO NOTHING (a failed
// statement would abort a PostgreSQL transaction); on MySQL/MariaDB it is
// a plain INSERT whose duplicate-key error (1062) is taken as "already
// there": InnoDB undoes only the statement, and the error, unlike ON
// DUPLICATE KEY UPDATE's affected rows (MariaDB's RETURNING, the
// clientFoundRows DSN option), says exactly whether the row was new.
// Nothing here reads before it writes, so on MySQL/MariaDB (REPEATABLE
// READ) the transaction's later plain reads see the row the other one
// committed.
func InsertGrant(tx *gorm.DB, g Grant) (bool, error) {
	r := g.row()
	q := "INSERT INTO " + Table + " (ptype, v0, v1, v2, v3, v4, v5) VALUES (?, ?, ?, ?, ?, ?, ?)"
	mysql := dbx.DialectOf(tx) == dbx.MySQL
	if !mysql {
		q += " ON CONFLICT DO NOTHING"
	}
	res := tx.Exec(q, r.Ptype, r.V0, r.V1, r.V2, r.V3, r.V4, r.V5)
	switch {
	case mysql && dbx.IsUniqueViolation(res.Error):
		return false, nil
	case res.Error != nil:
		return false, fmt.Errorf("write grant: %w", res.Error)
	}
	return res.RowsAffected > 0, nil
}

// DeleteGrant deletes g's row in tx and reports whether there was one.
func DeleteGrant(tx *gorm.DB, g Grant) (bool, error) {
	row := g.row()
	res := tx.Where("ptype = ? AND v0 = ? AND v1 = ? AND v2 = ?", row.Ptype, row.V0, row.V1, row.V2).
		Delete(&gormadapter.CasbinRule{})
	if res.Error != nil {
		return false, fmt.Errorf("delete grant: %w", res.Error)
	}
	return res.RowsAffected > 0, nil
}

// DeleteUserGrants deletes every grant of userID in tx.
func DeleteUserGrants(tx *gorm.DB, userID string) error {
	if err := tx.Where("ptype = ? AND v0 = ?", "g", UserKey(userID)).Delete(&gormadapter.CasbinRule{}).Error; err != nil {
		return fmt.Errorf("delete grants: %w", err)
	}
	return nil
}

// DeleteGrantsAt deletes every grant at one of domains in tx.
func DeleteGrantsAt(tx *gorm.DB, domains []string) error {
	for part := range slices.Chunk(domains, chunk) {
		if err := tx.Where("ptype = ? AND v2 IN ?", "g", part).Delete(&gormadapter.CasbinRule{}).Error; err != nil {
			return fmt.Errorf("end grants: %w", err)
		}
	}
	return nil
}

// Holders selects the users HoldersAt reports.
type Holders struct {
	// Domains are the domains a grant must be at.
	Domains []string
	// Among, when not nil, are the only users considered.
	Among []string
	// Shared makes the read a locking one (FOR SHARE, LOCK IN SHARE MODE):
	// inside a write it sees the latest committed rows and keeps them
	// until the transaction ends.
	Shared bool
}

// HoldersAt returns the distinct users (IDs, unordered) holding a grant at
// one of h.Domains, read through db.
func HoldersAt(db *gorm.DB, h Holders) ([]string, error) {
	if len(h.Domains) == 0 || h.Among != nil && len(h.Among) == 0 {
		return nil, nil
	}
	seen := map[string]bool{}
	var out []string
	read := func(domains, among []string) error {
		q := "SELECT DISTINCT v0 FROM " + Table + " WHERE ptype = ? AND v2 IN ?"
		if h.Shared {
			q = "SELECT v0 FROM " + Table + " WHERE ptype = ? AND v2 IN ?" // PostgreSQL refuses DISTINCT with FOR SHARE
		}
		args := []any{"g", domains}
		if among != nil {
			keys := make([]string, len(among))
			for i, id := range among {
				keys[i] = UserKey(id)
			}
			q += " AND v0 IN ?"
			args = append(args, keys)
		}
		if h.Shared {
			q += dbx.SharedLock(db)
		}
		var subjects []string
		if err := db.Raw(q, args...).Scan(&subjects).Error; err != nil {
			return fmt.Errorf("read grants: %w", err)
		}
		for _, s := range subjects {
			if id, ok := UserFromKey(s); ok && !seen[id] {
				seen[id] = true
				out = append(out, id)
			}
		}
		return nil
	}
	for domains := range slices.Chunk(h.Domains, chunk) {
		if h.Among == nil {
			if err := read(domains, nil); err != nil {
				return nil, err
			}
			continue
		}
		for among := range slices.Chunk(h.Among, chunk) {
			if err := read(domains, among); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// GrantsOf returns userID's grants ordered by domain, then role.
func GrantsOf(ctx context.Context, db *gorm.DB, userID string) ([]Grant, error) {
	return find(grants(db.WithContext(ctx)).Where("v0 = ?", UserKey(userID)).Order("v2, v1"))
}

// AllGrants returns every grant ordered by user, domain, then role.
func AllGrants(ctx context.Context, db *gorm.DB) ([]Grant, error) {
	return find(grants(db.WithContext(ctx)).Order("v0, v2, v1"))
}

func find(q *gorm.DB) ([]Grant, error) {
	var rows []struct{ V0, V1, V2 string }
	if err := q.Select("v0, v1, v2").Scan(&rows).Error; err != nil {
		return nil, fmt.Errorf("read grants: %w", err)
	}
	out := make([]Grant, 0, len(rows))
	for _, r := range rows {
		if g, ok := grantOf(r.V0, r.V1, r.V2); ok {
			out = append(out, g)
		}
	}
	return out, nil
}

var (
	userPrefixBytes = []byte(userPrefix)
	rolePrefixBytes = []byte(rolePrefix)
)

// ScanGrants streams the grants (all, or userID's when it is not empty)
// for the snapshot loader, through dbx.ScanRaw: fn gets the user ID, role
// and domain as raw bytes, valid during the call only, so that a million
// rows cost no allocation each. Rows townhall did not write are skipped.
func ScanGrants(ctx context.Context, db *gorm.DB, userID string, fn func(user, role, domain []byte) error) error {
	query := "SELECT " + dbx.RawColumns(db, "v0", "v1", "v2") + " FROM " + Table + " WHERE ptype = 'g'"
	var args []any
	if userID != "" {
		if dbx.DialectOf(db) == dbx.Postgres {
			query += " AND v0 = $1"
		} else {
			query += " AND v0 = ?"
		}
		args = []any{UserKey(userID)}
	}
	return dbx.ScanRaw(ctx, db, query, args, func(c [][]byte) error {
		user, uok := bytes.CutPrefix(c[0], userPrefixBytes)
		role, rok := bytes.CutPrefix(c[1], rolePrefixBytes)
		if !uok || !rok {
			return nil
		}
		return fn(user, role, c[2])
	})
}

// Permission is one policy row: Role (plain, without its prefix) may do
// Action in Module at Domain.
type Permission struct {
	Role, Domain, Module, Action string
}

// SyncPermissions makes the stored policy rows exactly want in tx (rows
// with extra columns or repeated ones are stale too), and reports how many
// it added and removed.
func SyncPermissions(tx *gorm.DB, want []Permission) (added, removed int, err error) {
	var have []gormadapter.CasbinRule
	if err := tx.Where("ptype = ?", "p").Find(&have).Error; err != nil {
		return 0, 0, fmt.Errorf("read policy rows: %w", err)
	}
	wanted := map[Permission]bool{}
	for _, p := range want {
		wanted[p.keyed()] = true
	}
	var stale []uint
	present := map[Permission]bool{}
	for _, r := range have {
		k := Permission{Role: r.V0, Domain: r.V1, Module: r.V2, Action: r.V3}
		if !wanted[k] || r.V4 != "" || r.V5 != "" || present[k] {
			stale = append(stale, r.ID)
			continue
		}
		present[k] = true
	}
	var add []gormadapter.CasbinRule
	for _, p := range want {
		k := p.keyed()
		if !present[k] {
			present[k] = true
			add = append(add, gormadapter.CasbinRule{Ptype: "p", V0: k.Role, V1: k.Domain, V2: k.Module, V3: k.Action})
		}
	}
	for part := range slices.Chunk(stale, chunk) {
		if err := tx.Where("id IN ?", part).Delete(&gormadapter.CasbinRule{}).Error; err != nil {
			return 0, 0, fmt.Errorf("delete stale policy rows: %w", err)
		}
	}
	if len(add) > 0 {
		if err := tx.CreateInBatches(add, chunk).Error; err != nil {
			return 0, 0, fmt.Errorf("write policy rows: %w", err)
		}
	}
	return len(add), len(stale), nil
}

// keyed returns p with its role written as in rows (RoleKey).
func (p Permission) keyed() Permission {
	p.Role = RoleKey(p.Role)
	return p
}

// BulkRows returns gs as a table, its columns and one row of values per
// grant, for the bulk loaders of benchmarks and tests that write many
// grants with multi-row INSERTs of their own.
func BulkRows(gs []Grant) (table string, columns []string, rows [][]any) {
	rows = make([][]any, len(gs))
	for i, g := range gs {
		r := g.row()
		rows[i] = []any{r.Ptype, r.V0, r.V1, r.V2, r.V3, r.V4, r.V5}
	}
	return Table, []string{"ptype", "v0", "v1", "v2", "v3", "v4", "v5"}, rows
}

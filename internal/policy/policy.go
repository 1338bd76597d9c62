// Package policy owns the Casbin rows townhall keeps in gorm-adapter's
// casbin_rule table: their schema, indexes and the naming of subjects,
// roles and domains inside them.
//
// Grants are grouping rows  g, user:<id>, role:<name>, <locationID|*>
// and role permissions are policy rows  p, role:<name>, <domain>, <module>, <action>.
// Users and roles live in separate namespaces, so no user ID can be taken
// for a role.
package policy

import (
	"fmt"
	"strings"

	"github.com/casbin/casbin/v2/persist"
	gormadapter "github.com/casbin/gorm-adapter/v3"
	"gorm.io/gorm"

	"github.com/civicstack/townhall/internal/dbx"
)

// gorm-adapter v3.40.0 and later are built on casbin/v3; this assertion
// keeps the pinned v3.39.0 honest against casbin/v2's adapter interface.
var _ persist.Adapter = (*gormadapter.Adapter)(nil)

// Table is gorm-adapter's default table name.
const Table = "casbin_rule"

// PlatformDomain is the domain of platform-wide grants.
const PlatformDomain = "*"

const (
	userPrefix = "user:"
	rolePrefix = "role:"
)

// UserKey is the subject of a grant row for a user ID.
func UserKey(id string) string { return userPrefix + id }

// RoleKey is the role name as written in rows.
func RoleKey(role string) string { return rolePrefix + role }

// UserFromKey returns the user ID of a subject key.
func UserFromKey(key string) (string, bool) { return strings.CutPrefix(key, userPrefix) }

// RoleFromKey returns the role name of a role key.
func RoleFromKey(key string) (string, bool) { return strings.CutPrefix(key, rolePrefix) }

// Migrate creates casbin_rule with gorm-adapter's schema and unique index,
// plus an index on the domain column that gorm-adapter lacks. Callers hold
// the migration lock (gorm-adapter's own creation races on concurrent start,
// so townhall turns it off and does it here).
func Migrate(tx *gorm.DB) error {
	if err := dbx.TableOptions(tx).AutoMigrate(&gormadapter.CasbinRule{}); err != nil {
		return fmt.Errorf("migrate %s: %w", Table, err)
	}
	m := tx.Migrator()
	for name, cols := range map[string]string{
		"idx_casbin_rule":        "ptype,v0,v1,v2,v3,v4,v5",
		"idx_casbin_rule_domain": "ptype,v2",
	} {
		if m.HasIndex(&gormadapter.CasbinRule{}, name) {
			continue
		}
		unique := ""
		if name == "idx_casbin_rule" {
			unique = "UNIQUE "
		}
		if err := tx.Exec(fmt.Sprintf("CREATE %sINDEX %s ON %s (%s)", unique, name, Table, cols)).Error; err != nil {
			return fmt.Errorf("migrate %s index %s: %w", Table, name, err)
		}
	}
	return nil
}

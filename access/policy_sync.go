package access

import (
	"context"
	"fmt"
	"log/slog"
	"slices"

	gormadapter "github.com/casbin/gorm-adapter/v3"
	"gorm.io/gorm"

	"github.com/civicstack/townhall/audit"
	"github.com/civicstack/townhall/internal/dbx"
	"github.com/civicstack/townhall/internal/policy"
)

// insertChunk bounds rows per INSERT: SQLite refuses statements with more
// than ~32k bound variables (7 per row).
const insertChunk = 500

// policyRows compiles the registry into Casbin policy rows
// p, role:<name>, *, <module>, <action>: one per action a role allows,
// implicit rules and inheritance expanded, so any Casbin tool reading
// casbin_rule sees the same permissions. Pseudo-roles public and
// authenticated are written too, as role:public and role:authenticated.
func policyRows(reg *compiled) [][]string {
	var out [][]string
	for _, r := range reg.roles {
		for i, a := range reg.actions {
			if r.perms.has(i) {
				out = append(out, []string{policy.RoleKey(r.name), policy.PlatformDomain, a.module, a.action})
			}
		}
	}
	for _, a := range reg.actions {
		if a.public {
			out = append(out, []string{policy.RoleKey(RolePublic), policy.PlatformDomain, a.module, a.action})
		}
		if a.authenticated {
			out = append(out, []string{policy.RoleKey(RoleAuthenticated), policy.PlatformDomain, a.module, a.action})
		}
	}
	return out
}

// syncPolicy rewrites the stored p rows when they differ from the running
// registry, in one transaction with a registry_changed audit event. It holds
// the migration lock, so processes starting together do not race.
func syncPolicy(ctx context.Context, db *gorm.DB, log *audit.Log, reg *compiled, logger *slog.Logger) error {
	want := policyRows(reg)
	key := func(r []string) string { return r[0] + "\x00" + r[1] + "\x00" + r[2] + "\x00" + r[3] }
	var added, removed int
	err := dbx.Migrate(ctx, db, func(conn *gorm.DB) error {
		return dbx.Tx(ctx, conn, func(tx *gorm.DB) error {
			var err error
			added, removed, err = writePolicy(ctx, tx, log, want, key)
			return err
		})
	})
	if err == nil && added+removed > 0 {
		logger.LogAttrs(ctx, slog.LevelInfo, "townhall: registry policy rows rewritten",
			slog.Int("added", added), slog.Int("removed", removed), slog.Int("rules", len(want)))
	}
	return err
}

// writePolicy makes the p rows those of want, and reports how many it
// added and removed.
func writePolicy(ctx context.Context, tx *gorm.DB, log *audit.Log, want [][]string, key func([]string) string) (added, removed int, err error) {
	var have []gormadapter.CasbinRule
	if err := tx.Where("ptype = ?", "p").Find(&have).Error; err != nil {
		return 0, 0, fmt.Errorf("read policy rows: %w", err)
	}
	wanted := map[string]bool{}
	for _, r := range want {
		wanted[key(r)] = true
	}
	var stale []uint
	present := map[string]bool{}
	for _, r := range have {
		k := key([]string{r.V0, r.V1, r.V2, r.V3})
		if !wanted[k] || r.V4 != "" || r.V5 != "" || present[k] {
			stale = append(stale, r.ID)
			continue
		}
		present[k] = true
	}
	var add []gormadapter.CasbinRule
	for _, r := range want {
		if !present[key(r)] {
			add = append(add, gormadapter.CasbinRule{Ptype: "p", V0: r[0], V1: r[1], V2: r[2], V3: r[3]})
		}
	}
	if len(stale) == 0 && len(add) == 0 {
		return 0, 0, nil
	}
	for chunk := range slices.Chunk(stale, insertChunk) {
		if err := tx.Where("id IN ?", chunk).Delete(&gormadapter.CasbinRule{}).Error; err != nil {
			return 0, 0, fmt.Errorf("delete stale policy rows: %w", err)
		}
	}
	if len(add) > 0 {
		if err := tx.CreateInBatches(add, insertChunk).Error; err != nil {
			return 0, 0, fmt.Errorf("write policy rows: %w", err)
		}
	}
	return len(add), len(stale), log.RecordTx(ctx, tx, audit.Event{
		Type:    audit.TypeRegistryChanged,
		Details: map[string]any{"added": len(add), "removed": len(stale), "rules": len(want)},
	})
}

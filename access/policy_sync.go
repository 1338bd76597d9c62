package access

import (
	"context"
	"log/slog"

	"gorm.io/gorm"

	"github.com/civicstack/townhall/audit"
	"github.com/civicstack/townhall/internal/dbx"
	"github.com/civicstack/townhall/internal/policy"
	"github.com/civicstack/townhall/internal/snapshot"
)

// insertChunk bounds rows per INSERT: SQLite refuses statements with more
// than ~32k bound variables (7 per row).
const insertChunk = 500

// policyRows compiles the registry into Casbin policy rows
// p, role:<name>, *, <module>, <action>: one per action a role allows,
// implicit rules and inheritance expanded, so any Casbin tool reading
// casbin_rule sees the same permissions. Pseudo-roles public and
// authenticated are written too, as role:public and role:authenticated.
func policyRows(reg *snapshot.Compiled) []policy.Permission {
	var out []policy.Permission
	row := func(role string, a snapshot.ActionInfo) policy.Permission {
		return policy.Permission{Role: role, Domain: policy.PlatformDomain, Module: a.Module, Action: a.Action}
	}
	for _, r := range reg.Roles {
		for i, a := range reg.Actions {
			if r.Perms.Has(i) {
				out = append(out, row(r.Name, a))
			}
		}
	}
	for _, a := range reg.Actions {
		if a.Public {
			out = append(out, row(RolePublic, a))
		}
		if a.Authenticated {
			out = append(out, row(RoleAuthenticated, a))
		}
	}
	return out
}

// syncPolicy rewrites the stored p rows when they differ from the running
// registry, in one transaction with a registry_changed audit event. It holds
// the migration lock, so processes starting together do not race.
func syncPolicy(ctx context.Context, db *gorm.DB, log *audit.Log, reg *snapshot.Compiled, logger *slog.Logger) error {
	want := policyRows(reg)
	var added, removed int
	err := dbx.Migrate(ctx, db, func(conn *gorm.DB) error {
		return dbx.Tx(ctx, conn, func(tx *gorm.DB) error {
			var err error
			added, removed, err = writePolicy(ctx, tx, log, want)
			return err
		})
	})
	if err == nil && added+removed > 0 {
		logger.LogAttrs(ctx, slog.LevelInfo, "townhall: registry policy rows rewritten",
			slog.Int("added", added), slog.Int("removed", removed), slog.Int("rules", len(want)))
	}
	return err
}

// writePolicy makes the p rows those of want (policy.SyncPermissions),
// recording a registry_changed event when that changed anything, and
// reports how many rows it added and removed.
func writePolicy(ctx context.Context, tx *gorm.DB, log *audit.Log, want []policy.Permission) (added, removed int, err error) {
	added, removed, err = policy.SyncPermissions(tx, want)
	if err != nil || added+removed == 0 {
		return 0, 0, err
	}
	return added, removed, log.RecordTx(ctx, tx, audit.Event{
		Type:    audit.TypeRegistryChanged,
		Details: map[string]any{"added": added, "removed": removed, "rules": len(want)},
	})
}

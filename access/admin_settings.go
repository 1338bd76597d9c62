package access

import (
	"context"
	"fmt"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/civicstack/townhall/audit"
	"github.com/civicstack/townhall/internal/dbx"
	"github.com/civicstack/townhall/internal/snapshot"
	"github.com/civicstack/townhall/location"
)

// SetModuleEnabled enables or disables a non-platform module in a
// municipality. The actor needs modules:configure covering the
// municipality (by default: super admins and platform_admin). Nobody gains
// a permission by it: permissions are judged as if every module were
// enabled.
func (a *Admin) SetModuleEnabled(ctx context.Context, actor Subject, municipalityID, module string, enabled bool) error {
	g := &guarded{
		ch: change{typ: audit.TypeModuleEnabled, location: municipalityID, details: map[string]any{"module": module, "value": enabled}},
		write: func(tx *gorm.DB) ([]string, error) {
			return nil, upsert(tx, &snapshot.ModuleSettingRow{MunicipalityID: municipalityID, Module: module, Enabled: enabled, UpdatedAt: a.now().UTC()})
		},
	}
	err := a.guard(ctx, actor, g, func(snap *snapshot.Snapshot) error {
		if _, ok := snap.Reg.ActionIx[module]; !ok {
			return fmt.Errorf("%w %q", ErrUnknownModule, truncateID(module))
		}
		if IsPlatformModule(module) {
			return fmt.Errorf("%w: platform module %q cannot be disabled", ErrInvalidInput, module)
		}
		return checkMunicipality(snap, municipalityID)
	}, func(snap *snapshot.Snapshot, st actorState) error {
		return mayPerform(snap, st, ModuleModules, "configure", municipalityID)
	})
	if err != nil {
		return err
	}
	return a.c.refresh(ctx, snapshot.Parts{Municipalities: []string{municipalityID}})
}

// SetApprovalRequired sets whether new profiles at or below a municipality
// start unapproved (the default). The actor needs users:manage covering the
// municipality. The setting changes no existing profile; a profile created
// later without approval is judged when it is created (AddMember).
func (a *Admin) SetApprovalRequired(ctx context.Context, actor Subject, municipalityID string, required bool) error {
	g := &guarded{
		ch: change{typ: audit.TypeApprovalRequired, location: municipalityID, details: map[string]any{"value": required}},
		write: func(tx *gorm.DB) ([]string, error) {
			return nil, upsert(tx, &snapshot.MunicipalitySettingRow{MunicipalityID: municipalityID, ApprovalRequired: required, UpdatedAt: a.now().UTC()})
		},
	}
	err := a.guard(ctx, actor, g, func(snap *snapshot.Snapshot) error {
		return checkMunicipality(snap, municipalityID)
	}, func(snap *snapshot.Snapshot, st actorState) error {
		if !st.privileged() && !mayManage(snap, st.user, municipalityID) {
			return fmt.Errorf("%w: no users:manage covering %q", ErrForbidden, municipalityID)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return a.c.refresh(ctx, snapshot.Parts{Municipalities: []string{municipalityID}})
}

func checkMunicipality(snap *snapshot.Snapshot, id string) error {
	if !dbx.ValidID(id) {
		return fmt.Errorf("%w: municipality %q", ErrInvalidInput, truncateID(id))
	}
	loc, ok := snap.Tree.Get(id)
	if !ok {
		return fmt.Errorf("%w: %q", location.ErrNotFound, id)
	}
	if loc.Level != location.Municipality {
		return fmt.Errorf("%w: %q is a %s, not a municipality", ErrInvalidInput, id, loc.Level)
	}
	return nil
}

// upsert writes a settings row keyed by its primary key.
func upsert(tx *gorm.DB, row any) error {
	if err := tx.Clauses(clause.OnConflict{UpdateAll: true}).Create(row).Error; err != nil {
		return fmt.Errorf("write setting: %w", err)
	}
	return nil
}

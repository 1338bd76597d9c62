package access

import (
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/civicstack/townhall/internal/dbx"
)

// Table names of the access package.
const (
	ModuleSettingsTable       = "townhall_module_settings"
	MunicipalitySettingsTable = "townhall_municipality_settings"
)

// moduleSettingRow records a module disabled (or re-enabled) in a
// municipality. A missing row means enabled.
type moduleSettingRow struct {
	MunicipalityID string    `gorm:"primaryKey;size:64"`
	Module         string    `gorm:"primaryKey;size:64"`
	Enabled        bool      `gorm:"not null"`
	UpdatedAt      time.Time `gorm:"precision:6;not null"`
}

func (moduleSettingRow) TableName() string { return ModuleSettingsTable }

// municipalitySettingRow records whether a municipality requires approval
// of new profiles. A missing row means required.
type municipalitySettingRow struct {
	MunicipalityID   string    `gorm:"primaryKey;size:64"`
	ApprovalRequired bool      `gorm:"not null"`
	UpdatedAt        time.Time `gorm:"precision:6;not null"`
}

func (municipalitySettingRow) TableName() string { return MunicipalitySettingsTable }

// Migrate creates or updates the access package's tables. townhall.Open
// calls it under the migration lock; it is idempotent.
func Migrate(tx *gorm.DB) error {
	if err := dbx.TableOptions(tx).AutoMigrate(&moduleSettingRow{}, &municipalitySettingRow{}, &sessionRow{}); err != nil {
		return fmt.Errorf("migrate access: %w", err)
	}
	return nil
}

package snapshot

import (
	"time"
)

// Table names of the access package.
const (
	ModuleSettingsTable       = "townhall_module_settings"
	MunicipalitySettingsTable = "townhall_municipality_settings"
)

// ModuleSettingRow records a module disabled (or re-enabled) in a
// municipality. A missing row means enabled.
type ModuleSettingRow struct {
	MunicipalityID string    `gorm:"primaryKey;size:64"`
	Module         string    `gorm:"primaryKey;size:64"`
	Enabled        bool      `gorm:"not null"`
	UpdatedAt      time.Time `gorm:"precision:6;not null"`
}

// TableName is ModuleSettingsTable.
func (ModuleSettingRow) TableName() string { return ModuleSettingsTable }

// MunicipalitySettingRow records whether a municipality requires approval
// of new profiles. A missing row means required.
type MunicipalitySettingRow struct {
	MunicipalityID   string    `gorm:"primaryKey;size:64"`
	ApprovalRequired bool      `gorm:"not null"`
	UpdatedAt        time.Time `gorm:"precision:6;not null"`
}

// TableName is MunicipalitySettingsTable.
func (MunicipalitySettingRow) TableName() string { return MunicipalitySettingsTable }

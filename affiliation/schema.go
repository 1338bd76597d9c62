package affiliation

import (
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/civicstack/townhall/internal/dbx"
)

// Table names, for hosts and packages that read the rows directly (the
// access snapshot).
const (
	// OrganisationsTable holds one row per organisation ever created;
	// deleted rows stay (deleted_at set), so IDs are never reused.
	OrganisationsTable = "townhall_organisations"
	// LinksTable holds one row per affiliation link ever made; ended links
	// stay (deleted_at set) as history.
	LinksTable = "townhall_affiliation_links"
)

// organisationRow is an organisation as stored. Services is the JSON array
// of its module names, sorted and without duplicates.
type organisationRow struct {
	ID         string     `gorm:"column:id;primaryKey;size:64"`
	Name       string     `gorm:"column:name;size:200;not null"`
	Kind       string     `gorm:"column:kind;size:64;not null"`
	LocationID string     `gorm:"column:location_id;size:64;not null;index:idx_townhall_organisations_location"`
	Services   string     `gorm:"column:services;type:text;not null"`
	CreatedAt  time.Time  `gorm:"column:created_at;precision:6;not null;autoCreateTime:false"`
	UpdatedAt  time.Time  `gorm:"column:updated_at;precision:6;not null;autoUpdateTime:false"`
	DeletedAt  *time.Time `gorm:"column:deleted_at;precision:6;index:idx_townhall_organisations_deleted_at"`
}

// TableName implements gorm's tabler.
func (organisationRow) TableName() string { return OrganisationsTable }

// linkRow is an affiliation link as stored. ValidFrom and ValidTo are the
// window [from, to); NULL means open on that side. Several non-deleted
// links of one user to one organisation may exist, with disjoint windows
// (the store refuses overlaps).
type linkRow struct {
	ID             string     `gorm:"column:id;primaryKey;size:64"`
	UserID         string     `gorm:"column:user_id;size:64;not null;index:idx_townhall_affiliation_links_user,priority:1"`
	OrganisationID string     `gorm:"column:organisation_id;size:64;not null;index:idx_townhall_affiliation_links_user,priority:2;index:idx_townhall_affiliation_links_org"`
	ValidFrom      *time.Time `gorm:"column:valid_from;precision:6"`
	ValidTo        *time.Time `gorm:"column:valid_to;precision:6"`
	CreatedAt      time.Time  `gorm:"column:created_at;precision:6;not null;autoCreateTime:false"`
	UpdatedAt      time.Time  `gorm:"column:updated_at;precision:6;not null;autoUpdateTime:false"`
	DeletedAt      *time.Time `gorm:"column:deleted_at;precision:6"`
}

// TableName implements gorm's tabler.
func (linkRow) TableName() string { return LinksTable }

// Migrate creates or updates the organisation and link tables. It is
// idempotent; callers hold townhall's migration lock (dbx.Migrate).
func Migrate(tx *gorm.DB) error {
	if tx == nil {
		return fmt.Errorf("affiliation: migrate: %w: nil database", ErrInvalidInput)
	}
	if err := dbx.TableOptions(tx).AutoMigrate(&organisationRow{}, &linkRow{}); err != nil {
		return fmt.Errorf("affiliation: migrate: %w", err)
	}
	return nil
}

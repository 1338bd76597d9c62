package location

import (
	"fmt"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/civicstack/townhall/internal/dbx"
)

// Table names.
const (
	// LocationsTable holds one row per location ever created; deleted rows
	// stay (with deleted_at set) so that their IDs are never reused.
	LocationsTable = "townhall_locations"
	// PathsTable is the closure table: one row (ancestor_id, descendant_id,
	// depth) per live location and each of its ancestors-or-self, depth
	// being the distance (0 for the location itself). Deleted locations
	// have no rows, so "descendant_id IN (SELECT descendant_id FROM
	// townhall_location_paths WHERE ancestor_id = ?)" selects exactly the
	// live subtree of a location, itself included.
	PathsTable = "townhall_location_paths"
	treeTable  = "townhall_location_tree"
)

// locationRow is the stored form of a Location. Depth is the number of
// ancestors (0 for a top-level location).
type locationRow struct {
	ID        string     `gorm:"column:id;primaryKey;size:64"`
	Name      string     `gorm:"column:name;size:255;not null"`
	Level     string     `gorm:"column:level;size:64;not null"`
	ParentID  *string    `gorm:"column:parent_id;size:64;index:idx_townhall_locations_parent"`
	Depth     int        `gorm:"column:depth;not null"`
	CreatedAt time.Time  `gorm:"column:created_at;precision:6;not null;autoCreateTime:false"`
	UpdatedAt time.Time  `gorm:"column:updated_at;precision:6;not null;autoUpdateTime:false"`
	DeletedAt *time.Time `gorm:"column:deleted_at;precision:6"`
}

// TableName implements gorm's tabler.
func (locationRow) TableName() string { return LocationsTable }

func (r *locationRow) location() Location {
	l := Location{ID: r.ID, Name: r.Name, Level: r.Level}
	if r.ParentID != nil {
		l.ParentID = *r.ParentID
	}
	return l
}

// pathRow is one row of the closure table. The primary key serves
// "descendants of A" (ancestor_id prefix); the second index serves
// "ancestors of D".
type pathRow struct {
	AncestorID   string `gorm:"column:ancestor_id;primaryKey;size:64"`
	DescendantID string `gorm:"column:descendant_id;primaryKey;size:64;index:idx_townhall_location_paths_descendant"`
	Depth        int    `gorm:"column:depth;not null"`
}

// TableName implements gorm's tabler.
func (pathRow) TableName() string { return PathsTable }

// treeRow is the single row (ID 1) every tree write locks first, so tree
// writes are serialised across connections and processes: two concurrent
// moves can never build a cycle, and a create never lands under a parent
// that a concurrent delete removes. Version counts tree writes.
type treeRow struct {
	ID      int   `gorm:"column:id;primaryKey;autoIncrement:false"`
	Version int64 `gorm:"column:version;not null"`
}

// TableName implements gorm's tabler.
func (treeRow) TableName() string { return treeTable }

const treeRowID = 1

// Migrate creates or updates the location tables and the tree lock row. It
// is idempotent; callers hold townhall's migration lock (dbx.Migrate).
func Migrate(tx *gorm.DB) error {
	if tx == nil {
		return fmt.Errorf("location: migrate: nil database: %w", ErrInvalidInput)
	}
	// A fresh statement on the same connection or transaction: a handle
	// that was used for other statements may carry their model and clauses.
	tx = tx.Session(&gorm.Session{NewDB: true})
	if err := dbx.TableOptions(tx).AutoMigrate(&locationRow{}, &pathRow{}, &treeRow{}); err != nil {
		return fmt.Errorf("location: migrate: %w", err)
	}
	err := tx.Clauses(clause.OnConflict{DoNothing: true}).Create(&treeRow{ID: treeRowID}).Error
	if err != nil && !dbx.IsUniqueViolation(err) {
		return fmt.Errorf("location: migrate: tree row: %w", err)
	}
	return nil
}

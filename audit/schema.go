package audit

import (
	"fmt"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/civicstack/townhall/internal/dbx"
)

// Column limits of an Event, in bytes. Longer values are rejected with
// ErrInvalidInput.
const (
	// MaxIDLen bounds ActorID, ImpersonatorID, UserID and LocationID.
	MaxIDLen = dbx.MaxIDLen
	// MaxNameLen bounds Type, Module and Action.
	MaxNameLen = 128
	// MaxReasonLen bounds Reason.
	MaxReasonLen = 1024
	// MaxDetailsLen bounds the canonical JSON encoding of Details (the size
	// of a MySQL TEXT column).
	MaxDetailsLen = 65535
)

// record is the stored form of an Event. Seq is assigned by the log from the
// head row (last_seq + 1), not by the database, so that it is known before
// the insert and covered by the hash. The filter indexes are composite with
// seq, so a filtered page ordered by seq is one index range scan.
type record struct {
	Seq            int64     `gorm:"column:seq;primaryKey;autoIncrement:false;index:idx_townhall_audit_type,priority:2;index:idx_townhall_audit_actor,priority:2;index:idx_townhall_audit_user,priority:2;index:idx_townhall_audit_location,priority:2"`
	At             time.Time `gorm:"column:at;precision:6;not null;index:idx_townhall_audit_at"`
	Type           string    `gorm:"column:type;size:128;not null;index:idx_townhall_audit_type,priority:1"`
	ActorID        string    `gorm:"column:actor_id;size:64;not null;index:idx_townhall_audit_actor,priority:1"`
	ImpersonatorID string    `gorm:"column:impersonator_id;size:64;not null"`
	UserID         string    `gorm:"column:user_id;size:64;not null;index:idx_townhall_audit_user,priority:1"`
	LocationID     string    `gorm:"column:location_id;size:64;not null;index:idx_townhall_audit_location,priority:1"`
	Module         string    `gorm:"column:module;size:128;not null"`
	Action         string    `gorm:"column:action;size:128;not null"`
	Reason         string    `gorm:"column:reason;size:1024;not null"`
	Allowed        *bool     `gorm:"column:allowed"`
	Details        string    `gorm:"column:details;type:text;not null"`
	PrevHash       string    `gorm:"column:prev_hash;size:64;not null"`
	Hash           string    `gorm:"column:hash;size:64;not null"`
}

// TableName implements gorm's tabler.
func (record) TableName() string { return "townhall_audit_events" }

// head is the single row (ID 1) that serialises appends: every append locks
// it first, reads the last committed event, and moves it forward in the same
// transaction.
type head struct {
	ID       int    `gorm:"column:id;primaryKey;autoIncrement:false"`
	LastSeq  int64  `gorm:"column:last_seq;not null"`
	LastHash string `gorm:"column:last_hash;size:64;not null"`
}

// TableName implements gorm's tabler.
func (head) TableName() string { return "townhall_audit_head" }

const headID = 1

// Migrate creates or updates the audit tables and the head row. It is
// idempotent and safe when several processes migrate at once.
func Migrate(tx *gorm.DB) error {
	if tx == nil {
		return fmt.Errorf("audit: migrate: nil database: %w", ErrInvalidInput)
	}
	// A fresh statement on the same connection: tx may be a connection whose
	// statement earlier calls have filled (gorm's DB.Connection reuses it).
	tx = tx.Session(&gorm.Session{NewDB: true})
	if err := dbx.TableOptions(tx).AutoMigrate(&record{}, &head{}); err != nil {
		return fmt.Errorf("audit: migrate: %w", err)
	}
	err := tx.Clauses(clause.OnConflict{DoNothing: true}).Create(&head{ID: headID}).Error
	if err != nil && !dbx.IsUniqueViolation(err) {
		return fmt.Errorf("audit: migrate: head row: %w", err)
	}
	return nil
}

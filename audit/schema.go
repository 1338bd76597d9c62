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
	// KeyID and MAC are empty for an unkeyed event; otherwise MAC is the
	// hex HMAC-SHA256 of Hash under the key KeyID names (see key.go).
	KeyID string `gorm:"column:key_id;size:64;not null;default:''"`
	MAC   string `gorm:"column:mac;size:64;not null;default:''"`
}

// TableName implements gorm's tabler.
func (record) TableName() string { return "townhall_audit_events" }

// head is the single row (ID 1) that serialises appends: every append locks
// it first, reads the last committed event, and moves it forward in the same
// transaction. LogID names the log in its checkpoints. The anchor is the
// last event removed by Prune (zero before any): the remaining chain starts
// from it.
type head struct {
	ID          int    `gorm:"column:id;primaryKey;autoIncrement:false"`
	LastSeq     int64  `gorm:"column:last_seq;not null"`
	LastHash    string `gorm:"column:last_hash;size:64;not null"`
	LogID       string `gorm:"column:log_id;size:64;not null;default:''"`
	AnchorSeq   int64  `gorm:"column:anchor_seq;not null;default:0"`
	AnchorHash  string `gorm:"column:anchor_hash;size:64;not null;default:''"`
	AnchorKeyID string `gorm:"column:anchor_key_id;size:64;not null;default:''"`
	AnchorMAC   string `gorm:"column:anchor_mac;size:64;not null;default:''"`
}

// TableName implements gorm's tabler.
func (head) TableName() string { return "townhall_audit_head" }

const headID = 1

// storedCheckpoint is a signed checkpoint kept in the database, one per
// sequence number.
type storedCheckpoint struct {
	Seq       int64     `gorm:"column:seq;primaryKey;autoIncrement:false"`
	LogID     string    `gorm:"column:log_id;size:64;not null"`
	Hash      string    `gorm:"column:hash;size:64;not null"`
	At        time.Time `gorm:"column:at;precision:6;not null"`
	KeyID     string    `gorm:"column:key_id;size:64;not null"`
	Signature string    `gorm:"column:signature;size:128;not null"`
}

// TableName implements gorm's tabler.
func (storedCheckpoint) TableName() string { return "townhall_audit_checkpoints" }

// Migrate creates or updates the audit tables and the head row. It is
// idempotent and safe when several processes migrate at once. Tables of
// earlier versions gain the key, anchor and log ID columns with empty
// defaults, so their events stay valid unkeyed events; the log gets a random
// ID once. Every step checks before it changes, so a migration interrupted
// on MySQL or MariaDB (whose DDL is not transactional) completes when run
// again.
func Migrate(tx *gorm.DB) error {
	if tx == nil {
		return fmt.Errorf("audit: migrate: nil database: %w", ErrInvalidInput)
	}
	// A fresh statement on the same connection: tx may be a connection whose
	// statement earlier calls have filled (gorm's DB.Connection reuses it).
	tx = tx.Session(&gorm.Session{NewDB: true})
	if err := dbx.TableOptions(tx).AutoMigrate(&record{}, &head{}, &storedCheckpoint{}); err != nil {
		return fmt.Errorf("audit: migrate: %w", err)
	}
	err := tx.Clauses(clause.OnConflict{DoNothing: true}).Create(&head{ID: headID}).Error
	if err != nil && !dbx.IsUniqueViolation(err) {
		return fmt.Errorf("audit: migrate: head row: %w", err)
	}
	// Only the first migration names the log; later ones find it named.
	err = tx.Model(&head{}).Where("id = ? AND log_id = ?", headID, "").Update("log_id", dbx.NewID()).Error
	if err != nil {
		return fmt.Errorf("audit: migrate: log id: %w", err)
	}
	return nil
}

package users

import (
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/civicstack/townhall/internal/dbx"
)

// Table names, for hosts and packages that read the rows directly (the
// access snapshot).
const (
	UsersTable       = "townhall_users"
	APIKeysTable     = "townhall_api_keys"
	ProfilesTable    = "townhall_profiles"
	DepartmentsTable = "townhall_departments"
	SessionsTable    = "townhall_sessions"
	TokensTable      = "townhall_user_tokens"
	IdentitiesTable  = "townhall_external_identities"
)

// userRow is a user as stored. A deleted user keeps the row (soft delete) and
// its username_key, so neither the ID nor the username can be taken again
// until the user is anonymised.
type userRow struct {
	ID           string     `gorm:"primaryKey;size:64"`
	Username     string     `gorm:"size:150;not null"`
	UsernameKey  string     `gorm:"size:150;not null;uniqueIndex:idx_townhall_users_username_key"`
	Email        string     `gorm:"size:254;not null"`
	FirstName    string     `gorm:"size:150;not null"`
	LastName     string     `gorm:"size:150;not null"`
	Kind         string     `gorm:"size:16;not null"`
	IsActive     bool       `gorm:"not null"`
	IsStaff      bool       `gorm:"not null"`
	IsSuperAdmin bool       `gorm:"not null"`
	PasswordHash string     `gorm:"size:255;not null"`
	FailedLogins int        `gorm:"not null"`
	LockedUntil  *time.Time `gorm:"precision:6"`
	LastLoginAt  *time.Time `gorm:"precision:6"`
	// VerifyPending is set on self-registration with WithEmailVerification
	// and cleared when the email is verified: until then the user cannot
	// sign in.
	VerifyPending   bool           `gorm:"not null;default:false"`
	EmailVerifiedAt *time.Time     `gorm:"precision:6"`
	WelcomeSentAt   *time.Time     `gorm:"precision:6"`
	CreatedAt       time.Time      `gorm:"precision:6;not null"`
	UpdatedAt       time.Time      `gorm:"precision:6;not null"`
	DeletedAt       gorm.DeletedAt `gorm:"precision:6;index:idx_townhall_users_deleted_at"`
}

func (userRow) TableName() string { return UsersTable }

// apiKeyRow is an API key as stored: only the SHA-256 of its secret.
// RevokedAt is the soft-delete column: revoked keys stay for the record.
type apiKeyRow struct {
	ID         string         `gorm:"primaryKey;size:64"`
	UserID     string         `gorm:"size:64;not null;index:idx_townhall_api_keys_user"`
	Name       string         `gorm:"size:150;not null"`
	SecretHash string         `gorm:"size:64;not null"`
	CreatedAt  time.Time      `gorm:"precision:6;not null"`
	RevokedAt  gorm.DeletedAt `gorm:"precision:6;index:idx_townhall_api_keys_revoked_at"`
}

func (apiKeyRow) TableName() string { return APIKeysTable }

// profileRow is a profile as stored. LiveKey is "" while the profile is live
// and its own ID once deleted, so the unique index on (user, location,
// live key) allows one live profile per user and location plus any number of
// deleted ones, without a partial index.
type profileRow struct {
	ID                string         `gorm:"primaryKey;size:64"`
	UserID            string         `gorm:"size:64;not null;uniqueIndex:idx_townhall_profiles_live,priority:1"`
	LocationID        string         `gorm:"size:64;not null;uniqueIndex:idx_townhall_profiles_live,priority:2;index:idx_townhall_profiles_location"`
	LiveKey           string         `gorm:"size:64;not null;uniqueIndex:idx_townhall_profiles_live,priority:3"`
	DepartmentID      string         `gorm:"size:64;not null"`
	AllowedCategories string         `gorm:"type:text"`
	IsApproved        bool           `gorm:"not null"`
	IsActive          bool           `gorm:"not null"`
	CreatedAt         time.Time      `gorm:"precision:6;not null"`
	UpdatedAt         time.Time      `gorm:"precision:6;not null"`
	DeletedAt         gorm.DeletedAt `gorm:"precision:6;index:idx_townhall_profiles_deleted_at"`
}

func (profileRow) TableName() string { return ProfilesTable }

// departmentRow is a department as stored.
type departmentRow struct {
	ID             string    `gorm:"primaryKey;size:64"`
	MunicipalityID string    `gorm:"size:64;not null;index:idx_townhall_departments_municipality"`
	Name           string    `gorm:"size:150;not null"`
	Categories     string    `gorm:"type:text"`
	CreatedAt      time.Time `gorm:"precision:6;not null"`
	UpdatedAt      time.Time `gorm:"precision:6;not null"`
}

func (departmentRow) TableName() string { return DepartmentsTable }

// Migrate creates or updates the users, API keys, profiles, departments,
// sessions, single-use tokens and external identities tables. It is idempotent; callers hold the migration lock (dbx.Migrate).
func Migrate(tx *gorm.DB) error {
	if tx == nil {
		return fmt.Errorf("migrate users: %w: nil db", ErrInvalidInput)
	}
	err := dbx.TableOptions(tx).AutoMigrate(&userRow{}, &apiKeyRow{}, &profileRow{}, &departmentRow{},
		&sessionRow{}, &tokenRow{}, &identityRow{})
	if err != nil {
		return fmt.Errorf("migrate users: %w", err)
	}
	return nil
}

// Package userwrite holds the user writes that only access.Admin makes:
// the IsActive and IsSuperAdmin flags, deletion and anonymisation. They
// live here, out of users.Store's exported API, so that no host can change
// them without Admin's rules, audit event and snapshot update (SPEC §3).
// Each runs inside the caller's transaction, which records the audit event
// itself; none authorises or audits.
package userwrite

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/civicstack/townhall/internal/dbx"
	"github.com/civicstack/townhall/users"
)

// AnonymizedPrefix starts the username of an anonymised user; users
// refuses it for live usernames, so the new name can never clash.
const AnonymizedPrefix = "deleted-"

// SetActive sets the IsActive flag of live user id. Deactivation ends the
// user's sign-in sessions for good; profiles, grants and links are left
// alone, so they work again on reactivation.
// users.ErrNotFound for an unknown or deleted user.
func SetActive(ctx context.Context, tx *gorm.DB, now time.Time, id string, active bool) error {
	return setFlag(ctx, tx, now, id, "is_active", active, "set user active")
}

// SetSuperAdmin sets the IsSuperAdmin flag of live user id. Technical users
// are never super admins (users.ErrInvalidInput with
// users.ErrTechnicalUser).
func SetSuperAdmin(ctx context.Context, tx *gorm.DB, now time.Time, id string, on bool) error {
	return setFlag(ctx, tx, now, id, "is_super_admin", on, "set super admin")
}

func setFlag(ctx context.Context, tx *gorm.DB, now time.Time, id, column string, value bool, op string) error {
	tx, err := begin(ctx, tx, id)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	kind, err := lockLive(tx, id)
	if err != nil {
		return fmt.Errorf("%s %q: %w", op, id, err)
	}
	if column == "is_super_admin" && value && kind == string(users.Technical) {
		return fmt.Errorf("%s %q: %w: %w: technical users are never super admins", op, id, users.ErrInvalidInput, users.ErrTechnicalUser)
	}
	if err := tx.Table(users.UsersTable).Where("id = ?", id).
		Updates(map[string]any{column: value, "updated_at": stamp(now)}).Error; err != nil {
		return fmt.Errorf("%s %q: %w", op, id, err)
	}
	if column == "is_active" && !value {
		if err := EndSessions(tx, []string{id}, users.EndDeactivated, now); err != nil {
			return fmt.Errorf("%s %q: %w", op, id, err)
		}
	}
	return nil
}

// Delete soft-deletes live user id, revokes its API keys and ends its
// sign-in sessions. The row
// stays: the ID is never reused and the username stays taken until
// Anonymize. Profiles, grants, links and sessions are the caller's to end
// in the same transaction. users.ErrNotFound for an unknown or already
// deleted user.
func Delete(ctx context.Context, tx *gorm.DB, now time.Time, id string) error {
	tx, err := begin(ctx, tx, id)
	if err != nil {
		return fmt.Errorf("delete user: %w", err)
	}
	if _, err := lockLive(tx, id); err != nil {
		return fmt.Errorf("delete user %q: %w", id, err)
	}
	at := stamp(now)
	if err := tx.Table(users.UsersTable).Where("id = ?", id).
		Updates(map[string]any{"deleted_at": at, "updated_at": at}).Error; err != nil {
		return fmt.Errorf("delete user %q: %w", id, err)
	}
	if err := tx.Table(users.APIKeysTable).Where("user_id = ? AND revoked_at IS NULL", id).
		UpdateColumn("revoked_at", at).Error; err != nil {
		return fmt.Errorf("delete user %q: revoke api keys: %w", id, err)
	}
	if err := EndSessions(tx, []string{id}, users.EndDeleted, now); err != nil {
		return fmt.Errorf("delete user %q: %w", id, err)
	}
	return nil
}

// Anonymize clears the personal fields of deleted user id: names and email
// are emptied, the username (and its key) becomes AnonymizedPrefix+id, and
// the password hash is dropped. The old username is free again. Repeating
// it is harmless. users.ErrNotFound for an unknown user,
// users.ErrInvalidInput for one that is not deleted.
func Anonymize(ctx context.Context, tx *gorm.DB, now time.Time, id string) error {
	tx, err := begin(ctx, tx, id)
	if err != nil {
		return fmt.Errorf("anonymize user: %w", err)
	}
	var rows []struct{ Deleted bool }
	if err := forUpdate(tx.Table(users.UsersTable)).
		Select("CASE WHEN deleted_at IS NULL THEN 0 ELSE 1 END AS deleted").
		Where("id = ?", id).Scan(&rows).Error; err != nil {
		return fmt.Errorf("anonymize user %q: %w", id, err)
	}
	switch {
	case len(rows) == 0:
		return fmt.Errorf("anonymize user %q: %w", id, users.ErrNotFound)
	case !rows[0].Deleted:
		return fmt.Errorf("anonymize user %q: %w: only deleted users are anonymised", id, users.ErrInvalidInput)
	}
	// The key keeps the ID's case: IDs are case-sensitive, and live keys
	// can never start with the reserved prefix, so it cannot clash.
	name := AnonymizedPrefix + id
	if err := tx.Table(users.UsersTable).Where("id = ?", id).Updates(map[string]any{
		"username": name, "username_key": name, "email": "", "first_name": "", "last_name": "",
		"password_hash": "", "updated_at": stamp(now),
	}).Error; err != nil {
		return fmt.Errorf("anonymize user %q: %w", id, err)
	}
	return nil
}

// EndSessions ends, inside tx, every session of the users ids, for the
// writes that deactivate or delete users (here, and the stranded members
// of a deleted organisation in package affiliation): an ended session
// never comes back, even if the user is reactivated. cause is one of
// users.EndDeactivated, users.EndDeleted.
func EndSessions(tx *gorm.DB, ids []string, cause string, now time.Time) error {
	if len(ids) == 0 {
		return nil
	}
	err := tx.Table(users.SessionsTable).Where("user_id IN ? AND ended_at IS NULL", ids).
		UpdateColumns(map[string]any{"ended_at": stamp(now), "end_cause": cause}).Error
	if err != nil {
		return fmt.Errorf("end sessions: %w", err)
	}
	return nil
}

// begin checks the arguments and binds tx to ctx.
func begin(ctx context.Context, tx *gorm.DB, id string) (*gorm.DB, error) {
	if !dbx.ValidID(id) {
		return nil, fmt.Errorf("%w: user id %q", users.ErrInvalidInput, truncate(id))
	}
	if tx == nil {
		return nil, fmt.Errorf("%w: nil transaction", users.ErrInvalidInput)
	}
	return tx.WithContext(ctx), nil
}

// lockLive locks the row of live user id until tx ends (SQLite
// transactions already hold the database's write lock) and returns its
// kind.
func lockLive(tx *gorm.DB, id string) (string, error) {
	var kinds []string
	if err := forUpdate(tx.Table(users.UsersTable)).Where("id = ? AND deleted_at IS NULL", id).
		Pluck("kind", &kinds).Error; err != nil {
		return "", err
	}
	if len(kinds) == 0 {
		return "", users.ErrNotFound
	}
	return kinds[0], nil
}

func forUpdate(tx *gorm.DB) *gorm.DB {
	if dbx.DialectOf(tx) == dbx.SQLite {
		return tx
	}
	return tx.Clauses(clause.Locking{Strength: "UPDATE"})
}

// stamp is now at the precision the databases store.
func stamp(now time.Time) time.Time { return now.UTC().Truncate(time.Microsecond) }

func truncate(s string) string {
	if len(s) > 64 {
		return s[:64]
	}
	return s
}

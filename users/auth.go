package users

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/civicstack/townhall/audit"
	"github.com/civicstack/townhall/internal/dbx"
)

// Reasons recorded in TypeLoginFailed events.
const (
	ReasonUnknownUser   = "unknown_user"
	ReasonTechnicalUser = "technical_user"
	ReasonLocked        = "locked"
	ReasonNoPassword    = "no_password"
	ReasonWrongPassword = "wrong_password"
	ReasonInactive      = "inactive"
	ReasonUnverified    = "unverified"
)

// Authenticate signs a user in with username and password and answers, in
// this order (SPEC §4):
//
//   - unknown or deleted username: ErrInvalidCredentials (after the same
//     password hashing work as a known user, so timing does not tell);
//   - technical user: ErrTechnicalUser;
//   - locked: ErrLocked;
//   - no password, or a wrong one: ErrInvalidCredentials, counted as a
//     failure; the failure that reaches the maximum (WithLockout) locks the
//     account for the lockout duration and resets the count, so after the lock
//     expires the user has a fresh set of attempts;
//   - inactive user: ErrInactive;
//   - a self-registered user whose email is not verified yet
//     (WithEmailVerification): ErrUnverified;
//   - otherwise the user, with the failure count reset and LastLoginAt set.
//
// Every outcome is audited (TypeLogin or TypeLoginFailed with a Reason) in
// the same transaction as the counter update; ActorID and UserID are the
// user, and empty for an unknown username (events never hold usernames).
// Authenticate starts no session: Login does.
func (s *Store) Authenticate(ctx context.Context, username, password string) (*User, error) {
	u, _, err := s.authenticate(ctx, username, password, false)
	return u, err
}

// authenticate is Authenticate that also starts a session when start is
// set.
func (s *Store) authenticate(ctx context.Context, username, password string, start bool) (*User, *SignIn, error) {
	var row *userRow
	key, err := usernameKey(username)
	if err == nil {
		row, err = s.byKey(ctx, key)
	}
	if err != nil {
		if !errors.Is(err, ErrNotFound) && !errors.Is(err, ErrInvalidInput) {
			return nil, nil, fmt.Errorf("authenticate: %w", err)
		}
		verifyPassword(password, s.dummyHash())
		if err := s.log.Record(ctx, audit.Event{Type: audit.TypeLoginFailed, Reason: ReasonUnknownUser}); err != nil {
			return nil, nil, fmt.Errorf("authenticate: %w", err)
		}
		return nil, nil, fmt.Errorf("authenticate: %w", ErrInvalidCredentials)
	}

	now := s.opt.nowUTC()
	switch {
	case Kind(row.Kind) == Technical:
		return nil, nil, s.loginFailed(ctx, row.ID, ReasonTechnicalUser, ErrTechnicalUser)
	case locked(row, now):
		return nil, nil, s.loginFailed(ctx, row.ID, ReasonLocked, ErrLocked)
	}

	// The slow hash runs before the transaction opens, so it never holds a
	// lock or a connection.
	var ok bool
	reason := ReasonWrongPassword
	if row.PasswordHash == "" {
		verifyPassword(password, s.dummyHash())
		reason = ReasonNoPassword
	} else {
		ok = verifyPassword(password, row.PasswordHash)
	}
	if !ok {
		return nil, nil, s.countFailure(ctx, row.ID, reason, now)
	}
	if !row.IsActive {
		return nil, nil, s.loginFailed(ctx, row.ID, ReasonInactive, ErrInactive)
	}
	return s.loginSucceeded(ctx, row.ID, now, start)
}

func locked(row *userRow, now time.Time) bool {
	return row.LockedUntil != nil && row.LockedUntil.After(now)
}

// loginFailed records a failed sign-in that does not count toward the lock
// and returns cause.
func (s *Store) loginFailed(ctx context.Context, id, reason string, cause error) error {
	if err := s.log.Record(ctx, audit.Event{
		Type: audit.TypeLoginFailed, ActorID: id, UserID: id, Reason: reason,
	}); err != nil {
		return fmt.Errorf("authenticate: %w", err)
	}
	return fmt.Errorf("authenticate: %w", cause)
}

// countFailure adds one failure to user id (in SQL, so concurrent attempts
// all count) and locks the account when the count reaches the maximum.
func (s *Store) countFailure(ctx context.Context, id, reason string, now time.Time) error {
	result := ErrInvalidCredentials
	err := dbx.Tx(ctx, s.db, func(tx *gorm.DB) error {
		result = ErrInvalidCredentials // dbx.Tx may run this again
		row, err := lockUser(tx, id)
		if err != nil {
			// Deleted meanwhile: to the caller it is an unknown user.
			if errors.Is(err, ErrNotFound) {
				return s.log.RecordTx(ctx, tx, audit.Event{Type: audit.TypeLoginFailed, Reason: ReasonUnknownUser})
			}
			return err
		}
		if locked(row, now) {
			// Another attempt locked the account meanwhile; this one does
			// not count.
			result = ErrLocked
			return s.log.RecordTx(ctx, tx, audit.Event{
				Type: audit.TypeLoginFailed, ActorID: id, UserID: id, Reason: ReasonLocked,
			})
		}
		err = tx.Model(&userRow{}).Where("id = ?", id).
			UpdateColumn("failed_logins", gorm.Expr("failed_logins + 1")).Error
		if err != nil {
			return err
		}
		var failures int
		if err := tx.Model(&userRow{}).Where("id = ?", id).Select("failed_logins").Scan(&failures).Error; err != nil {
			return err
		}
		details := map[string]any{"failures": failures}
		if failures >= s.opt.maxFailures {
			until := now.Add(s.opt.lockout)
			err := tx.Model(&userRow{}).Where("id = ?", id).UpdateColumns(map[string]any{
				"failed_logins": 0,
				"locked_until":  until,
			}).Error
			if err != nil {
				return err
			}
			details["locked_until"] = until.Format(time.RFC3339Nano)
		}
		return s.log.RecordTx(ctx, tx, audit.Event{
			Type: audit.TypeLoginFailed, ActorID: id, UserID: id, Reason: reason, Details: details,
		})
	})
	if err != nil {
		return fmt.Errorf("authenticate: %w", err)
	}
	return fmt.Errorf("authenticate: %w", result)
}

// loginSucceeded completes a password sign-in (signInTx), unless the
// account was locked, deleted or deactivated since it was read, or awaits
// email verification.
func (s *Store) loginSucceeded(ctx context.Context, id string, now time.Time, start bool) (*User, *SignIn, error) {
	var in *SignIn
	result := error(nil)
	err := dbx.Tx(ctx, s.db, func(tx *gorm.DB) error {
		in, result = nil, nil // dbx.Tx may run this again
		row, err := lockUser(tx, id)
		switch {
		case errors.Is(err, ErrNotFound):
			result = ErrInvalidCredentials
			return s.log.RecordTx(ctx, tx, audit.Event{Type: audit.TypeLoginFailed, Reason: ReasonUnknownUser})
		case err != nil:
			return err
		}
		var reason string
		if reason, result = refusal(row, now); result != nil {
			return s.log.RecordTx(ctx, tx, audit.Event{
				Type: audit.TypeLoginFailed, ActorID: id, UserID: id, Reason: reason,
			})
		}
		in, err = s.signInTx(ctx, tx, row, MethodPassword, start)
		return err
	})
	if err != nil {
		return nil, nil, fmt.Errorf("authenticate: %w", err)
	}
	if result != nil {
		return nil, nil, fmt.Errorf("authenticate: %w", result)
	}
	return in.User, in, nil
}

// Logout signs user id out everywhere: every session of the user ends, and
// TypeLogout is recorded with the user as actor and target and the ended
// sessions' IDs. EndSession signs out of one session. ErrNotFound for an
// unknown or deleted user.
func (s *Store) Logout(ctx context.Context, userID string) error {
	if err := validateID(userID, "user id"); err != nil {
		return fmt.Errorf("logout: %w", err)
	}
	err := dbx.Tx(ctx, s.db, func(tx *gorm.DB) error {
		if _, err := lockUser(tx, userID); err != nil {
			return err
		}
		ids, err := s.endSessionsTx(tx, userID, EndLogout)
		if err != nil {
			return err
		}
		return s.log.RecordTx(ctx, tx, audit.Event{
			Type: audit.TypeLogout, ActorID: userID, UserID: userID,
			Details: map[string]any{"sessions": ids},
		})
	})
	if err != nil {
		return fmt.Errorf("logout: %w", err)
	}
	return nil
}

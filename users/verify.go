package users

import (
	"context"
	"errors"
	"fmt"

	"gorm.io/gorm"

	"github.com/civicstack/townhall/audit"
	"github.com/civicstack/townhall/internal/dbx"
)

// registerVerificationTx runs inside Register's transaction when
// WithEmailVerification is on: it sends the first verification message, so
// a registration whose message cannot be sent leaves no user behind.
func (s *Store) registerVerificationTx(ctx context.Context, tx *gorm.DB, row *userRow) error {
	if _, err := s.sendTx(ctx, tx, row, MessageEmailVerification); err != nil {
		return err
	}
	return s.log.RecordTx(ctx, tx, audit.Event{Type: audit.TypeVerificationSent, ActorID: row.ID, UserID: row.ID})
}

// ResendVerification sends user userID a new email verification message;
// the earlier ones stop working. ErrNotFound for an unknown or deleted
// user, ErrInvalidInput for a user who is not awaiting verification,
// ErrNoMailer without a Mailer. Audited as TypeVerificationSent.
func (s *Store) ResendVerification(ctx context.Context, userID string) error {
	if s.opt.mailer == nil {
		return fmt.Errorf("resend verification: %w", ErrNoMailer)
	}
	err := s.userTx(ctx, userID, func(tx *gorm.DB, row *userRow) error {
		if !row.VerifyPending {
			return fmt.Errorf("%w: the user is not awaiting email verification", ErrInvalidInput)
		}
		return s.registerVerificationTx(ctx, tx, row)
	})
	if err != nil {
		return fmt.Errorf("resend verification for %q: %w", userID, err)
	}
	return nil
}

// VerifyEmail verifies a user's email with a token from a verification
// message and returns the user, who can sign in from then on. The token
// works once, within the verification TTL (default 24 hours, WithTokenTTL),
// and only while the user's email is still the address it was sent to.
// ErrInvalidToken otherwise. Audited as TypeEmailVerified, or
// TypeVerificationFailed with a Reason.
func (s *Store) VerifyEmail(ctx context.Context, token string) (*User, error) {
	var out *User
	err := s.spendToken(ctx, MessageEmailVerification, token, audit.TypeVerificationFailed, func(tx *gorm.DB, row *userRow) error {
		var err error
		out, err = s.markVerifiedTx(ctx, tx, row, false)
		return err
	}, nil)
	if err != nil {
		return nil, fmt.Errorf("verify email: %w", err)
	}
	return out, nil
}

// MarkEmailVerified marks the email of user userID verified without a token
// (an administrator vouches for it): a self-registered user awaiting
// verification can sign in from then on. Repeating it is harmless.
// ErrNotFound for an unknown or deleted user, ErrInvalidInput for a user
// without an email. Audited as TypeEmailVerified with the subject in the
// context as actor.
func (s *Store) MarkEmailVerified(ctx context.Context, userID string) error {
	err := s.userTx(ctx, userID, func(tx *gorm.DB, row *userRow) error {
		if row.Email == "" {
			return fmt.Errorf("%w: the user has no email", ErrInvalidInput)
		}
		if err := s.endTokensTx(tx, userID, MessageEmailVerification, "superseded"); err != nil {
			return err
		}
		_, err := s.markVerifiedTx(ctx, tx, row, true)
		return err
	})
	if err != nil {
		return fmt.Errorf("mark email verified for %q: %w", userID, err)
	}
	return s.opt.notify(ctx, Change{UserID: userID})
}

func (s *Store) markVerifiedTx(ctx context.Context, tx *gorm.DB, row *userRow, byAdmin bool) (*User, error) {
	now := s.opt.nowUTC()
	err := tx.Model(&userRow{}).Where("id = ?", row.ID).UpdateColumns(map[string]any{
		"verify_pending":    false,
		"email_verified_at": now,
		"updated_at":        now,
	}).Error
	if err != nil {
		return nil, err
	}
	ev := audit.Event{Type: audit.TypeEmailVerified, UserID: row.ID, Details: map[string]any{"by_admin": byAdmin}}
	if !byAdmin {
		ev.ActorID = row.ID
	}
	if err := s.log.RecordTx(ctx, tx, ev); err != nil {
		return nil, err
	}
	row.VerifyPending, row.EmailVerifiedAt, row.UpdatedAt = false, &now, now
	return toUser(row), nil
}

// SendWelcome sends user userID a welcome message through the Mailer and
// records it: the onboarding checklist's WelcomeSent is set from then on.
// Sending again sends again. ErrNotFound for an unknown or deleted user,
// ErrInvalidInput for a user without an email, ErrNoMailer without a
// Mailer; an error from the Mailer is returned and nothing is recorded.
// Audited as TypeWelcomeSent.
func (s *Store) SendWelcome(ctx context.Context, userID string) error {
	if s.opt.mailer == nil {
		return fmt.Errorf("send welcome: %w", ErrNoMailer)
	}
	err := s.userTx(ctx, userID, func(tx *gorm.DB, row *userRow) error {
		if row.Email == "" {
			return fmt.Errorf("%w: the user has no email", ErrInvalidInput)
		}
		if _, err := s.sendTx(ctx, tx, row, MessageWelcome); err != nil {
			return err
		}
		if err := tx.Model(&userRow{}).Where("id = ?", userID).
			UpdateColumn("welcome_sent_at", s.opt.nowUTC()).Error; err != nil {
			return err
		}
		return s.log.RecordTx(ctx, tx, audit.Event{Type: audit.TypeWelcomeSent, UserID: userID})
	})
	if err != nil {
		if errors.Is(err, errMailer) {
			if rerr := s.mailFailed(ctx, userID, MessageWelcome); rerr != nil {
				err = errors.Join(err, rerr)
			}
		}
		return fmt.Errorf("send welcome to %q: %w", userID, err)
	}
	return nil
}

// userTx runs fn in a transaction on live user userID, its row locked.
func (s *Store) userTx(ctx context.Context, userID string, fn func(tx *gorm.DB, row *userRow) error) error {
	if err := validateID(userID, "user id"); err != nil {
		return err
	}
	return dbx.Tx(ctx, s.db, func(tx *gorm.DB) error {
		row, err := lockUser(tx, userID)
		if err != nil {
			return err
		}
		return fn(tx, row)
	})
}

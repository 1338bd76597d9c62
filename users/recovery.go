package users

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/civicstack/townhall/audit"
	"github.com/civicstack/townhall/internal/dbx"
)

// tokenRow is a single-use token (password reset or email verification)
// as stored: only its SHA-256. A token is spent when used, and superseded
// when a newer one of the same purpose is issued to the same user; either
// way EndedAt is set and it never works again.
type tokenRow struct {
	ID        string     `gorm:"primaryKey;size:64"`
	UserID    string     `gorm:"size:64;not null;index:idx_townhall_user_tokens_user"`
	Purpose   string     `gorm:"size:32;not null"`
	TokenHash string     `gorm:"size:64;not null;uniqueIndex:idx_townhall_user_tokens_hash"`
	Email     string     `gorm:"size:254;not null"` // the address the message went to
	CreatedAt time.Time  `gorm:"precision:6;not null"`
	ExpiresAt time.Time  `gorm:"precision:6;not null"`
	EndedAt   *time.Time `gorm:"precision:6"`
	EndCause  string     `gorm:"size:32;not null"`
}

func (tokenRow) TableName() string { return TokensTable }

// Reasons recorded when a single-use token is refused.
const (
	ReasonMalformedToken  = "malformed"
	ReasonUnknownToken    = "unknown"
	ReasonSpentToken      = "spent"
	ReasonExpiredToken    = "expired"
	ReasonEmailChanged    = "email_changed"
	ReasonUserUnavailable = "user_unavailable"
)

// purposes maps message kinds that carry a token to their prefix and TTL.
func (s *Store) tokenTTL(kind MessageKind) (prefix string, ttl time.Duration) {
	if kind == MessagePasswordReset {
		return resetPrefix, s.opt.resetTTL
	}
	return verifyPrefix, s.opt.verifyTTL
}

// sendTx issues, inside tx, a message of kind to user row: for kinds with a
// token it supersedes the user's earlier tokens of that kind and stores a
// fresh one (so a transaction that runs again never reuses a token it
// handed to the Mailer), then hands the message to the Mailer. It returns
// when the token expires.
func (s *Store) sendTx(ctx context.Context, tx *gorm.DB, row *userRow, kind MessageKind) (time.Time, error) {
	m := Message{Kind: kind, UserID: row.ID, To: row.Email}
	if kind != MessageWelcome {
		prefix, ttl := s.tokenTTL(kind)
		token, hash := newSecret(prefix)
		now := s.opt.nowUTC()
		if err := s.endTokensTx(tx, row.ID, kind, "superseded"); err != nil {
			return time.Time{}, err
		}
		tr := tokenRow{
			ID: dbx.NewID(), UserID: row.ID, Purpose: string(kind), TokenHash: hash,
			Email: row.Email, CreatedAt: now, ExpiresAt: now.Add(ttl),
		}
		if err := tx.Create(&tr).Error; err != nil {
			return time.Time{}, err
		}
		m.Token, m.ExpiresAt = token, tr.ExpiresAt
	}
	if err := s.opt.mailer.Send(ctx, m); err != nil {
		return time.Time{}, fmt.Errorf("%w: %w", errMailer, err)
	}
	return m.ExpiresAt, nil
}

// errMailer marks an error returned by the host's Mailer.
var errMailer = errors.New("mailer")

// endTokensTx ends the unspent tokens of kind held by userID.
func (s *Store) endTokensTx(tx *gorm.DB, userID string, kind MessageKind, cause string) error {
	return tx.Model(&tokenRow{}).Where("user_id = ? AND purpose = ? AND ended_at IS NULL", userID, string(kind)).
		UpdateColumns(map[string]any{"ended_at": s.opt.nowUTC(), "end_cause": cause}).Error
}

// mailFailed records that the Mailer refused a message to userID, so the
// failure is on record even where the caller must not learn of it.
func (s *Store) mailFailed(ctx context.Context, userID string, kind MessageKind) error {
	return s.log.Record(ctx, audit.Event{
		Type: audit.TypeMailFailed, UserID: userID, Details: map[string]any{"kind": string(kind)},
	})
}

// RequestPasswordReset sends a password reset message to every active
// interactive user whose email is email (compared case-insensitively)
// through the Mailer. It answers the same way whether or not the address is
// known: nil, after the same work (a token is generated and stored and an
// event written either way; for an unknown address the token names no one
// and is spent from the start), so the answer does not tell which
// addresses have accounts; a Mailer failure is recorded (TypeMailFailed) and not returned
// for the same reason. The token works once, within the reset TTL (default
// one hour, WithTokenTTL), and a newer request supersedes it. Audited as
// TypePasswordResetRequested, naming the user (never the address) or no one.
// ErrInvalidInput for a malformed address, ErrNoMailer without a Mailer.
func (s *Store) RequestPasswordReset(ctx context.Context, email string) error {
	if s.opt.mailer == nil {
		return fmt.Errorf("request password reset: %w", ErrNoMailer)
	}
	if email == "" {
		return fmt.Errorf("request password reset: %w: email required", ErrInvalidInput)
	}
	if err := validateEmail(email); err != nil {
		return fmt.Errorf("request password reset: %w", err)
	}
	var failed []string
	err := dbx.Tx(ctx, s.db, func(tx *gorm.DB) error {
		// dbx.Tx may run this again: each attempt starts over and issues
		// fresh tokens, so a token handed to the Mailer in an attempt that
		// lost is never stored, and never for another user.
		failed = failed[:0]
		var rows []userRow
		if err := forUpdate(tx).Where("LOWER(email) = ? AND is_active = ? AND kind = ?",
			strings.ToLower(email), true, string(Interactive)).Order("id").Find(&rows).Error; err != nil {
			return err
		}
		if len(rows) == 0 {
			// The same statements as for a known address, on a token that
			// names no one and is spent from the start: the answer then
			// takes as long, short of the Mailer's hand-off.
			if err := s.endTokensTx(tx, "", MessagePasswordReset, "superseded"); err != nil {
				return err
			}
			_, hash := newSecret(resetPrefix)
			now := s.opt.nowUTC()
			if err := tx.Create(&tokenRow{
				ID: dbx.NewID(), Purpose: string(MessagePasswordReset), TokenHash: hash,
				CreatedAt: now, ExpiresAt: now, EndedAt: &now, EndCause: "no_account",
			}).Error; err != nil {
				return err
			}
			return s.log.RecordTx(ctx, tx, audit.Event{Type: audit.TypePasswordResetRequested})
		}
		for i := range rows {
			if _, err := s.sendTx(ctx, tx, &rows[i], MessagePasswordReset); err != nil {
				if errors.Is(err, errMailer) {
					failed = append(failed, rows[i].ID)
				}
				return err
			}
			if err := s.log.RecordTx(ctx, tx, audit.Event{
				Type: audit.TypePasswordResetRequested, ActorID: rows[i].ID, UserID: rows[i].ID,
			}); err != nil {
				return err
			}
		}
		return nil
	})
	if len(failed) > 0 {
		for _, id := range failed {
			if err := s.mailFailed(ctx, id, MessagePasswordReset); err != nil {
				return fmt.Errorf("request password reset: %w", err)
			}
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("request password reset: %w", err)
	}
	return nil
}

// ResetPassword sets a new password with a token from a password reset
// message. It spends the token, ends every session of the user and clears
// the failure count and any lock. ErrInvalidInput for a password that
// breaks the rules (the token is then not spent); ErrInvalidToken for a
// malformed, unknown, spent, superseded or expired token, or one whose user
// was deleted, deactivated or changed email since. Every outcome is
// audited: TypePasswordReset, or TypePasswordResetFailed with a Reason.
func (s *Store) ResetPassword(ctx context.Context, token, newPassword string) error {
	if err := validatePassword(newPassword); err != nil {
		return fmt.Errorf("reset password: %w", err)
	}
	var pwHash string
	err := s.spendToken(ctx, MessagePasswordReset, token, audit.TypePasswordResetFailed, func(tx *gorm.DB, row *userRow) error {
		if err := s.setPasswordTx(tx, row.ID, pwHash); err != nil {
			return err
		}
		ended, err := s.endSessionsTx(tx, row.ID, EndPasswordReset)
		if err != nil {
			return err
		}
		return s.log.RecordTx(ctx, tx, audit.Event{
			Type: audit.TypePasswordReset, ActorID: row.ID, UserID: row.ID,
			Details: map[string]any{"sessions_ended": ended},
		})
	}, func() { pwHash = hashPassword(newPassword, s.opt.kdf) })
	if err != nil {
		return fmt.Errorf("reset password: %w", err)
	}
	return nil
}

// spendToken checks a single-use token of kind and, when it is good, spends
// it and runs use in the same transaction. prepare runs once the token is
// well formed and before the transaction opens (for slow work such as
// hashing a password). A refused token is recorded as failType with the
// reason and returns ErrInvalidToken.
func (s *Store) spendToken(ctx context.Context, kind MessageKind, token, failType string,
	use func(tx *gorm.DB, row *userRow) error, prepare func()) error {
	prefix, _ := s.tokenTTL(kind)
	hash, ok := secretHashOf(prefix, token)
	if !ok {
		if err := s.log.Record(ctx, audit.Event{Type: failType, Reason: ReasonMalformedToken}); err != nil {
			return err
		}
		return ErrInvalidToken
	}
	if prepare != nil {
		prepare()
	}
	refused := false
	err := dbx.Tx(ctx, s.db, func(tx *gorm.DB) error {
		refused = false // dbx.Tx may run this again
		reason, userID, row, err := s.checkToken(tx, kind, hash)
		if err != nil {
			return err
		}
		if reason != "" {
			refused = true
			return s.log.RecordTx(ctx, tx, audit.Event{Type: failType, ActorID: userID, UserID: userID, Reason: reason})
		}
		if err := s.endTokensTx(tx, row.ID, kind, "spent"); err != nil {
			return err
		}
		return use(tx, row)
	})
	if err != nil {
		return err
	}
	if refused {
		return ErrInvalidToken
	}
	return nil
}

// checkToken reads, inside tx and locked, the token with this hash and its
// user. A non-empty reason says why it does not work.
func (s *Store) checkToken(tx *gorm.DB, kind MessageKind, hash string) (reason, userID string, row *userRow, err error) {
	var tr tokenRow
	if err := forUpdate(tx).Where("token_hash = ? AND purpose = ?", hash, string(kind)).Take(&tr).Error; err != nil {
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return ReasonUnknownToken, "", nil, nil
		}
		return "", "", nil, err
	}
	if subtle.ConstantTimeCompare([]byte(tr.TokenHash), []byte(hash)) != 1 {
		return ReasonUnknownToken, "", nil, nil
	}
	switch {
	case tr.EndedAt != nil:
		return ReasonSpentToken, tr.UserID, nil, nil
	case !s.opt.nowUTC().Before(tr.ExpiresAt):
		return ReasonExpiredToken, tr.UserID, nil, nil
	}
	row, err = lockUser(tx, tr.UserID)
	switch {
	case errors.Is(err, ErrNotFound):
		return ReasonUserUnavailable, tr.UserID, nil, nil
	case err != nil:
		return "", "", nil, err
	case !row.IsActive || Kind(row.Kind) != Interactive:
		return ReasonUserUnavailable, tr.UserID, nil, nil
	case !strings.EqualFold(row.Email, tr.Email):
		return ReasonEmailChanged, tr.UserID, nil, nil
	}
	return "", tr.UserID, row, nil
}

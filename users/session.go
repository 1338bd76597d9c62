package users

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/civicstack/townhall/audit"
	"github.com/civicstack/townhall/internal/dbx"
)

// Session is a signed-in user's session. Its token is shown once, in the
// SignIn that started it, and never stored: only its SHA-256 is.
type Session struct {
	ID         string // public: audit events and session lists name it
	UserID     string
	Method     string // how the user signed in: "password", or the host's label (StartSession)
	CreatedAt  time.Time
	LastSeenAt time.Time // the last request, within a minute (see ResolveSession)
	ExpiresAt  time.Time // the absolute end, whatever the use
}

// SignIn is the result of a successful sign-in that started a session.
// Token is the bearer secret: hand it to the client (a cookie or an
// Authorization header) and forget it.
type SignIn struct {
	User    *User
	Session Session
	Token   string
}

// Causes recorded when sessions end, in the "cause" detail of the event
// that ended them.
const (
	EndLogout          = "logout"
	EndAll             = "end_all"
	EndPasswordChanged = "password_changed"
	EndPasswordReset   = "password_reset"
	EndDeactivated     = "deactivated"
	EndDeleted         = "deleted"
)

// sessionRow is a session as stored: only the SHA-256 of its token.
type sessionRow struct {
	ID         string     `gorm:"primaryKey;size:64"`
	UserID     string     `gorm:"size:64;not null;index:idx_townhall_login_sessions_user"`
	TokenHash  string     `gorm:"size:64;not null;uniqueIndex:idx_townhall_login_sessions_token"`
	Method     string     `gorm:"size:64;not null"`
	CreatedAt  time.Time  `gorm:"precision:6;not null"`
	LastSeenAt time.Time  `gorm:"precision:6;not null"`
	ExpiresAt  time.Time  `gorm:"precision:6;not null"`
	EndedAt    *time.Time `gorm:"precision:6"`
	EndCause   string     `gorm:"size:32;not null"`
}

func (sessionRow) TableName() string { return SessionsTable }

func (r *sessionRow) session() Session {
	return Session{
		ID: r.ID, UserID: r.UserID, Method: r.Method,
		CreatedAt: r.CreatedAt.UTC(), LastSeenAt: r.LastSeenAt.UTC(), ExpiresAt: r.ExpiresAt.UTC(),
	}
}

// MethodPassword is the Method of sessions started by Login.
const MethodPassword = "password"

// Login is Authenticate that, on success, also starts a session; the login
// event carries the session's ID. It answers exactly as Authenticate does,
// and with ErrUnverified for a self-registered user whose email is not
// verified yet (WithEmailVerification).
func (s *Store) Login(ctx context.Context, username, password string) (*SignIn, error) {
	u, in, err := s.authenticate(ctx, username, password, true)
	if err != nil {
		return nil, err
	}
	in.User = u
	return in, nil
}

// StartSession starts a session for user userID after the host has signed
// them in by other means (its own single sign-on; SignInExternal does this
// for linked identities). method labels how, for the session and the audit
// event ("oidc:google", "saml"): an identifier of at most 64 characters.
// The user must be live (ErrNotFound), interactive (ErrTechnicalUser:
// technical users use API keys), active (ErrInactive) and, when required,
// verified (ErrUnverified). The lockout of password sign-ins does not
// apply. Audited as TypeLogin with the session's ID, or TypeLoginFailed.
func (s *Store) StartSession(ctx context.Context, userID, method string) (*SignIn, error) {
	if err := validateID(userID, "user id"); err != nil {
		return nil, fmt.Errorf("start session: %w", err)
	}
	if err := validateID(method, "sign-in method"); err != nil {
		return nil, fmt.Errorf("start session: %w", err)
	}
	var in *SignIn
	var refused error
	err := dbx.Tx(ctx, s.db, func(tx *gorm.DB) error {
		in, refused = nil, nil // dbx.Tx may run this again
		row, err := lockUser(tx, userID)
		if err != nil {
			return err
		}
		var reason string
		if reason, refused = refusal(row, time.Time{}); refused != nil {
			return s.log.RecordTx(ctx, tx, audit.Event{
				Type: audit.TypeLoginFailed, ActorID: userID, UserID: userID, Reason: reason,
				Details: map[string]any{"method": method},
			})
		}
		in, err = s.signInTx(ctx, tx, row, method, true)
		return err
	})
	switch {
	case err != nil:
		return nil, fmt.Errorf("start session: %w", err)
	case refused != nil:
		return nil, fmt.Errorf("start session: %w", refused)
	}
	return in, nil
}

// refusal says why row may not sign in now, if it may not: a technical
// user (sessions are for people), a lock (password sign-ins only: lockedAt
// is the time to test, zero for other sign-ins), a deactivated account, an
// email awaiting verification.
func refusal(row *userRow, lockedAt time.Time) (reason string, err error) {
	switch {
	case Kind(row.Kind) == Technical:
		return ReasonTechnicalUser, ErrTechnicalUser
	case !lockedAt.IsZero() && locked(row, lockedAt):
		return ReasonLocked, ErrLocked
	case !row.IsActive:
		return ReasonInactive, ErrInactive
	case row.VerifyPending:
		return ReasonUnverified, ErrUnverified
	}
	return "", nil
}

// signInTx completes a sign-in of row inside tx: it resets the failure
// count, stamps the login, starts a session when asked and records
// TypeLogin (with the session's ID). The returned SignIn has User set.
func (s *Store) signInTx(ctx context.Context, tx *gorm.DB, row *userRow, method string, start bool) (*SignIn, error) {
	now := s.opt.nowUTC()
	err := tx.Model(&userRow{}).Where("id = ?", row.ID).UpdateColumns(map[string]any{
		"failed_logins": 0,
		"locked_until":  nil,
		"last_login_at": now,
	}).Error
	if err != nil {
		return nil, err
	}
	row.FailedLogins, row.LockedUntil, row.LastLoginAt = 0, nil, &now
	in := &SignIn{User: toUser(row)}
	details := map[string]any{"method": method}
	if start {
		token, hash := newSecret(sessionPrefix)
		sr := sessionRow{
			ID: dbx.NewID(), UserID: row.ID, TokenHash: hash, Method: method,
			CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(s.opt.sessionLifetime),
		}
		if err := tx.Create(&sr).Error; err != nil {
			return nil, err
		}
		in.Session, in.Token = sr.session(), token
		details["session_id"] = sr.ID
	}
	if err := s.log.RecordTx(ctx, tx, audit.Event{Type: audit.TypeLogin, ActorID: row.ID, UserID: row.ID, Details: details}); err != nil {
		return nil, err
	}
	return in, nil
}

// ResolveSession returns the live session of token, for every request. A
// malformed, unknown or ended token gives ErrInvalidCredentials; one past
// its idle timeout or absolute lifetime gives ErrSessionExpired (with
// ErrInvalidCredentials); a session whose user was deactivated gives
// ErrInactive. The idle clock restarts with each use; to spare a write per
// request, the last use is stored at most once a minute (or once a tenth of
// the idle timeout, if shorter), so a session may end up to that much
// earlier than the exact idle timeout.
func (s *Store) ResolveSession(ctx context.Context, token string) (*Session, error) {
	hash, ok := secretHashOf(sessionPrefix, token)
	if !ok {
		return nil, fmt.Errorf("resolve session: %w", ErrInvalidCredentials)
	}
	db := s.db.WithContext(ctx)
	var row sessionRow
	if err := db.Where("token_hash = ? AND ended_at IS NULL", hash).Take(&row).Error; err != nil {
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return nil, fmt.Errorf("resolve session: %w", ErrInvalidCredentials)
		}
		return nil, fmt.Errorf("resolve session: %w", err)
	}
	if subtle.ConstantTimeCompare([]byte(row.TokenHash), []byte(hash)) != 1 {
		return nil, fmt.Errorf("resolve session: %w", ErrInvalidCredentials)
	}
	now := s.opt.nowUTC()
	if !now.Before(row.ExpiresAt) || !now.Before(row.LastSeenAt.Add(s.opt.sessionIdle)) {
		return nil, fmt.Errorf("resolve session: %w: %w", ErrInvalidCredentials, ErrSessionExpired)
	}
	var user userRow
	if err := db.Where("id = ?", row.UserID).Take(&user).Error; err != nil {
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return nil, fmt.Errorf("resolve session: %w", ErrInvalidCredentials)
		}
		return nil, fmt.Errorf("resolve session: %w", err)
	}
	if !user.IsActive {
		return nil, fmt.Errorf("resolve session: %w", ErrInactive)
	}
	if now.Sub(row.LastSeenAt) >= min(time.Minute, s.opt.sessionIdle/10) {
		err := db.Model(&sessionRow{}).Where("id = ? AND ended_at IS NULL", row.ID).
			UpdateColumn("last_seen_at", now).Error
		if err != nil {
			return nil, fmt.Errorf("resolve session: %w", err)
		}
		row.LastSeenAt = now
	}
	out := row.session()
	return &out, nil
}

// EndSession signs out of the session of token (logout): it ends at once,
// for good. Audited as TypeLogout with the session's ID. A malformed,
// unknown or already ended token gives ErrInvalidCredentials; an expired
// one can still be ended.
func (s *Store) EndSession(ctx context.Context, token string) error {
	hash, ok := secretHashOf(sessionPrefix, token)
	if !ok {
		return fmt.Errorf("end session: %w", ErrInvalidCredentials)
	}
	err := dbx.Tx(ctx, s.db, func(tx *gorm.DB) error {
		var row sessionRow
		if err := forUpdate(tx).Where("token_hash = ? AND ended_at IS NULL", hash).Take(&row).Error; err != nil {
			if errors.Is(err, gorm.ErrRecordNotFound) {
				return ErrInvalidCredentials
			}
			return err
		}
		now := s.opt.nowUTC()
		res := tx.Model(&sessionRow{}).Where("id = ? AND ended_at IS NULL", row.ID).
			UpdateColumns(map[string]any{"ended_at": now, "end_cause": EndLogout})
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return ErrInvalidCredentials // ended meanwhile
		}
		return s.log.RecordTx(ctx, tx, audit.Event{
			Type: audit.TypeLogout, ActorID: row.UserID, UserID: row.UserID,
			Details: map[string]any{"session_id": row.ID},
		})
	})
	if err != nil {
		return fmt.Errorf("end session: %w", err)
	}
	return nil
}

// EndAll ends every session of user userID (sign out everywhere, say after
// a suspected compromise) and returns how many were live. Audited as
// TypeSessionsEnded with the sessions' IDs. ErrNotFound for an unknown or
// deleted user.
func (s *Store) EndAll(ctx context.Context, userID string) (int, error) {
	if err := validateID(userID, "user id"); err != nil {
		return 0, fmt.Errorf("end sessions: %w", err)
	}
	var n int
	err := dbx.Tx(ctx, s.db, func(tx *gorm.DB) error {
		if _, err := lockUser(tx, userID); err != nil {
			return err
		}
		ids, err := s.endSessionsTx(tx, userID, EndAll)
		if err != nil {
			return err
		}
		n = len(ids)
		return s.log.RecordTx(ctx, tx, audit.Event{
			Type: audit.TypeSessionsEnded, UserID: userID,
			Details: map[string]any{"cause": EndAll, "sessions": ids},
		})
	})
	if err != nil {
		return 0, fmt.Errorf("end sessions of %q: %w", userID, err)
	}
	return n, nil
}

// endSessionsTx ends, inside tx, every session of userID that has not
// ended, and returns their IDs. Expired sessions end too, so nothing is
// left open.
func (s *Store) endSessionsTx(tx *gorm.DB, userID, cause string) ([]string, error) {
	ids := []string{}
	if err := tx.Model(&sessionRow{}).Where("user_id = ? AND ended_at IS NULL", userID).
		Order("id").Pluck("id", &ids).Error; err != nil {
		return nil, fmt.Errorf("end sessions: %w", err)
	}
	if len(ids) == 0 {
		return ids, nil
	}
	err := tx.Model(&sessionRow{}).Where("id IN ?", ids).
		UpdateColumns(map[string]any{"ended_at": s.opt.nowUTC(), "end_cause": cause}).Error
	if err != nil {
		return nil, fmt.Errorf("end sessions: %w", err)
	}
	return ids, nil
}

// Sessions lists the live sessions of user userID (not ended, not
// expired), oldest first, without tokens. An unknown or deleted user has
// none.
func (s *Store) Sessions(ctx context.Context, userID string) ([]Session, error) {
	db, live, err := s.owner(ctx, userID)
	if err != nil {
		return nil, fmt.Errorf("list sessions: %w", err)
	}
	out := []Session{}
	if !live {
		return out, nil
	}
	now := s.opt.nowUTC()
	var rows []sessionRow
	if err := db.Where("user_id = ? AND ended_at IS NULL AND expires_at > ? AND last_seen_at > ?",
		userID, now, now.Add(-s.opt.sessionIdle)).Order("created_at, id").Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("list sessions: %w", err)
	}
	for i := range rows {
		out = append(out, rows[i].session())
	}
	return out, nil
}

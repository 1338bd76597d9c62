package access

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/civicstack/townhall/audit"
	"github.com/civicstack/townhall/internal/dbx"
)

// SessionsTable holds impersonation sessions.
const SessionsTable = "townhall_impersonation_sessions"

// DefaultImpersonationTTL is the lifetime of a session started with ttl 0.
const DefaultImpersonationTTL = time.Hour

const tokenPrefix = "thi_"

// sessionRow is an impersonation session as stored: only the SHA-256 of
// its token (256 random bits, so a fast hash suffices).
type sessionRow struct {
	ID        string     `gorm:"primaryKey;size:64"`
	TokenHash string     `gorm:"size:64;not null;uniqueIndex:idx_townhall_sessions_token"`
	AdminID   string     `gorm:"size:64;not null;index:idx_townhall_sessions_admin"`
	TargetID  string     `gorm:"size:64;not null;index:idx_townhall_sessions_target"`
	Reason    string     `gorm:"size:500;not null"`
	CreatedAt time.Time  `gorm:"precision:6;not null"`
	ExpiresAt time.Time  `gorm:"precision:6;not null"`
	EndedAt   *time.Time `gorm:"precision:6"`
}

func (sessionRow) TableName() string { return SessionsTable }

// sessionState is a session as the snapshot holds it.
type sessionState struct {
	hash          [32]byte
	admin, target string
	expires       time.Time
}

// sessions are the live (not ended) impersonation sessions by token hash.
type sessions map[string]sessionState

// pair returns whether a session of admin impersonating target is live at now.
func (ss sessions) pair(admin, target string, now time.Time) bool {
	for _, s := range ss {
		if s.admin == admin && s.target == target && now.Before(s.expires) {
			return true
		}
	}
	return false
}

func loadSessions(ctx context.Context, db *gorm.DB) (sessions, error) {
	var rows []sessionRow
	if err := db.WithContext(ctx).Where("ended_at IS NULL").Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("load impersonation sessions: %w", err)
	}
	out := make(sessions, len(rows))
	for _, r := range rows {
		var h [32]byte
		if b, err := hex.DecodeString(r.TokenHash); err == nil && len(b) == 32 {
			copy(h[:], b)
		}
		out[r.TokenHash] = sessionState{hash: h, admin: r.AdminID, target: r.TargetID, expires: r.ExpiresAt}
	}
	return out, nil
}

// refreshSessions reloads the live sessions.
func (c *Checker) refreshSessions(ctx context.Context) error {
	return c.publish(func(next *snapshot) error {
		ss, err := loadSessions(ctx, c.db)
		if err != nil {
			return err
		}
		next.sessions = ss
		return nil
	})
}

// liveImpersonation checks that a subject carrying an ImpersonatorID
// matches a live session whose admin is still an active super admin.
func (c *Checker) liveImpersonation(snap *snapshot, s Subject) error {
	if !snap.sessions.pair(s.ImpersonatorID, s.UserID, c.now()) {
		return ErrInvalidToken
	}
	admin, ok := snap.users.get(s.ImpersonatorID)
	if !ok || admin.deleted || !admin.active || !admin.superAdmin {
		return ErrInvalidToken
	}
	return nil
}

// Impersonate starts a session in which actor, an active super admin, acts
// as targetUserID with all of the target's restrictions. It returns an
// opaque token (256 random bits; only its hash is stored) for
// ResolveImpersonation. Never of another super admin or a technical user,
// never nested, always with a reason; ttl 0 means one hour and ttl may not
// exceed the configured maximum. The session ends on StopImpersonation,
// expiry, the admin losing the flag or being deactivated, or the target
// being deleted.
func (a *Admin) Impersonate(ctx context.Context, actor Subject, targetUserID, reason string, ttl time.Duration) (string, error) {
	ch := change{typ: audit.TypeImpersonationStart, userID: targetUserID, details: map[string]any{"reason": reason}}
	reason = strings.TrimSpace(reason)
	if reason == "" || len(reason) > 500 {
		return "", fmt.Errorf("%w: a reason of 1-500 characters is required", ErrInvalidInput)
	}
	if ttl == 0 {
		ttl = DefaultImpersonationTTL
	}
	if ttl < 0 || ttl > a.maxTTL {
		return "", fmt.Errorf("%w: ttl must be within (0, %s]", ErrInvalidInput, a.maxTTL)
	}
	var denied error
	if err := a.snapshotRead(func(snap *snapshot) error {
		target, err := snap.liveUser(targetUserID)
		if err != nil {
			return err
		}
		st, err := a.resolveActor(snap, actor)
		switch {
		case err != nil:
			denied = err
		case actor.ImpersonatorID != "":
			denied = fmt.Errorf("%w: impersonation is never nested", ErrForbidden)
		case !st.superAdmin:
			denied = fmt.Errorf("%w: only active super admins impersonate", ErrForbidden)
		case target.superAdmin:
			denied = fmt.Errorf("%w: super admins are never impersonated", ErrForbidden)
		case target.technical:
			denied = fmt.Errorf("%w: technical users are never impersonated", ErrForbidden)
		case actor.UserID == targetUserID:
			denied = fmt.Errorf("%w: cannot impersonate oneself", ErrForbidden)
		}
		return nil
	}); err != nil {
		return "", err
	}
	if denied != nil {
		return "", a.refuse(ctx, actor, ch, denied)
	}
	var secret [32]byte
	if _, err := rand.Read(secret[:]); err != nil {
		return "", fmt.Errorf("impersonate: %w", err)
	}
	token := tokenPrefix + base64.RawURLEncoding.EncodeToString(secret[:])
	sum := sha256.Sum256([]byte(token))
	now := a.now().UTC().Truncate(time.Microsecond)
	row := sessionRow{
		ID: dbx.NewID(), TokenHash: hex.EncodeToString(sum[:]), AdminID: actor.UserID, TargetID: targetUserID,
		Reason: reason, CreatedAt: now, ExpiresAt: now.Add(ttl),
	}
	ch.details["session"] = row.ID
	ch.details["expires_at"] = row.ExpiresAt.Format(time.RFC3339Nano)
	if err := a.apply(ctx, actor, ch, func(tx *gorm.DB) error { return tx.Create(&row).Error }); err != nil {
		return "", err
	}
	if err := a.c.refreshSessions(ctx); err != nil {
		return "", err
	}
	return token, nil
}

// ResolveImpersonation returns the subject a token stands for:
// Subject{UserID: target, ImpersonatorID: admin}. An expired, stopped,
// unknown or forged token, an admin who is no longer an active super admin,
// or a deleted target give ErrInvalidToken.
func (a *Admin) ResolveImpersonation(ctx context.Context, token string) (Subject, error) {
	snap := a.c.snapshot()
	sess, ok := a.c.lookupSession(snap, token)
	if !ok {
		return Subject{}, ErrInvalidToken
	}
	s := Subject{UserID: sess.target, ImpersonatorID: sess.admin}
	if err := a.c.liveImpersonation(snap, s); err != nil {
		return Subject{}, err
	}
	if t, ok := snap.users.get(sess.target); !ok || t.deleted {
		return Subject{}, ErrInvalidToken
	}
	return s, nil
}

// lookupSession finds the live session of token, comparing hashes in
// constant time.
func (c *Checker) lookupSession(snap *snapshot, token string) (sessionState, bool) {
	if !strings.HasPrefix(token, tokenPrefix) || len(token) != len(tokenPrefix)+43 {
		return sessionState{}, false
	}
	sum := sha256.Sum256([]byte(token))
	sess, ok := snap.sessions[hex.EncodeToString(sum[:])]
	if !ok || subtle.ConstantTimeCompare(sess.hash[:], sum[:]) != 1 || !c.now().Before(sess.expires) {
		return sessionState{}, false
	}
	return sess, true
}

// StopImpersonation ends the session of token. Stopping an unknown,
// expired or stopped token gives ErrInvalidToken.
func (a *Admin) StopImpersonation(ctx context.Context, token string) error {
	sess, ok := a.c.lookupSession(a.c.snapshot(), token)
	if !ok {
		return ErrInvalidToken
	}
	actor := Subject{UserID: sess.admin}
	ch := change{typ: audit.TypeImpersonationStop, userID: sess.target}
	sum := sha256.Sum256([]byte(token))
	now := a.now().UTC()
	if err := a.apply(ctx, actor, ch, func(tx *gorm.DB) error {
		return tx.Model(&sessionRow{}).Where("token_hash = ? AND ended_at IS NULL", hex.EncodeToString(sum[:])).
			Update("ended_at", now).Error
	}); err != nil {
		return err
	}
	return a.c.refreshSessions(ctx)
}

// endSessionsTx ends every session in which userID is admin or target.
func endSessionsTx(tx *gorm.DB, userID string, now time.Time) error {
	err := tx.Model(&sessionRow{}).Where("(admin_id = ? OR target_id = ?) AND ended_at IS NULL", userID, userID).
		Update("ended_at", now.UTC()).Error
	if err != nil {
		return fmt.Errorf("end impersonation sessions: %w", err)
	}
	return nil
}

package access

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"gorm.io/gorm"

	"github.com/civicstack/townhall/audit"
	"github.com/civicstack/townhall/internal/dbx"
	"github.com/civicstack/townhall/internal/snapshot"
	"github.com/civicstack/townhall/users"
)

// Impersonation: an active super admin acts as another user, with every one
// of that user's restrictions, through an opaque token.
//
// The token is "thi_" followed by 256 random bits in unpadded base64url. Only
// its SHA-256 is stored (the token has full entropy, so a fast hash is
// enough) and looked up; the stored hash is then compared in constant time.
// The snapshot holds the sessions that have not ended, so resolving a token
// and checking an impersonated subject never touch the database.
//
// A session is live while it has not ended (StopImpersonation, or its admin
// losing the flag, being deactivated or deleted, or its target being
// deleted: each ends it in the database, for good), has not expired, its
// admin is an active interactive super admin and its target a live user who
// is neither a super admin nor a technical user.

// SessionsTable holds impersonation sessions.
const SessionsTable = snapshot.SessionsTable

// DefaultImpersonationTTL is the lifetime of a session started with ttl 0
// (capped by the configured maximum).
const DefaultImpersonationTTL = time.Hour

// MaxImpersonationReason is the longest reason Impersonate accepts, in
// characters.
const MaxImpersonationReason = 500

const (
	tokenPrefix = "thi_"
	tokenLen    = len(tokenPrefix) + 43 // 32 bytes in unpadded base64url
)

// refreshSessions reloads the sessions that have not ended. Expired ones
// stay in memory (lookups refuse them): the refresh may run on the sync
// goroutine, which never reads the injected clock.
func (c *Checker) refreshSessions(ctx context.Context) error {
	return c.refresh(ctx, snapshot.Parts{Sessions: true})
}

// liveImpersonation checks that a subject carrying an ImpersonatorID
// matches a live session (see the top of this file).
func (c *Checker) liveImpersonation(snap *snapshot.Snapshot, s Subject) error {
	_, err := c.impersonator(snap, s.ImpersonatorID, s.UserID)
	return err
}

// impersonator returns the state of the admin of a live session in which
// adminID impersonates targetID, or ErrInvalidToken.
func (c *Checker) impersonator(snap *snapshot.Snapshot, adminID, targetID string) (*snapshot.UserState, error) {
	if !snap.Sessions.Pair(adminID, targetID, c.now()) {
		return nil, fmt.Errorf("%w: no live session of %q impersonating %q", ErrInvalidToken, adminID, targetID)
	}
	admin, ok := snap.Users.Get(adminID)
	if !ok || admin.Deleted || !admin.Active || !admin.SuperAdmin || admin.Technical {
		return nil, fmt.Errorf("%w: %q is no longer an active super admin", ErrInvalidToken, adminID)
	}
	target, ok := snap.Users.Get(targetID)
	if !ok || target.Deleted || target.SuperAdmin || target.Technical {
		return nil, fmt.Errorf("%w: %q can no longer be impersonated", ErrInvalidToken, targetID)
	}
	return admin, nil
}

// Impersonate starts a session in which actor, an active super admin, acts
// as targetUserID with all of the target's restrictions (no super admin
// bypass), and returns its token for ResolveImpersonation. Only the token's
// hash is stored: the token is shown once.
//
// Never of another super admin or a technical user, never of oneself, never
// nested (an impersonated actor cannot impersonate), always with a reason
// (1-500 characters, no control characters other than tab and newline).
// ttl 0 means DefaultImpersonationTTL capped by the configured maximum
// (townhall.WithMaxImpersonationTTL); a negative ttl or one above the
// maximum is ErrInvalidInput. An unknown or deleted target is
// users.ErrNotFound. A refusal matches ErrForbidden and is audited; a
// start is audited as impersonation_start (ActorID the admin, UserID the
// target, the reason and session ID in its details).
//
// The session ends on StopImpersonation, on expiry, when the admin loses
// the super admin flag, is deactivated or deleted, or when the target is
// deleted; it never comes back. While the target is a super admin (made
// one after the start) the session is refused.
func (a *Admin) Impersonate(ctx context.Context, actor Subject, targetUserID, reason string, ttl time.Duration) (string, error) {
	reason = strings.TrimSpace(reason)
	if err := checkReason(reason); err != nil {
		return "", err
	}
	ttl, err := a.impersonationTTL(ttl)
	if err != nil {
		return "", err
	}
	ch := change{typ: audit.TypeImpersonationStart, userID: targetUserID, details: map[string]any{"reason": reason}}
	var denied error
	if err := a.snapshotRead(func(snap *snapshot.Snapshot) error {
		target, err := liveUser(snap, targetUserID)
		if err != nil {
			return err
		}
		denied = a.mayImpersonate(snap, actor, targetUserID, target)
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
	row := snapshot.SessionRow{
		ID: dbx.NewID(), TokenHash: hex.EncodeToString(sum[:]), AdminID: actor.UserID, TargetID: targetUserID,
		Reason: reason, CreatedAt: now, ExpiresAt: now.Add(ttl),
	}
	ch.details["session"] = row.ID
	ch.details["expires_at"] = row.ExpiresAt.Format(time.RFC3339Nano)
	err = a.apply(ctx, actor, ch, func(tx *gorm.DB) error {
		// The snapshot may lag a concurrent change of either user: re-check
		// the rows under lock, so that a session cannot be created after
		// the admin's flag was removed (which ends their sessions).
		if err := recheckImpersonation(tx, actor.UserID, targetUserID); err != nil {
			return err
		}
		if err := tx.Create(&row).Error; err != nil {
			return fmt.Errorf("write impersonation session: %w", err)
		}
		return nil
	})
	if errors.Is(err, ErrForbidden) {
		return "", a.refuse(ctx, actor, ch, err)
	}
	if err != nil {
		return "", err
	}
	if err := a.c.refreshSessions(ctx); err != nil {
		return "", err
	}
	return token, nil
}

// mayImpersonate applies the rules of Impersonate to the snapshot.
func (a *Admin) mayImpersonate(snap *snapshot.Snapshot, actor Subject, targetID string, target *snapshot.UserState) error {
	st, err := a.resolveActor(snap, actor)
	switch {
	case err != nil:
		return err
	case actor.ImpersonatorID != "":
		return fmt.Errorf("%w: impersonation is never nested", ErrForbidden)
	case st.system || !st.superAdmin:
		return fmt.Errorf("%w: only active super admins impersonate", ErrForbidden)
	case actor.UserID == targetID:
		return fmt.Errorf("%w: cannot impersonate oneself", ErrForbidden)
	case target.SuperAdmin:
		return fmt.Errorf("%w: super admins are never impersonated", ErrForbidden)
	case target.Technical:
		return fmt.Errorf("%w: technical users are never impersonated", ErrForbidden)
	}
	return nil
}

// recheckImpersonation re-reads the admin and the target inside tx, locking
// their rows, and refuses when the admin is no longer an active interactive
// super admin or the target is gone, a super admin or technical. The admin
// is locked first, as Admin's guarded changes lock super admins before any
// other user, so the two never wait on each other in a cycle.
func recheckImpersonation(tx *gorm.DB, adminID, targetID string) error {
	lock := " FOR UPDATE"
	if dbx.DialectOf(tx) == dbx.SQLite {
		lock = "" // one writer at a time
	}
	type userRow struct {
		Kind         string
		IsActive     bool
		IsSuperAdmin bool
	}
	read := func(id string) (*userRow, error) {
		var rows []userRow
		err := tx.Raw("SELECT kind, is_active, is_super_admin FROM "+users.UsersTable+
			" WHERE id = ? AND deleted_at IS NULL"+lock, id).Scan(&rows).Error
		if err != nil {
			return nil, fmt.Errorf("read user: %w", err)
		}
		if len(rows) == 0 {
			return nil, nil
		}
		return &rows[0], nil
	}
	admin, err := read(adminID)
	if err != nil {
		return err
	}
	if admin == nil || !admin.IsActive || !admin.IsSuperAdmin || admin.Kind == string(users.Technical) {
		return fmt.Errorf("%w: %q is no longer an active super admin", ErrForbidden, adminID)
	}
	target, err := read(targetID)
	if err != nil {
		return err
	}
	if target == nil || target.IsSuperAdmin || target.Kind == string(users.Technical) {
		return fmt.Errorf("%w: %q can no longer be impersonated", ErrForbidden, targetID)
	}
	return nil
}

// checkReason validates an impersonation reason (already trimmed).
func checkReason(reason string) error {
	if reason == "" {
		return fmt.Errorf("%w: impersonation needs a reason", ErrInvalidInput)
	}
	if !utf8.ValidString(reason) || utf8.RuneCountInString(reason) > MaxImpersonationReason {
		return fmt.Errorf("%w: the reason must be valid text of at most %d characters", ErrInvalidInput, MaxImpersonationReason)
	}
	if strings.IndexFunc(reason, func(r rune) bool { return unicode.IsControl(r) && r != '\n' && r != '\t' }) >= 0 {
		return fmt.Errorf("%w: the reason contains control characters", ErrInvalidInput)
	}
	return nil
}

// impersonationTTL resolves ttl 0 to the default (capped by the maximum)
// and refuses negative values and values above the maximum.
func (a *Admin) impersonationTTL(ttl time.Duration) (time.Duration, error) {
	if ttl == 0 {
		return min(DefaultImpersonationTTL, a.maxTTL), nil
	}
	if ttl < 0 || ttl > a.maxTTL {
		return 0, fmt.Errorf("%w: impersonation ttl %s outside (0, %s]", ErrInvalidInput, ttl, a.maxTTL)
	}
	return ttl, nil
}

// ResolveImpersonation returns the subject a token stands for:
// Subject{UserID: target, ImpersonatorID: admin}. An empty, garbled,
// forged, unknown, expired or stopped token, or a session that is no
// longer live (see Impersonate) gives ErrInvalidToken. It reads only the
// in-memory snapshot.
//
// The token is a bearer credential of the admin: hosts should accept it
// only from the admin's own signed-in session (ImpersonationHeader does).
func (a *Admin) ResolveImpersonation(ctx context.Context, token string) (Subject, error) {
	snap := a.c.snapshot()
	sess, ok := a.c.lookupSession(snap, token)
	if !ok {
		return Subject{}, ErrInvalidToken
	}
	s := Subject{UserID: sess.Target, ImpersonatorID: sess.Admin}
	if err := a.c.liveImpersonation(snap, s); err != nil {
		return Subject{}, err
	}
	return s, nil
}

// lookupSession finds the unexpired session of token, comparing hashes in
// constant time. The caller holds the read lock.
func (c *Checker) lookupSession(snap *snapshot.Snapshot, token string) (snapshot.SessionState, bool) {
	if len(token) != tokenLen || !strings.HasPrefix(token, tokenPrefix) {
		return snapshot.SessionState{}, false
	}
	sum := sha256.Sum256([]byte(token))
	sess, ok := snap.Sessions.ByHash[hex.EncodeToString(sum[:])]
	if !ok || subtle.ConstantTimeCompare(sess.Hash[:], sum[:]) != 1 || !c.now().Before(sess.Expires) {
		return snapshot.SessionState{}, false
	}
	return sess, true
}

// StopImpersonation ends the session of token for good. It is audited as
// impersonation_stop with the admin as actor. An empty, garbled, forged,
// unknown, expired or already stopped token gives ErrInvalidToken. A
// session that is no longer live for another reason (its admin lost the
// flag, say) can still be stopped.
func (a *Admin) StopImpersonation(ctx context.Context, token string) error {
	sess, ok := a.c.lookupSession(a.c.snapshot(), token)
	if !ok {
		return ErrInvalidToken
	}
	actor := Subject{UserID: sess.Admin}
	ch := change{typ: audit.TypeImpersonationStop, userID: sess.Target, details: map[string]any{"session": sess.ID, "admin": sess.Admin, "cause": "stopped"}}
	now := a.now().UTC().Truncate(time.Microsecond)
	err := a.apply(ctx, actor, ch, func(tx *gorm.DB) error {
		res := tx.Model(&snapshot.SessionRow{}).Where("id = ? AND ended_at IS NULL", sess.ID).Update("ended_at", now)
		if res.Error != nil {
			return fmt.Errorf("end impersonation session: %w", res.Error)
		}
		if res.RowsAffected == 0 {
			return ErrInvalidToken // ended meanwhile, here or in another process
		}
		return nil
	})
	if rerr := a.c.refreshSessions(ctx); err == nil {
		err = rerr
	}
	return err
}

// endSessionsTx ends every session in which userID is admin or target.
func endSessionsTx(tx *gorm.DB, userID string, now time.Time) error {
	err := tx.Model(&snapshot.SessionRow{}).Where("(admin_id = ? OR target_id = ?) AND ended_at IS NULL", userID, userID).
		Update("ended_at", now.UTC().Truncate(time.Microsecond)).Error
	if err != nil {
		return fmt.Errorf("end impersonation sessions: %w", err)
	}
	return nil
}

// endAdminSessionsTx ends, inside tx, the sessions of admin userID that
// have not ended, and records an impersonation_stop event (cause
// "admin_revoked") for each one that had not expired yet. Admin calls it in
// every change that stops userID being an active super admin, so that a
// session never comes back with the flag or the activity. Call
// refreshSessions after the commit.
func (a *Admin) endAdminSessionsTx(ctx context.Context, tx *gorm.DB, actor Subject, userID string) error {
	return a.endSessionsWhereTx(ctx, tx, actor, "admin_id", userID, "admin_revoked")
}

// endSessionsWhereTx ends the sessions whose column (admin_id or
// target_id) is userID, with an impersonation_stop event per unexpired one.
func (a *Admin) endSessionsWhereTx(ctx context.Context, tx *gorm.DB, actor Subject, column, userID, cause string) error {
	now := a.now().UTC().Truncate(time.Microsecond)
	var rows []snapshot.SessionRow
	if err := tx.Where(column+" = ? AND ended_at IS NULL", userID).Order("id").Find(&rows).Error; err != nil {
		return fmt.Errorf("read impersonation sessions: %w", err)
	}
	if len(rows) == 0 {
		return nil
	}
	ids := make([]string, len(rows))
	for i, r := range rows {
		ids[i] = r.ID
	}
	if err := tx.Model(&snapshot.SessionRow{}).Where("id IN ?", ids).Update("ended_at", now).Error; err != nil {
		return fmt.Errorf("end impersonation sessions: %w", err)
	}
	for _, r := range rows {
		if !now.Before(r.ExpiresAt) {
			continue // it had already died of old age
		}
		ch := change{typ: audit.TypeImpersonationStop, userID: r.TargetID,
			details: map[string]any{"session": r.ID, "admin": r.AdminID, "cause": cause}}
		if err := a.audit.RecordTx(ctx, tx, ch.event(actor, true, "")); err != nil {
			return err
		}
	}
	return nil
}

// ImpersonationHeader returns net/http middleware for hosts that let super
// admins impersonate: when a request carries an impersonation token in
// header name, the subject in the request context (put there by the host's
// own authentication with WithSubject) must be the session's admin, signed
// in as themselves; the middleware then replaces it by the impersonated
// subject, so that Require, Check and the filters apply the target's
// restrictions and handlers find the admin with ImpersonatorFrom. A request
// without the header passes unchanged. A token that does not resolve
// (ResolveImpersonation), or that belongs to another admin than the
// signed-in subject, is answered 401 with an RFC 9457 body. Place it after
// the host's authentication and before Require.
func (a *Admin) ImpersonationHeader(name string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			token := r.Header.Get(name)
			if token == "" {
				next.ServeHTTP(w, r)
				return
			}
			ctx := r.Context()
			signedIn, _ := SubjectFrom(ctx)
			s, err := a.ResolveImpersonation(ctx, token)
			if err != nil || signedIn.system || signedIn.ImpersonatorID != "" ||
				subtle.ConstantTimeCompare([]byte(signedIn.UserID), []byte(s.ImpersonatorID)) != 1 {
				problem(w, http.StatusUnauthorized, "Unauthorized", "invalid impersonation token")
				return
			}
			next.ServeHTTP(w, r.WithContext(WithSubject(ctx, s)))
		})
	}
}

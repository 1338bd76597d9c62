package snapshot

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// SessionsTable holds impersonation sessions.
const SessionsTable = "townhall_impersonation_sessions"

// SessionRow is an impersonation session as stored: only the SHA-256 of
// its token.
type SessionRow struct {
	ID        string     `gorm:"primaryKey;size:64"`
	TokenHash string     `gorm:"size:64;not null;uniqueIndex:idx_townhall_sessions_token"`
	AdminID   string     `gorm:"size:64;not null;index:idx_townhall_sessions_admin"`
	TargetID  string     `gorm:"size:64;not null;index:idx_townhall_sessions_target"`
	Reason    string     `gorm:"size:500;not null"`
	CreatedAt time.Time  `gorm:"precision:6;not null"`
	ExpiresAt time.Time  `gorm:"precision:6;not null"`
	EndedAt   *time.Time `gorm:"precision:6"`
}

// TableName is SessionsTable.
func (SessionRow) TableName() string { return SessionsTable }

// SessionState is a session as the snapshot holds it.
type SessionState struct {
	ID            string
	Hash          [32]byte
	Admin, Target string
	Expires       time.Time
}

// Sessions are the sessions that have not ended, by hex token hash, and
// the latest expiry of each (admin, target) pair, so that checking an
// impersonated subject is one map lookup. The zero value holds none.
type Sessions struct {
	ByHash map[string]SessionState
	byPair map[sessionPair]time.Time
}

// sessionPair is an admin and the user it impersonates.
type sessionPair struct{ Admin, Target string }

// Pair returns whether an unexpired session of admin impersonating target
// exists at now.
func (ss Sessions) Pair(admin, target string, now time.Time) bool {
	return now.Before(ss.byPair[sessionPair{admin, target}])
}

// loadSessions reads the sessions that have not ended.
func loadSessions(ctx context.Context, db *gorm.DB) (Sessions, error) {
	var rows []SessionRow
	if err := db.WithContext(ctx).Where("ended_at IS NULL").Find(&rows).Error; err != nil {
		return Sessions{}, fmt.Errorf("load impersonation sessions: %w", err)
	}
	out := Sessions{ByHash: make(map[string]SessionState, len(rows)), byPair: map[sessionPair]time.Time{}}
	for _, r := range rows {
		b, err := hex.DecodeString(r.TokenHash)
		if err != nil || len(b) != sha256.Size {
			continue // not a hash this package wrote: no token can match it
		}
		var h [32]byte
		copy(h[:], b)
		out.ByHash[r.TokenHash] = SessionState{ID: r.ID, Hash: h, Admin: r.AdminID, Target: r.TargetID, Expires: r.ExpiresAt}
		k := sessionPair{r.AdminID, r.TargetID}
		if r.ExpiresAt.After(out.byPair[k]) {
			out.byPair[k] = r.ExpiresAt
		}
	}
	return out, nil
}

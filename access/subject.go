package access

import (
	"context"

	"github.com/civicstack/townhall/internal/actor"
)

// Subject is who asks: a user, optionally impersonated by a super admin.
// The zero Subject (empty UserID) is anonymous.
type Subject struct {
	UserID         string
	ImpersonatorID string
	// system marks System(); it cannot be set outside this package, so no
	// user, whatever its ID, can pose as the bootstrap actor.
	system bool
}

// Anonymous returns the anonymous subject.
func Anonymous() Subject { return Subject{} }

// System returns the in-process bootstrap actor used for seeding,
// migrations and tests. It passes every permission rule of Admin (the
// invariants still bind it) and is audited as "system". It is never a
// subject of Check: it names no user.
func System() Subject { return Subject{UserID: actor.SystemID, system: true} }

// IsAnonymous reports whether s names no user.
func (s Subject) IsAnonymous() bool { return s.UserID == "" }

// IsSystem reports whether s is System().
func (s Subject) IsSystem() bool { return s.system }

// WithSubject returns a copy of ctx carrying s. Middleware reads it with
// SubjectFrom; store-level writes are audited with it.
func WithSubject(ctx context.Context, s Subject) context.Context {
	return actor.With(ctx, actor.Actor{UserID: s.UserID, ImpersonatorID: s.ImpersonatorID, System: s.system})
}

// SubjectFrom returns the subject carried by ctx and whether there was one.
func SubjectFrom(ctx context.Context) (Subject, bool) {
	a, ok := actor.From(ctx)
	return Subject{UserID: a.UserID, ImpersonatorID: a.ImpersonatorID, system: a.System}, ok
}

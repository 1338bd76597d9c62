package access

import (
	"fmt"

	"github.com/civicstack/townhall/internal/snapshot"
	"github.com/civicstack/townhall/users"
)

// subject is a Subject resolved against a snapshot: steps 2-4 of SPEC §2,
// the one resolution checks, filters, handles and Admin share.
type subject struct {
	u   *snapshot.UserState // nil: anonymous
	imp *snapshot.UserState // the impersonator of a live session, nil when none
	// inactive: u is deleted or inactive, so it is denied everything (its
	// impersonation, if any, is not looked at).
	inactive bool
}

// superAdmin reports whether the subject passes every check: an active
// interactive super admin acting as itself.
func (s *subject) superAdmin() bool {
	return s.u != nil && !s.inactive && s.imp == nil && s.u.SuperAdmin && !s.u.Technical
}

// resolveSubject resolves s in snap: anonymous for an empty UserID;
// ErrInvalidInput for System() (it is no subject of what);
// users.ErrNotFound for an unknown user; ErrInvalidToken for an
// ImpersonatorID without a live session.
func (c *Checker) resolveSubject(snap *snapshot.Snapshot, s *Subject, what string) (subject, error) {
	if s.UserID == "" {
		return subject{}, nil
	}
	if s.system {
		return subject{}, fmt.Errorf("%w: System() is not a subject of %s", ErrInvalidInput, what)
	}
	u, ok := snap.Users.Get(s.UserID)
	if !ok {
		return subject{}, fmt.Errorf("%w: %q", users.ErrNotFound, s.UserID)
	}
	if u.Deleted || !u.Active {
		return subject{u: u, inactive: true}, nil
	}
	sub := subject{u: u}
	if s.ImpersonatorID != "" {
		imp, err := c.impersonator(snap, s.ImpersonatorID, s.UserID)
		if err != nil {
			return subject{}, err
		}
		sub.imp = imp
	}
	return sub, nil
}

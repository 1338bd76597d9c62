package access

import (
	"context"
	"fmt"

	"gorm.io/gorm"

	"github.com/civicstack/townhall/audit"
	"github.com/civicstack/townhall/internal/snapshot"
	"github.com/civicstack/townhall/internal/txwrite"
	"github.com/civicstack/townhall/users"
)

// Approve approves the user's profile at locationID (idempotent). The actor
// needs users:manage covering the location and must be able to grant every
// role the user holds there, and whatever the approval lets the user do
// (the profile may anchor grants above and below it).
func (a *Admin) Approve(ctx context.Context, actor Subject, userID, locationID string) error {
	return a.profileFlag(ctx, actor, audit.TypeApprove, userID, locationID, true, txwrite.SetProfileApproved)
}

// SetProfileActive activates or deactivates the user's profile at
// locationID (temporary deactivation: grants stay and count again on
// reactivation), under the rules of Approve: grants that went inert count
// again only when the actor could grant them.
func (a *Admin) SetProfileActive(ctx context.Context, actor Subject, userID, locationID string, active bool) error {
	return a.profileFlag(ctx, actor, audit.TypeProfileActive, userID, locationID, active, txwrite.SetProfileActive)
}

func (a *Admin) profileFlag(ctx context.Context, actor Subject, typ, userID, loc string, value bool,
	set func(context.Context, *gorm.DB, *users.ProfileStore, string, string, bool) error) error {
	var target *snapshot.UserState
	g := &guarded{
		ch:    change{typ: typ, userID: userID, location: loc, details: map[string]any{"value": value}},
		users: []string{userID},
		write: func(tx *gorm.DB) ([]string, error) { return nil, set(ctx, tx, a.profiles, userID, loc, value) },
	}
	return a.guard(ctx, actor, g, func(snap *snapshot.Snapshot) error {
		var err error
		if target, err = liveUser(snap, userID); err != nil {
			return err
		}
		if err := checkLocation(snap, loc); err != nil {
			return err
		}
		if _, ok := snap.Profile(target, loc); !ok {
			return fmt.Errorf("%w: no profile of %q at %q", users.ErrNotFound, userID, loc)
		}
		return nil
	}, func(snap *snapshot.Snapshot, st actorState) error {
		return mayManageProfile(snap, st, target, loc)
	})
}

// mayManageProfile checks Approve and SetProfileActive: users:manage
// covering the location, and every role the target holds there (every
// grant anchored at that profile) one the actor could grant.
func mayManageProfile(snap *snapshot.Snapshot, st actorState, target *snapshot.UserState, loc string) error {
	if !st.privileged() && !mayManage(snap, st.user, loc) {
		return fmt.Errorf("%w: no users:manage covering %q", ErrForbidden, loc)
	}
	for _, g := range target.Grants {
		if g.Platform() {
			continue
		}
		gl := snap.GrantAt(target, &g)
		if _, at := snap.Anchor(target, gl); at != loc {
			continue
		}
		if err := mayGrant(snap, st, int(g.Role), gl); err != nil {
			return fmt.Errorf("target holds %s at %q: %w", snap.Reg.Roles[g.Role].Name, gl, err)
		}
	}
	return nil
}

package access

import (
	"context"
	"fmt"

	"gorm.io/gorm"

	"github.com/civicstack/townhall/audit"
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
	var target *userState
	g := &guarded{
		ch:    change{typ: typ, userID: userID, location: loc, details: map[string]any{"value": value}},
		users: []string{userID},
		write: func(tx *gorm.DB) ([]string, error) { return nil, set(ctx, tx, a.profiles, userID, loc, value) },
	}
	return a.guard(ctx, actor, g, func(snap *snapshot) error {
		var err error
		if target, err = snap.liveUser(userID); err != nil {
			return err
		}
		if err := snap.checkLocation(loc); err != nil {
			return err
		}
		if _, ok := snap.profile(target, loc); !ok {
			return fmt.Errorf("%w: no profile of %q at %q", users.ErrNotFound, userID, loc)
		}
		return nil
	}, func(snap *snapshot, st actorState) error {
		return snap.mayManageProfile(st, target, loc)
	})
}

// mayManageProfile checks Approve and SetProfileActive: users:manage
// covering the location, and every role the target holds there (every
// grant anchored at that profile) one the actor could grant.
func (snap *snapshot) mayManageProfile(st actorState, target *userState, loc string) error {
	if !st.privileged() && !snap.mayManage(st.user, loc) {
		return fmt.Errorf("%w: no users:manage covering %q", ErrForbidden, loc)
	}
	for _, g := range target.grants {
		if g.platform() {
			continue
		}
		gl := snap.grantAt(target, &g)
		if _, at := snap.anchor(target, gl); at != loc {
			continue
		}
		if err := snap.mayGrant(st, int(g.role), gl); err != nil {
			return fmt.Errorf("target holds %s at %q: %w", snap.reg.roles[g.role].name, gl, err)
		}
	}
	return nil
}

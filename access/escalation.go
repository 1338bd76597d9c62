package access

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/civicstack/townhall/internal/policy"
	"github.com/civicstack/townhall/internal/snapshot"
)

// No escalation, judged on the result (SPEC §3). Every guarded Admin change
// builds, inside its transaction, the next snapshot state of each user it
// affects and compares what each of them may do before and after. A gain
// the actor could not grant refuses the whole change. The functions here
// read snapshots only; they do not care which method made the change.
//
// A permission is a module action at a place, with the categories it
// covers there:
//   - at a location ℓ: the union of the effective categories (SPEC §1) of
//     the anchor profiles of the user's counting grants at ℓ or above whose
//     role allows the action;
//   - at an organisation O, for affiliated actions: the same at O's
//     location, provided the user has a live link to O and O has the
//     module among its services;
//   - platform-wide ("*"): every category, from platform grants.
//
// Module enablement is ignored: permissions count as if every module were
// enabled, so that switching a module on is never a way round this rule
// and an actor's own permissions count wherever they hold them.

// catSet is a set of categories with a top: all means every category (and
// records with no category). A held permission with an empty set is a gate
// only: the module may be used there, but no record passes.
type catSet struct {
	all bool
	set snapshot.CategorySet
}

// addProfile adds the effective categories of profile p.
func (c *catSet) addProfile(snap *snapshot.Snapshot, p *snapshot.ProfileState) {
	if c.all {
		return
	}
	if snap.UnrestrictedCategories(p) {
		c.all, c.set = true, nil
		return
	}
	for cat := range effective(snap, p) {
		if c.set == nil {
			c.set = snapshot.CategorySet{}
		}
		c.set[cat] = struct{}{}
	}
}

// minus returns what c has and o lacks.
func (c catSet) minus(o catSet) catSet {
	switch {
	case o.all:
		return catSet{}
	case c.all:
		return c
	}
	var out catSet
	for cat := range c.set {
		if _, ok := o.set[cat]; !ok {
			if out.set == nil {
				out.set = snapshot.CategorySet{}
			}
			out.set[cat] = struct{}{}
		}
	}
	return out
}

func (c catSet) empty() bool { return !c.all && len(c.set) == 0 }

func (c catSet) String() string {
	if c.all {
		return "all categories"
	}
	cats := make([]string, 0, len(c.set))
	for cat := range c.set {
		cats = append(cats, cat)
	}
	slices.Sort(cats)
	return "categories [" + strings.Join(cats, " ") + "]"
}

// gain is one permission a user gains from a change.
type gain struct {
	user       string
	superAdmin bool   // the user becomes an active super admin
	action     int    // index into compiled.actions
	at         string // location ID, or "*" for platform-wide
	org        string // for an affiliated action's organisation dimension
	cats       catSet // the categories gained; empty: the gate alone
}

func (g gain) String(reg *snapshot.Compiled) string {
	if g.superAdmin {
		return fmt.Sprintf("%q would become a super admin", g.user)
	}
	a := reg.Actions[g.action]
	where := fmt.Sprintf("at %q", g.at)
	switch {
	case g.at == policy.PlatformDomain:
		where = "platform-wide"
	case g.org != "":
		where = fmt.Sprintf("for organisation %q", g.org)
	}
	what := g.cats.String()
	if g.cats.empty() {
		what = "the module gate"
	}
	return fmt.Sprintf("%q would gain %s:%s %s (%s)", g.user, a.Module, a.Action, where, what)
}

// activeUser reports whether u may use anything at all.
func activeUser(u *snapshot.UserState) bool { return u != nil && !u.Deleted && u.Active }

// topUser reports whether u is an active super admin: every check allows.
func topUser(u *snapshot.UserState) bool { return activeUser(u) && u.SuperAdmin && !u.Technical }

// heldAt returns whether u holds action ai at location loc through location
// grants, and with which categories. Platform grants are left out (the
// caller handles them as one platform-wide permission).
func heldAt(snap *snapshot.Snapshot, u *snapshot.UserState, ai int, loc string) (held bool, cats catSet) {
	if !activeUser(u) {
		return false, cats
	}
	if _, ok := snap.Tree.Get(loc); !ok {
		return false, cats
	}
	for _, g := range u.Grants {
		if g.Platform() || !snap.Reg.Roles[g.Role].Perms.Has(ai) ||
			!snap.Tree.IsWithin(loc, snap.GrantAt(u, &g)) {
			continue
		}
		p, _ := snap.AnchorAt(u, g.Loc)
		if p == nil || !p.Active || !p.Approved {
			continue
		}
		held = true
		cats.addProfile(snap, p)
	}
	return held, cats
}

// heldFor is heldAt for an affiliated action's organisation dimension: the
// user needs a live link (at now) to org, org needs the action's module
// among its services, and the permission is the one held at org's
// location.
func heldFor(snap *snapshot.Snapshot, u *snapshot.UserState, userID string, ai int, org string, now time.Time) (bool, catSet) {
	o := snap.Orgs[org]
	if o == nil {
		return false, catSet{}
	}
	if _, ok := o.Services[snap.Reg.Actions[ai].Module]; !ok {
		return false, catSet{}
	}
	live := false
	for _, w := range snap.Links[userID][org] {
		live = live || w.Live(now)
	}
	if !live {
		return false, catSet{}
	}
	return heldAt(snap, u, ai, o.Location)
}

// platformHolds reports whether active u holds action ai platform-wide.
func platformHolds(u *snapshot.UserState, ai int) bool {
	return activeUser(u) && u.HasPlatform(ai)
}

// gainsOf returns what user id gains from before to after. moved, when set,
// is a location whose subtree moved.
//
// Comparing at the locations of the user's grants (before and after) and
// at moved is enough: within one tree, the categories held at a location x
// are the union over the grants at x or above, so they equal those held
// at the deepest of those locations on x's path, and a location with none
// of them on its path holds nothing in either state. A move changes the
// path of the moved subtree only, above the moved location, which is
// therefore a comparison point as well.
func gainsOf(before, after *snapshot.Snapshot, id, moved string, now time.Time) []gain {
	ua, _ := after.Users.Get(id)
	if !activeUser(ua) {
		return nil
	}
	ub, _ := before.Users.Get(id)
	if topUser(ua) {
		if topUser(ub) {
			return nil
		}
		return []gain{{user: id, superAdmin: true}}
	}
	if topUser(ub) {
		return nil // held everything before
	}
	if !activeUser(ub) {
		ub = nil
	}
	var points []string
	actions := snapshot.NewPermSet(len(after.Reg.Actions))
	for _, u := range []*snapshot.UserState{ua, ub} {
		if u == nil {
			continue
		}
		for _, g := range u.Grants {
			actions.Union(after.Reg.Roles[g.Role].Perms)
			if !g.Platform() {
				points = append(points, after.GrantAt(u, &g))
			}
		}
	}
	if moved != "" {
		points = append(points, moved)
	}
	slices.Sort(points)
	points = slices.Compact(points)
	var orgs []string
	for _, s := range []*snapshot.Snapshot{after, before} {
		for org := range s.Links[id] {
			orgs = append(orgs, org)
		}
	}
	slices.Sort(orgs)
	orgs = slices.Compact(orgs)

	var out []gain
	for ai := range after.Reg.Actions {
		if !actions.Has(ai) || platformHolds(ub, ai) {
			continue
		}
		if platformHolds(ua, ai) {
			out = append(out, gain{user: id, action: ai, at: policy.PlatformDomain, cats: catSet{all: true}})
			continue // platform-wide covers every place
		}
		for _, loc := range points {
			ha, ca := heldAt(after, ua, ai, loc)
			if !ha {
				continue
			}
			hb, cb := heldAt(before, ub, ai, loc)
			if g := ca.minus(cb); !hb || !g.empty() {
				out = append(out, gain{user: id, action: ai, at: loc, cats: g})
			}
		}
		if !after.Reg.Actions[ai].Affiliated {
			continue
		}
		for _, org := range orgs {
			ha, ca := heldFor(after, ua, id, ai, org, now)
			if !ha {
				continue
			}
			hb, cb := heldFor(before, ub, id, ai, org, now)
			if g := ca.minus(cb); !hb || !g.empty() {
				out = append(out, gain{user: id, action: ai, at: after.Orgs[org].Location, org: org, cats: g})
			}
		}
	}
	return out
}

// mayGive reports whether the actor, as snap (the state before the change)
// knows them, could grant g:
//   - System() and super admins: everything;
//   - anyone else: never super admin, a platform-wide permission (those
//     come from platform roles) or an action that lists a reserved role;
//   - a platform_admin: everything else;
//   - anyone else: users:manage covering g's location, and the action
//     held there (counted as if every module were enabled) with at least
//     g's categories.
func mayGive(snap *snapshot.Snapshot, st actorState, g gain) error {
	if st.system || st.superAdmin {
		return nil
	}
	switch {
	case g.superAdmin:
		return fmt.Errorf("%w: %s: only super admins make super admins", ErrForbidden, g.String(snap.Reg))
	case g.at == policy.PlatformDomain:
		return fmt.Errorf("%w: %s: only super admins grant platform roles", ErrForbidden, g.String(snap.Reg))
	case snap.Reg.ReservedActions.Has(g.action):
		return fmt.Errorf("%w: %s: only super admins grant reserved permissions", ErrForbidden, g.String(snap.Reg))
	case st.platformAdmin:
		return nil
	case !mayManage(snap, st.user, g.at):
		return fmt.Errorf("%w: %s: the actor has no users:manage covering %q", ErrForbidden, g.String(snap.Reg), g.at)
	}
	if platformHolds(st.user, g.action) {
		return nil
	}
	held, own := heldAt(snap, st.user, g.action, g.at)
	if !held || !g.cats.minus(own).empty() {
		return fmt.Errorf("%w: %s, beyond the actor's own permissions there", ErrForbidden, g.String(snap.Reg))
	}
	return nil
}

// judge refuses a change from before to after unless the actor could grant
// everything that any of the affected users gains. Users outside affected
// must be unchanged between the two snapshots.
func judge(before, after *snapshot.Snapshot, st actorState, affected []string, moved string, now time.Time) error {
	if st.system || st.superAdmin {
		return nil
	}
	for _, id := range affected {
		for _, g := range gainsOf(before, after, id, moved, now) {
			if err := mayGive(before, st, g); err != nil {
				return err
			}
		}
	}
	return nil
}

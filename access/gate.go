package access

import (
	"context"
	"sync"

	"github.com/civicstack/townhall/internal/snapshot"
	"github.com/civicstack/townhall/location"
)

// CheckModule is the module gate with its reason: the decision that
// UserCanAccessModule reports as a bool, taken on Check's path. It asks
// Check (without a resource) in the municipalities where the subject could
// use the action, nearest to their grants first, and returns the first
// allow; if none allows, the denial that says most (in order: inactive
// user, not affiliated, category, profile not approved, profile inactive,
// module disabled, out of scope, no grant). Role and Domain name the grant
// that allowed. The decision is audited like Check's (denials always).
//
// Require without a municipality or resource option uses it, so a gate
// refusal is on record and the handler sees the real reason.
func (c *Checker) CheckModule(ctx context.Context, s Subject, module, action string) (Decision, error) {
	snap := c.snapshot()
	d, muni, err := c.decideModule(ctx, snap, s, module, action)
	if err != nil {
		d = deny(ReasonInvalid)
	}
	if !d.Allowed || c.auditAllowed {
		c.recordDecision(&s, &Request{Municipality: muni, Module: module, Action: action}, &d)
	}
	return d, err
}

// gateRank orders denials by how much they tell; unlisted reasons come
// last.
var gateRank = []Reason{
	ReasonUserInactive, ReasonNotAffiliated, ReasonCategory, ReasonProfileNotApproved,
	ReasonProfileInactive, ReasonModuleDisabled, ReasonOutOfScope, ReasonNoGrant,
}

func rank(r Reason) int {
	for i, x := range gateRank {
		if x == r {
			return i
		}
	}
	return len(gateRank)
}

// decideModule is CheckModule on a snapshot; it also returns the
// municipality whose decision it reports ("" for platform-wide).
func (c *Checker) decideModule(ctx context.Context, snap *snapshot.Snapshot, s Subject, module, action string) (Decision, string, error) {
	ai, err := actionIndex(snap.Reg, module, action)
	if err != nil {
		return Decision{}, "", err
	}
	act := &snap.Reg.Actions[ai]
	var (
		best     Decision
		bestMuni string
		asked    int
		seen     [4]string // the first municipalities asked, to skip repeats
	)
	// ask decides in municipality m and reports whether that settles it.
	ask := func(m string) (bool, error) {
		for i := 0; i < min(asked, len(seen)); i++ {
			if seen[i] == m {
				return false, nil
			}
		}
		d, err := c.decide(snap, &s, &Request{Municipality: m, Module: module, Action: action})
		if err != nil {
			best, bestMuni = Decision{}, m
			return true, err
		}
		if asked < len(seen) {
			seen[asked] = m
		}
		if asked == 0 || d.Allowed || rank(d.Reason) < rank(best.Reason) {
			best, bestMuni = d, m
		}
		asked++
		return d.Allowed, nil
	}
	if act.Platform {
		if done, err := ask(""); done {
			return best, bestMuni, err // super admins and platform grants
		}
	}
	if u, ok := snap.Users.Get(s.UserID); ok && !s.system {
		view := &snap.View
		for i := range u.Grants {
			g := &u.Grants[i]
			if !g.Counts() || !snap.Reg.Allows(g.Role, ai) || !view.LiveIndex(g.Loc) {
				continue
			}
			m := ""
			if mi := view.MunicipalityIndex(g.Loc); mi >= 0 {
				m = view.IDIndex(mi)
			} else if m = firstMunicipality(snap, module, view.IDIndex(g.Loc)); m == "" {
				continue
			}
			if done, err := ask(m); done {
				return best, bestMuni, err
			}
		}
	}
	// Rights that hold everywhere (public, authenticated, super admin,
	// platform grants) show in any municipality with the module enabled.
	if m := c.anyMunicipality(snap, act.ModuleIdx, module); m != "" {
		if _, err := ask(m); err != nil {
			return best, bestMuni, err
		}
	}
	if asked == 0 {
		// No municipality at all: nothing to use the module in. The
		// subject is still validated as Check would.
		if _, err := c.UserCanAccessModule(ctx, s, module, action); err != nil {
			return Decision{}, "", err
		}
		return deny(ReasonNoGrant), "", nil
	}
	return best, bestMuni, nil
}

// gateCache remembers, for one snapshot, the municipality anyMunicipality
// found per module: the walk is over the whole tree.
type gateCache struct {
	snap  *snapshot.Snapshot
	mu    sync.Mutex
	first map[int]string
}

// anyMunicipality is firstMunicipality over the whole tree, computed once
// per snapshot and module.
func (c *Checker) anyMunicipality(snap *snapshot.Snapshot, moduleIdx int, module string) string {
	gc := c.gates.Load()
	if gc == nil || gc.snap != snap {
		fresh := &gateCache{snap: snap, first: map[int]string{}}
		if c.gates.CompareAndSwap(gc, fresh) {
			gc = fresh
		} else if gc = c.gates.Load(); gc.snap != snap {
			return firstMunicipality(snap, module, "") // a newer snapshot raced in
		}
	}
	gc.mu.Lock()
	defer gc.mu.Unlock()
	m, ok := gc.first[moduleIdx]
	if !ok {
		m = firstMunicipality(snap, module, "")
		gc.first[moduleIdx] = m
	}
	return m
}

// firstMunicipality returns the first municipality, depth first, in the
// subtree of root (the whole tree when root is "") that has module
// enabled, else the first municipality there, else "".
func firstMunicipality(snap *snapshot.Snapshot, module, root string) string {
	first := ""
	var walk func(ids []string) string
	walk = func(ids []string) string {
		for _, id := range ids {
			if level, _ := snap.Tree.Level(id); level == location.Municipality {
				if snap.ModuleEnabled(module, id) {
					return id
				}
				if first == "" {
					first = id
				}
				continue // nothing below a municipality is another municipality
			}
			if m := walk(snap.Tree.Children(id)); m != "" {
				return m
			}
		}
		return ""
	}
	roots := snap.Tree.Roots()
	if root != "" {
		roots = []string{root}
	}
	if m := walk(roots); m != "" {
		return m
	}
	return first
}

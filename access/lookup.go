package access

import (
	"context"
	"fmt"
	"slices"

	"github.com/civicstack/townhall/internal/snapshot"
)

// ModuleAction names one action of one module.
type ModuleAction struct{ Module, Action string }

// Subjects returns, sorted, the IDs of every user for whom Check of
// module.action with a Resource at locationID (no category, no
// organisation) allows: the list behind an assignment drop-down ("who may
// assign this occurrence here?"). An empty locationID is a record without a
// location: only users whose filter is unrestricted qualify.
//
// Each listed user is decided by the same code as Check, on one snapshot,
// so the list agrees with Check by construction. Candidates are pruned with
// an index of the grants by location, built once per snapshot on first use:
// only super admins, holders of platform grants and holders of a grant at
// locationID or one of its ancestors whose role allows the action can be
// allowed, unless the action is public or authenticated (then every user is
// decided). After a write, the index rebuilds only the chunks of users the
// write changed. Subjects never writes audit events.
func (c *Checker) Subjects(ctx context.Context, module, action, locationID string) ([]string, error) {
	snap := c.snapshot()
	ai, err := actionIndex(snap.Reg, module, action)
	if err != nil {
		return nil, err
	}
	act := &snap.Reg.Actions[ai]
	req := Request{Module: module, Action: action, Resource: &Resource{LocationID: locationID}}
	// Validate the place once, with a subject that needs no user.
	if _, err := c.decide(snap, &Subject{}, &req); err != nil {
		return nil, err
	}
	var candidates []string
	if act.Public || act.Authenticated {
		snap.Users.Each(func(id string, u *snapshot.UserState) bool {
			if !u.Deleted && u.Active {
				candidates = append(candidates, id)
			}
			return true
		})
	} else {
		candidates = c.lookupIndex(snap).candidates(snap, ai, locationID)
	}
	slices.Sort(candidates)
	candidates = slices.Compact(candidates)
	out := candidates[:0]
	for i, id := range candidates {
		if i%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		d, err := c.decide(snap, &Subject{UserID: id}, &req)
		if err != nil {
			return nil, fmt.Errorf("subject %q: %w", id, err)
		}
		if d.Allowed {
			out = append(out, id)
		}
	}
	return slices.Clip(out), nil
}

// Permissions returns every module action that Check allows s without a
// resource in municipality (gate semantics, as for menus), in registry
// order: modules as declared, actions sorted. With an empty municipality
// only platform actions are considered, decided platform-wide. Each action
// is decided by the same code as Check, on one snapshot. Permissions never
// writes audit events.
func (c *Checker) Permissions(ctx context.Context, s Subject, municipality string) ([]ModuleAction, error) {
	snap := c.snapshot()
	var out []ModuleAction
	for i := range snap.Reg.Actions {
		act := &snap.Reg.Actions[i]
		if municipality == "" && !act.Platform {
			continue
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		d, err := c.decide(snap, &s, &Request{Municipality: municipality, Module: act.Module, Action: act.Action})
		if err != nil {
			return nil, err
		}
		if d.Allowed {
			out = append(out, ModuleAction{Module: act.Module, Action: act.Action})
		}
	}
	return out, nil
}

// grantIndex lists, for one snapshot, who holds which role where: the
// candidates of Subjects. It is kept per chunk of the user table: a write
// copies only the chunks of the users it changes (see snapshot.UserTable.With), so
// the next index rebuilds only those and shares the others.
type grantIndex struct {
	snap   *snapshot.Snapshot
	chunks []chunkIndex
}

// chunkIndex is the index of one chunk of users.
type chunkIndex struct {
	src *snapshot.UserChunk // the chunk it was built from
	// at maps a location ID to the grants held there.
	at map[string][]heldRole
	// global holds the users every lookup decides: super admins and holders
	// of platform grants.
	global []string
}

// heldRole is one grant of the index.
type heldRole struct {
	user string
	role int
}

// lookupIndex returns the grant index of snap, rebuilding the chunks that
// changed since the last lookup. Concurrent lookups may build it twice;
// either copy is right.
func (c *Checker) lookupIndex(snap *snapshot.Snapshot) *grantIndex {
	old := c.lookup.Load()
	if old != nil && old.snap == snap {
		return old
	}
	ix := &grantIndex{snap: snap, chunks: make([]chunkIndex, len(snap.Users.Dense))}
	for i, chunk := range snap.Users.Dense {
		if old != nil && i < len(old.chunks) && old.chunks[i].src == chunk {
			ix.chunks[i] = old.chunks[i]
			continue
		}
		ix.chunks[i] = indexChunk(snap, chunk)
	}
	c.lookup.Store(ix)
	return ix
}

// indexChunk indexes the grants of one chunk of users.
func indexChunk(snap *snapshot.Snapshot, chunk *snapshot.UserChunk) chunkIndex {
	ci := chunkIndex{src: chunk, at: map[string][]heldRole{}}
	for _, u := range chunk {
		if u == nil || u.Deleted {
			continue
		}
		if u.SuperAdmin || u.HasPlatformGrant() {
			ci.global = append(ci.global, u.ID)
		}
		for _, g := range u.Grants {
			if !g.Platform() {
				at := snap.GrantAt(u, &g)
				ci.at[at] = append(ci.at[at], heldRole{user: u.ID, role: int(g.Role)})
			}
		}
	}
	return ci
}

// candidates returns the users who may be allowed action ai on a record at
// loc: the global users and the holders of a grant at loc or an ancestor
// whose role allows the action (a grant elsewhere cannot cover the record).
func (ix *grantIndex) candidates(snap *snapshot.Snapshot, ai int, loc string) []string {
	var out []string
	for i := range ix.chunks {
		out = append(out, ix.chunks[i].global...)
	}
	at, ok := snap.Tree.Index(loc)
	if !ok {
		return out
	}
	for ; at >= 0; at = snap.Tree.ParentIndex(at) {
		id := snap.Tree.IDIndex(at)
		for i := range ix.chunks {
			for _, h := range ix.chunks[i].at[id] {
				if snap.Reg.Roles[h.role].Perms.Has(ai) {
					out = append(out, h.user)
				}
			}
		}
	}
	return out
}

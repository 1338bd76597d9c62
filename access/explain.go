package access

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/civicstack/townhall/internal/snapshot"
	"github.com/civicstack/townhall/users"
)

// Explanation is a decision with the way Check reached it: the steps of
// SPEC §2 it went through and, when it got to the grants, every grant of
// the subject with the decision that grant alone would have given.
type Explanation struct {
	Decision Decision
	// Err is the error Check returned with the decision, if any.
	Err error
	// Steps are the steps of SPEC §2 up to the one that decided, in order;
	// every step but the last passed without deciding.
	Steps []Step
	// Grants are the subject's grants, by domain then role, when the
	// decision reached step 7 (platform grants) or later.
	Grants []GrantOutcome
}

// Step is one step of SPEC §2.
type Step struct {
	Number  int    // 1–9
	Name    string // such as "super admin"
	Decided bool   // this step gave the decision
}

// GrantOutcome is one grant as the decision considered it.
type GrantOutcome struct {
	Role   string
	Domain string // location ID, or "*" for a platform grant
	// RoleAllows reports whether the role (with aliases, inheritance and the
	// implicit admin and viewer rules) allows the action at all.
	RoleAllows bool
	// Anchor is the location of the profile the grant counts through, ""
	// when it has none (platform grants need none).
	Anchor string
	// Alone is the decision with this grant as the subject's only grant:
	// allowed when the grant counts for the request, otherwise denied with
	// the condition it failed (out_of_scope, category, ...).
	Alone Decision
}

// Counted reports whether the grant by itself allows the request.
func (g GrantOutcome) Counted() bool { return g.Alone.Allowed }

// steps names the steps of SPEC §2, 1-based.
var steps = []string{
	"input", "anonymous", "user", "super admin", "module enabled",
	"public or authenticated", "platform grants", "grants", "denied",
}

// decidingStep returns the step of SPEC §2 that gives a decision with
// reason r (for a signed-in subject unless anonymous).
func decidingStep(r Reason, anonymous bool) int {
	if anonymous && r != ReasonInvalid {
		return 2
	}
	switch r {
	case ReasonInvalid:
		return 1
	case ReasonUserInactive:
		return 3
	case ReasonSuperAdmin:
		return 4
	case ReasonModuleDisabled:
		return 5
	case ReasonPublic, ReasonAuthenticated:
		return 6
	case ReasonPlatformRole:
		return 7
	case ReasonRole:
		return 8
	}
	return 9
}

// Explain decides req for s exactly as Check does, without recording the
// decision, and says how: the steps passed and, per grant, whether it
// counted and which condition it failed. Each grant's outcome is the same
// decision code run on the subject with that grant as its only one, so the
// explanation cannot drift from Check.
func (c *Checker) Explain(_ context.Context, s Subject, req Request) Explanation {
	snap := c.snapshot()
	d, err := c.decide(snap, &s, &req)
	if err != nil {
		d = deny(ReasonInvalid)
	}
	ex := Explanation{Decision: d, Err: err}
	last := decidingStep(d.Reason, s.UserID == "")
	if errors.Is(err, users.ErrNotFound) || errors.Is(err, ErrInvalidToken) {
		last = 3 // the input was well formed; the user or its impersonation is not
	}
	for n := 1; n <= last; n++ {
		if n == 2 && last > 2 {
			continue // a signed-in subject skips the anonymous step
		}
		ex.Steps = append(ex.Steps, Step{Number: n, Name: steps[n-1], Decided: n == last})
	}
	if last < 7 {
		return ex
	}
	u, ok := snap.Users.Get(s.UserID)
	if !ok {
		return ex
	}
	ai, err := actionIndex(snap.Reg, req.Module, req.Action)
	if err != nil {
		return ex
	}
	for _, g := range u.Grants {
		out := GrantOutcome{
			Role: snap.Reg.Roles[g.Role].Name, Domain: snap.GrantAt(u, &g),
			RoleAllows: snap.Reg.Roles[g.Role].Perms.Has(ai),
		}
		if !g.Platform() {
			if _, at := snap.Anchor(u, out.Domain); at != "" {
				out.Anchor = at
			}
		}
		alone := *u
		alone.SuperAdmin = false
		alone.Grants = []snapshot.Grant{g}
		alone.Profiles = slices.Clone(u.Profiles) // BuildUser may resolve their indexes
		snap.BuildUser(&alone)
		one := *snap
		one.Users = snap.Users.With(map[string]*snapshot.UserState{s.UserID: &alone})
		out.Alone, _ = c.decide(&one, &s, &req)
		ex.Grants = append(ex.Grants, out)
	}
	slices.SortFunc(ex.Grants, func(a, b GrantOutcome) int {
		return cmp.Or(strings.Compare(a.Domain, b.Domain), strings.Compare(a.Role, b.Role))
	})
	return ex
}

// String renders the explanation for people, one line per step and grant:
//
//	allowed (role) by operator at W
//	  step 1 input                    passed
//	  ...
//	  grant operator at W (anchor W): counts
func (e Explanation) String() string {
	var b strings.Builder
	d := e.Decision
	if d.Allowed {
		fmt.Fprintf(&b, "allowed (%s)", d.Reason)
	} else {
		fmt.Fprintf(&b, "denied (%s)", d.Reason)
	}
	if d.Role != "" {
		fmt.Fprintf(&b, " by %s at %s", d.Role, d.Domain)
	}
	if e.Err != nil {
		fmt.Fprintf(&b, ": %v", e.Err)
	}
	b.WriteString("\n")
	for _, s := range e.Steps {
		outcome := "passed"
		if s.Decided {
			outcome = "decided: " + string(d.Reason)
		}
		fmt.Fprintf(&b, "  step %d %-24s %s\n", s.Number, s.Name, outcome)
	}
	for _, g := range e.Grants {
		verdict := "counts"
		switch {
		case !g.RoleAllows:
			verdict = "role does not allow the action"
		case !g.Counted():
			verdict = "does not count: " + string(g.Alone.Reason)
		}
		anchor := g.Anchor
		if anchor == "" {
			anchor = "none"
		}
		fmt.Fprintf(&b, "  grant %s at %s (anchor %s): %s\n", g.Role, g.Domain, anchor, verdict)
	}
	return b.String()
}

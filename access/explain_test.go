package access_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/civicstack/townhall/access"
	"github.com/civicstack/townhall/internal/testkit"
	"github.com/civicstack/townhall/location"
	"github.com/civicstack/townhall/users"
)

// On generated worlds, Explain gives Check's decision, ends at the step
// that decided it, and, when it reaches the grants, the decision is allowed
// exactly when one of the grants counts on its own.
func TestExplain_AgreesWithCheck(t *testing.T) {
	for _, seed := range diffSeeds {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			w := newGenWorld(t, seed)
			ctx := context.Background()
			reached := 0
			for _, s := range w.subjects {
				for _, ma := range w.actions() {
					for _, loc := range w.live {
						req := access.Request{Module: ma[0], Action: ma[1], Resource: &access.Resource{LocationID: loc, Category: genCategories[len(loc)%len(genCategories)]}}
						want, werr := w.p.Checker.Check(ctx, s, req)
						ex := w.p.Checker.Explain(ctx, s, req)
						require.Equal(t, werr, ex.Err)
						require.Equal(t, want, ex.Decision, "%+v %+v", s, req)
						require.NotEmpty(t, ex.Steps)
						last := ex.Steps[len(ex.Steps)-1]
						assert.True(t, last.Decided)
						if want.Reason == access.ReasonRole || len(ex.Grants) > 0 && last.Number == 9 {
							reached++
							counted := false
							for _, g := range ex.Grants {
								counted = counted || g.Counted()
								if g.Counted() {
									assert.True(t, g.RoleAllows)
								}
							}
							assert.Equal(t, want.Allowed, counted, "%+v %+v: %+v", s, req, ex.Grants)
						}
					}
				}
			}
			assert.Positive(t, reached)
		})
	}
}

func TestExplain_NamesTheFailedCondition(t *testing.T) {
	p := testkit.Open(t)
	ctx := context.Background()
	testkit.Locations(t, p, location.Location{ID: "R", Level: "region"},
		location.Location{ID: "W", Level: "municipality", ParentID: "R"},
		location.Location{ID: "E", Level: "municipality", ParentID: "R"})
	testkit.Member(t, p, "olga", "operator", "W")
	testkit.Member(t, p, "olga", "manager", "E")
	require.NoError(t, p.Admin.SetProfileActive(ctx, access.System(), "olga", "E", false))

	ex := p.Checker.Explain(ctx, access.Subject{UserID: "olga"}, access.Request{
		Module: "occurrences", Action: "close", Resource: &access.Resource{LocationID: "E"}})
	require.NoError(t, ex.Err)
	assert.Equal(t, access.Decision{Reason: access.ReasonProfileInactive}, ex.Decision)
	var names []string
	for _, s := range ex.Steps {
		names = append(names, s.Name)
	}
	assert.Equal(t, []string{"input", "user", "super admin", "module enabled", "public or authenticated",
		"platform grants", "grants", "denied"}, names)
	require.Len(t, ex.Grants, 2)
	assert.Equal(t, access.GrantOutcome{Role: "manager", Domain: "E", RoleAllows: true, Anchor: "E",
		Alone: access.Decision{Reason: access.ReasonProfileInactive}}, ex.Grants[0])
	assert.Equal(t, access.GrantOutcome{Role: "operator", Domain: "W", RoleAllows: false, Anchor: "W",
		Alone: access.Decision{Reason: access.ReasonNoGrant}}, ex.Grants[1])

	ex = p.Checker.Explain(ctx, access.Subject{UserID: "olga"}, access.Request{Module: "nope", Action: "x", Municipality: "W"})
	assert.ErrorIs(t, ex.Err, access.ErrUnknownModule)
	assert.Equal(t, []access.Step{{Number: 1, Name: "input", Decided: true}}, ex.Steps)

	ex = p.Checker.Explain(ctx, access.Subject{UserID: "nobody"}, access.Request{Module: "occurrences", Action: "view", Municipality: "W"})
	assert.ErrorIs(t, ex.Err, users.ErrNotFound)
	assert.Equal(t, []access.Step{{Number: 1, Name: "input"}, {Number: 3, Name: "user", Decided: true}}, ex.Steps)
}

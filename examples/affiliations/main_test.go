package main

import (
	"bytes"
	"context"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/civicstack/townhall/access"
)

func TestRun(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, run(context.Background(), filepath.Join(t.TempDir(), "townhall.db"), &out))
	before, after, ok := strings.Cut(out.String(), "== alice deletes St Anne")
	require.True(t, ok, out.String())
	space := regexp.MustCompile(`\s+`)
	norm := func(s string) string { return space.ReplaceAllString(s, " ") }
	for _, want := range []string{
		"ada (super admin) sees [c1 c2 c3 c4]",
		"alice (admin of Portville) sees []",
		"carl (claim admin, St Anne) sees [c1 c2]",
		"dora (claim admin, Harbour Clinic) sees [c3]",
		"petra (St Anne portal user) sees []",
		"carl submit for st-anne allow (role as claim_admin@portville)",
		"carl submit for harbour deny (not_affiliated)",
		"dora submit for harbour allow (role as claim_admin@portville)",
		"alice submit for st-anne deny (not_affiliated)",
		"petra submit for st-anne deny (no_grant)",
	} {
		assert.Contains(t, norm(before), want)
	}
	for _, want := range []string{
		"carl active: true",
		"petra active: false",
		`audit: user_active by alice user="petra"`,
		"carl (claim admin, St Anne) sees []",
		"dora (claim admin, Harbour Clinic) sees [c3]",
	} {
		assert.Contains(t, norm(after), want)
	}
}

// TestFilterAgreesWithCheck: the list a person sees is exactly the claims
// Check lets them view one by one.
func TestFilterAgreesWithCheck(t *testing.T) {
	ctx := context.Background()
	p, db, err := open(ctx, filepath.Join(t.TempDir(), "townhall.db"))
	require.NoError(t, err)
	defer p.Close()
	var claims []Claim
	require.NoError(t, db.Order("id").Find(&claims).Error)
	require.Len(t, claims, 4)
	agree := func(when string) {
		for _, person := range people {
			s := access.Subject{UserID: person.id}
			visible, err := visibleClaims(ctx, p, db, s)
			require.NoError(t, err)
			checked := []string{}
			for _, c := range claims {
				d, err := p.Checker.Check(ctx, s, access.Request{Module: "claims", Action: "view",
					Resource: &access.Resource{OrganisationID: c.FacilityID, Category: c.Category}})
				require.NoError(t, err)
				if d.Allowed {
					checked = append(checked, c.ID)
				}
			}
			assert.Equal(t, checked, visible, "%s, %s", person.id, when)
		}
	}
	agree("before")
	require.NoError(t, p.Admin.DeleteOrganisation(ctx, access.Subject{UserID: "alice"}, "st-anne"))
	agree("after St Anne is deleted")
}

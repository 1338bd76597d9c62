package access_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/civicstack/townhall/access"
	"github.com/civicstack/townhall/affiliation"
	"github.com/civicstack/townhall/audit"
	"github.com/civicstack/townhall/internal/testkit"
	"github.com/civicstack/townhall/users"
)

// TestStoreWrites_EachIsAuditedAndSeenByTheNextCheck: every exported
// store write whose in-transaction form only Admin may use (package
// txwrite) is audited with the subject in the context and changes the
// very next Check in the same process (SPEC §3). Creating users,
// locations, organisations and profiles is covered by
// TestStoreWrites_AuditedWithTheSubjectInTheContext.
func TestStoreWrites_EachIsAuditedAndSeenByTheNextCheck(t *testing.T) {
	bg := context.Background()
	pat := access.WithSubject(bg, access.Subject{UserID: "pat"})
	op := access.Subject{UserID: "op"}
	submit := claimReq("submit", "H", "")
	update := func(loc, cat string) access.Request {
		return access.Request{Module: "equipment", Action: "update", Resource: &access.Resource{LocationID: loc, Category: cat}}
	}
	// world: the default tree, op claim_admin and operator at M1, and H, an
	// organisation at V1 offering claims.
	world := func(t *testing.T) *adminEnv {
		e := openAdmin(t, claimsRegistry(t))
		e.tree(t)
		testkit.Member(t, e.p, "op", "claim_admin", "M1")
		require.NoError(t, e.p.Admin.Grant(bg, access.System(), "op", access.RoleOperator, "M1"))
		_, err := e.p.Affiliations.CreateOrganisation(bg, affiliation.Organisation{
			ID: "H", Name: "Clinic", Kind: "health_facility", LocationID: "V1", Services: []string{"claims"},
		})
		require.NoError(t, err)
		return e
	}
	link := func(t *testing.T, e *adminEnv) {
		require.NoError(t, e.p.Affiliations.Link(bg, affiliation.Link{UserID: "op", OrganisationID: "H"}))
		require.True(t, e.allowed(t, op, submit).Allowed, "precondition: linked")
	}
	tests := []struct {
		name   string
		before func(t *testing.T, e *adminEnv) // brings the world to the write's starting point
		write  func(e *adminEnv) error
		typ    string
		check  access.Request                       // decided before and after the write
		decide func(t *testing.T, e *adminEnv) bool // instead of check
		was    bool                                 // the decision before
	}{
		{
			name: "Link",
			write: func(e *adminEnv) error {
				return e.p.Affiliations.Link(pat, affiliation.Link{UserID: "op", OrganisationID: "H"})
			},
			typ: audit.TypeLink, check: submit, was: false,
		},
		{
			name: "Unlink", before: link,
			write: func(e *adminEnv) error { return e.p.Affiliations.Unlink(pat, "op", "H") },
			typ:   audit.TypeUnlink, check: submit, was: true,
		},
		{
			name: "DeleteOrganisation", before: link,
			write: func(e *adminEnv) error { return e.p.Affiliations.DeleteOrganisation(pat, "H") },
			typ:   audit.TypeOrganisationDeleted, check: submit, was: true,
		},
		{
			name:  "Move",
			write: func(e *adminEnv) error { return e.p.Locations.Move(pat, "V1", "M3") },
			typ:   audit.TypeLocationMoved, check: update("V1", ""), was: true,
		},
		{
			name:  "Delete",
			write: func(e *adminEnv) error { return e.p.Locations.Delete(pat, "V1") },
			typ:   audit.TypeLocationDeleted, was: true,
			decide: func(t *testing.T, e *adminEnv) bool { // a Check at a deleted location is an error
				f, err := e.p.Checker.LocationFilter(bg, op, "equipment", "update")
				require.NoError(t, err)
				return f.Contains("V1")
			},
		},
		{
			// op's profile names the department in the same breath; the
			// Check can only apply its categories if the snapshot has it.
			name: "CreateDepartment",
			write: func(e *adminEnv) error {
				if _, err := e.p.Profiles.CreateDepartment(pat, users.Department{ID: "roads", MunicipalityID: "M1", Name: "Roads", Categories: []string{"c1"}}); err != nil {
					return err
				}
				dept := "roads"
				_, err := e.p.Profiles.Update(pat, "op", "M1", users.ProfileUpdate{DepartmentID: &dept})
				return err
			},
			typ: audit.TypeDepartmentCreated, check: update("M1", "c2"), was: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := world(t)
			if tt.before != nil {
				tt.before(t, e)
			}
			decide := func() bool { return e.allowed(t, op, tt.check).Allowed }
			if tt.decide != nil {
				decide = func() bool { return tt.decide(t, e) }
			}
			assert.Equal(t, tt.was, decide(), "before the write")
			seq := e.mark(t)
			require.NoError(t, tt.write(e))
			events := e.changesSince(t, seq)
			require.NotEmpty(t, events)
			assert.Equal(t, tt.typ, events[0].Type)
			for _, ev := range events {
				assert.Equal(t, "pat", ev.ActorID, "%s is attributed to the subject in the context", ev.Type)
			}
			assert.Equal(t, !tt.was, decide(), "the next Check sees the write")
		})
	}
}

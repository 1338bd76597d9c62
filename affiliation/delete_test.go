package affiliation_test

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/civicstack/townhall/affiliation"
	"github.com/civicstack/townhall/audit"
	"github.com/civicstack/townhall/internal/dbx"
	"github.com/civicstack/townhall/internal/policy"
	"github.com/civicstack/townhall/internal/txwrite"
)

// cascadeFixture links users in every situation the cascade distinguishes
// to organisation "doomed", and returns the users expected to be
// deactivated.
func cascadeFixture(t *testing.T, e *env) (deactivated, kept []string) {
	t.Helper()
	e.org(t, "doomed")
	e.org(t, "other")
	e.org(t, "other-gone")
	past := at(t0.Add(-time.Hour))
	future := at(t0.Add(time.Hour))
	type situation struct {
		id         string
		setup      func(id string)
		deactivate bool
	}
	situations := []situation{
		{"portal-only", func(string) {}, true},
		{"other-live-link", func(id string) { e.link(t, id, "other", nil, nil) }, false},
		{"other-link-ended", func(id string) { e.link(t, id, "other", nil, past) }, true},
		{"other-link-upcoming", func(id string) { e.link(t, id, "other", future, nil) }, true},
		{"other-org-deleted", func(id string) { e.link(t, id, "other-gone", nil, nil) }, true},
		{"active-profile", func(id string) { e.profile(t, id, "v1", true) }, false},
		{"inactive-profile", func(id string) { e.profile(t, id, "v1", false) }, true},
		{"super-admin", func(id string) { e.setSuperAdmin(t, id) }, false},
		{"platform-grant", func(id string) { e.grant(t, id, "platform_admin", policy.PlatformDomain) }, false},
		{"location-grant", func(id string) { e.grant(t, id, "manager", "m1") }, true},
	}
	for _, s := range situations {
		e.user(t, s.id)
		s.setup(s.id)
		e.link(t, s.id, "doomed", nil, nil)
		if s.deactivate {
			deactivated = append(deactivated, s.id)
		} else {
			kept = append(kept, s.id)
		}
	}
	require.NoError(t, e.store.DeleteOrganisation(e.ctx, "other-gone"))

	// Linked to doomed, but not live: they lose nothing and stay active.
	e.user(t, "past-link")
	e.link(t, "past-link", "doomed", nil, past)
	e.user(t, "future-link")
	e.link(t, "future-link", "doomed", future, nil)
	// Already inactive: nothing to deactivate, no event.
	e.user(t, "already-inactive")
	e.link(t, "already-inactive", "doomed", nil, nil)
	e.setInactive(t, "already-inactive")
	// Not linked to doomed at all.
	e.user(t, "bystander")
	e.link(t, "bystander", "other", nil, nil)
	kept = append(kept, "past-link", "future-link", "bystander")
	return deactivated, kept
}

func TestDeleteOrganisation_Cascade(t *testing.T) {
	e := newEnv(t)
	deactivated, kept := cascadeFixture(t, e)
	linksBefore := e.count(t, affiliation.LinksTable, "organisation_id = ? AND deleted_at IS NULL", "doomed")

	require.NoError(t, e.store.DeleteOrganisation(e.ctx, "doomed"))

	t.Run("DeactivatesExactlyStrandedUsers", func(t *testing.T) {
		for _, id := range deactivated {
			assert.False(t, e.isActive(t, id), id)
		}
		for _, id := range kept {
			assert.True(t, e.isActive(t, id), id)
		}
		assert.False(t, e.isActive(t, "already-inactive"))
	})

	t.Run("SoftDeletesOrganisationAndAllItsLinks", func(t *testing.T) {
		_, err := e.store.GetOrganisation(e.ctx, "doomed")
		assert.ErrorIs(t, err, affiliation.ErrNotFound)
		assert.Equal(t, int64(1), e.count(t, affiliation.OrganisationsTable, "id = ?", "doomed"), "the row stays")
		assert.Zero(t, e.count(t, affiliation.LinksTable, "organisation_id = ? AND deleted_at IS NULL", "doomed"))
		assert.Equal(t, linksBefore, e.count(t, affiliation.LinksTable, "organisation_id = ?", "doomed"))
		members, err := e.store.Members(e.ctx, "doomed")
		require.NoError(t, err)
		assert.Empty(t, members)
		links, err := e.store.Links(e.ctx, "past-link")
		require.NoError(t, err)
		assert.Empty(t, links)
	})

	t.Run("LeavesOtherOrganisationsAlone", func(t *testing.T) {
		members, err := e.store.Members(e.ctx, "other")
		require.NoError(t, err)
		assert.Equal(t, []string{"bystander", "other-live-link"}, memberIDs(members))
	})

	t.Run("Audited", func(t *testing.T) {
		del := e.events(t, audit.TypeOrganisationDeleted)
		require.Len(t, del, 2) // other-gone, then doomed
		assert.Equal(t, "m1", del[1].LocationID)
		assert.Equal(t, map[string]any{
			"organisation_id": "doomed",
			"links_ended":     float64(linksBefore),
			"deactivated":     float64(len(deactivated)),
		}, del[1].Details)
		var got []string
		for _, ev := range e.events(t, audit.TypeUserActive) {
			if ev.Details["organisation_id"] == "doomed" {
				assert.Equal(t, false, ev.Details["active"])
				assert.Greater(t, ev.Seq, del[1].Seq)
				got = append(got, ev.UserID)
			}
		}
		assert.ElementsMatch(t, deactivated, got)
	})

	t.Run("IDNeverReused", func(t *testing.T) {
		_, err := e.store.CreateOrganisation(e.ctx, affiliation.Organisation{ID: "doomed", Name: "N", Kind: "k", LocationID: "m1"})
		assert.ErrorIs(t, err, affiliation.ErrDuplicate)
	})

	t.Run("SecondDeleteIsNotFound", func(t *testing.T) {
		before := e.eventCount(t)
		assert.ErrorIs(t, e.store.DeleteOrganisation(e.ctx, "doomed"), affiliation.ErrNotFound)
		assert.Equal(t, before, e.eventCount(t))
	})
}

func TestDeleteOrganisation_RejectsBadInput(t *testing.T) {
	e := newEnv(t)
	before := e.eventCount(t)
	for id, want := range map[string]error{
		"unknown": affiliation.ErrNotFound,
		"":        affiliation.ErrInvalidInput,
		"a b":     affiliation.ErrInvalidInput,
	} {
		assert.ErrorIs(t, e.store.DeleteOrganisation(e.ctx, id), want, id)
		_, err := txwrite.DeleteOrganisation(e.ctx, e.db, e.store, id)
		assert.ErrorIs(t, err, want, id)
	}
	assert.Equal(t, before, e.eventCount(t))
}

func TestDeleteOrganisationTx_ReturnsDeactivatedWithoutAudit(t *testing.T) {
	e := newEnv(t)
	deactivated, _ := cascadeFixture(t, e)
	before := e.eventCount(t)
	var got []string
	require.NoError(t, dbx.Tx(e.ctx, e.db, func(tx *gorm.DB) error {
		var err error
		got, err = txwrite.DeleteOrganisation(e.ctx, tx, e.store, "doomed")
		return err
	}))
	assert.ElementsMatch(t, deactivated, got)
	assert.IsIncreasing(t, got, "sorted")
	assert.Equal(t, before, e.eventCount(t))
}

func TestDeleteOrganisationTx_RollsBackWithCaller(t *testing.T) {
	e := newEnv(t)
	e.org(t, "o1")
	e.user(t, "u1")
	e.link(t, "u1", "o1", nil, nil)
	errAbort := errors.New("abort")
	err := dbx.Tx(e.ctx, e.db, func(tx *gorm.DB) error {
		got, err := txwrite.DeleteOrganisation(e.ctx, tx, e.store, "o1")
		require.NoError(t, err)
		assert.Equal(t, []string{"u1"}, got)
		return errAbort
	})
	require.ErrorIs(t, err, errAbort)
	assert.True(t, e.isActive(t, "u1"))
	members, err := e.store.Members(e.ctx, "o1")
	require.NoError(t, err)
	assert.Equal(t, []string{"u1"}, memberIDs(members))
}

func TestDeleteOrganisation_WithoutLinksDeactivatesNobody(t *testing.T) {
	e := newEnv(t)
	e.org(t, "empty")
	got, err := txwrite.DeleteOrganisation(e.ctx, e.db, e.store, "empty")
	require.NoError(t, err)
	assert.NotNil(t, got)
	assert.Empty(t, got)
}

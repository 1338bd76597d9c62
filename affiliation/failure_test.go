package affiliation_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/civicstack/townhall/affiliation"
	"github.com/civicstack/townhall/audit"
)

// TestWrites_FailedAuditLeavesNoRowsAndNoEvent makes every write fail at
// its last step (the audit event, on a closed log) and checks that the
// rows written before it were rolled back.
func TestWrites_FailedAuditLeavesNoRowsAndNoEvent(t *testing.T) {
	e := newEnv(t)
	e.user(t, "u1")
	e.user(t, "u2")
	e.org(t, "o1", "claims")
	e.link(t, "u1", "o1", nil, nil)

	closed := audit.New(e.db)
	require.NoError(t, closed.Close())
	broken := affiliation.NewStore(e.db, closed, affiliation.WithClock(e.clock.Now))

	orgs := e.count(t, affiliation.OrganisationsTable, "1 = 1")
	links := e.count(t, affiliation.LinksTable, "1 = 1")
	events := e.eventCount(t)

	tests := []struct {
		name  string
		write func() error
	}{
		{"CreateOrganisation", func() error {
			_, err := broken.CreateOrganisation(e.ctx, affiliation.Organisation{ID: "o2", Name: "N", Kind: "k", LocationID: "m1"})
			return err
		}},
		{"UpdateServices", func() error { return broken.UpdateServices(e.ctx, "o1", []string{"other"}) }},
		{"Link", func() error { return broken.Link(e.ctx, affiliation.Link{UserID: "u2", OrganisationID: "o1"}) }},
		{"Unlink", func() error { return broken.Unlink(e.ctx, "u1", "o1") }},
		{"DeleteOrganisation", func() error { return broken.DeleteOrganisation(e.ctx, "o1") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.ErrorIs(t, tt.write(), audit.ErrClosed)
			assert.Equal(t, orgs, e.count(t, affiliation.OrganisationsTable, "1 = 1"))
			assert.Equal(t, links, e.count(t, affiliation.LinksTable, "1 = 1"))
			assert.Zero(t, e.count(t, affiliation.OrganisationsTable, "deleted_at IS NOT NULL"))
			assert.Zero(t, e.count(t, affiliation.LinksTable, "deleted_at IS NOT NULL"))
			assert.Equal(t, events, e.eventCount(t))
			o, err := e.store.GetOrganisation(e.ctx, "o1")
			require.NoError(t, err)
			assert.Equal(t, []string{"claims"}, o.Services)
			members, err := e.store.Members(e.ctx, "o1")
			require.NoError(t, err)
			assert.Equal(t, []string{"u1"}, memberIDs(members))
			assert.True(t, e.isActive(t, "u1"))
		})
	}
}

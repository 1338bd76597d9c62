package access_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/civicstack/townhall"
	"github.com/civicstack/townhall/access"
	"github.com/civicstack/townhall/audit"
	"github.com/civicstack/townhall/internal/testkit"
	"github.com/civicstack/townhall/location"
)

// TestDecisionCodes_NameWhatWasDecidedAcrossIndexChanges: denials of
// Decide and Check queue integer codes that the writer decodes later; a
// location deleted, a tree reloaded or a user removed before the writer
// drains does not change the names the events carry.
func TestDecisionCodes_NameWhatWasDecidedAcrossIndexChanges(t *testing.T) {
	ctx := context.Background()
	e := openAdmin(t, nil, townhall.WithAuditDrainInterval(time.Hour))
	e.tree(t)
	testkit.Locations(t, e.p, location.Location{ID: "M9", Level: "municipality", ParentID: "D2"})
	testkit.Member(t, e.p, "op", access.RoleOperator, "M1")
	c := e.p.Checker
	seq := e.mark(t)

	pr, a, at := handlesOf(t, c, access.Subject{UserID: "op"}, "occurrences", "delete", "M9")
	require.False(t, c.Decide(pr, a, at).Allowed)
	d, err := c.Check(ctx, access.Subject{UserID: "op"}, access.Request{Municipality: "M9", Module: "occurrences", Action: "update"})
	require.NoError(t, err)
	require.False(t, d.Allowed)
	require.NoError(t, e.p.Admin.DeleteLocation(ctx, access.System(), "M9"))
	require.NoError(t, access.Reload(ctx, c))
	d, err = c.Check(ctx, access.Anonymous(), access.Request{Municipality: "M1", Module: "occurrences", Action: "delete"})
	require.NoError(t, err)
	require.False(t, d.Allowed)

	events, err := e.p.Audit.Query(ctx, audit.Query{AfterSeq: seq, Type: audit.TypeDecisionDenied})
	require.NoError(t, err)
	require.Len(t, events, 3)
	assert.Equal(t, []string{"op", "M9", "occurrences", "delete", string(access.ReasonNoGrant)},
		[]string{events[0].ActorID, events[0].LocationID, events[0].Module, events[0].Action, events[0].Reason})
	assert.Equal(t, []string{"op", "M9", "update"}, []string{events[1].ActorID, events[1].LocationID, events[1].Action})
	assert.Equal(t, []string{"", "M1", "delete"}, []string{events[2].ActorID, events[2].LocationID, events[2].Action})
	assert.Zero(t, e.p.Audit.Dropped(), "nothing dropped")
}

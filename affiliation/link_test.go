package affiliation_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/civicstack/townhall/affiliation"
	"github.com/civicstack/townhall/audit"
	"github.com/civicstack/townhall/internal/actor"
	"github.com/civicstack/townhall/internal/dbx"
	"github.com/civicstack/townhall/internal/txwrite"
	"github.com/civicstack/townhall/users"
)

func TestLink_RejectsInvalidInput(t *testing.T) {
	e := newEnv(t)
	e.user(t, "u1")
	e.org(t, "o1")
	tests := []struct {
		name string
		link affiliation.Link
	}{
		{"EmptyUser", affiliation.Link{OrganisationID: "o1"}},
		{"MalformedUser", affiliation.Link{UserID: "u 1", OrganisationID: "o1"}},
		{"EmptyOrganisation", affiliation.Link{UserID: "u1"}},
		{"MalformedOrganisation", affiliation.Link{UserID: "u1", OrganisationID: "*"}},
		{"ToEqualsFrom", affiliation.Link{UserID: "u1", OrganisationID: "o1", ValidFrom: at(t0), ValidTo: at(t0)}},
		{"ToBeforeFrom", affiliation.Link{UserID: "u1", OrganisationID: "o1", ValidFrom: at(t0), ValidTo: at(t0.Add(-time.Hour))}},
		// Equal once truncated to the microseconds the databases store.
		{"ToEqualsFromAtMicroseconds", affiliation.Link{UserID: "u1", OrganisationID: "o1", ValidFrom: at(t0), ValidTo: at(t0.Add(500 * time.Nanosecond))}},
		{"ZeroTime", affiliation.Link{UserID: "u1", OrganisationID: "o1", ValidFrom: &time.Time{}}},
		{"YearAfter9999", affiliation.Link{UserID: "u1", OrganisationID: "o1", ValidTo: at(time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC))}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := e.eventCount(t)
			assert.ErrorIs(t, e.store.Link(e.ctx, tt.link), affiliation.ErrInvalidInput)
			assert.ErrorIs(t, txwrite.Link(e.ctx, e.db, e.store, tt.link), affiliation.ErrInvalidInput)
			assert.Zero(t, e.count(t, affiliation.LinksTable, "1 = 1"))
			assert.Equal(t, before, e.eventCount(t))
		})
	}
}

func TestLink_RejectsUnknownOrDeletedUserAndOrganisation(t *testing.T) {
	e := newEnv(t)
	e.user(t, "u1")
	e.user(t, "u-deleted")
	e.deleteUser(t, "u-deleted")
	e.org(t, "o1")
	e.org(t, "o-deleted")
	require.NoError(t, e.store.DeleteOrganisation(e.ctx, "o-deleted"))
	tests := []struct {
		name      string
		link      affiliation.Link
		userError bool
	}{
		{"UnknownUser", affiliation.Link{UserID: "nobody", OrganisationID: "o1"}, true},
		{"DeletedUser", affiliation.Link{UserID: "u-deleted", OrganisationID: "o1"}, true},
		{"UserIDOtherCase", affiliation.Link{UserID: "U1", OrganisationID: "o1"}, true},
		{"UnknownOrganisation", affiliation.Link{UserID: "u1", OrganisationID: "nothing"}, false},
		{"DeletedOrganisation", affiliation.Link{UserID: "u1", OrganisationID: "o-deleted"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := e.eventCount(t)
			err := e.store.Link(e.ctx, tt.link)
			assert.ErrorIs(t, err, affiliation.ErrNotFound)
			assert.Equal(t, tt.userError, errors.Is(err, users.ErrNotFound))
			assert.Zero(t, e.count(t, affiliation.LinksTable, "deleted_at IS NULL"))
			assert.Equal(t, before, e.eventCount(t))
		})
	}
}

func TestLink_RejectsOverlappingWindows(t *testing.T) {
	e := newEnv(t)
	e.user(t, "u1")
	e.org(t, "o1")
	e.org(t, "o2")
	t1, t2, t3, t4 := t0.Add(time.Hour), t0.Add(2*time.Hour), t0.Add(3*time.Hour), t0.Add(4*time.Hour)
	// Existing: [t1, t3).
	e.link(t, "u1", "o1", at(t1), at(t3))
	tests := []struct {
		name     string
		from, to *time.Time
	}{
		{"Same", at(t1), at(t3)},
		{"Inside", at(t2), at(t2.Add(time.Minute))},
		{"StraddlesStart", at(t0), at(t2)},
		{"StraddlesEnd", at(t2), at(t4)},
		{"Covers", at(t0), at(t4)},
		{"OpenBoth", nil, nil},
		{"OpenStartEndingInside", nil, at(t2)},
		{"OpenEndStartingInside", at(t2), nil},
		{"OneMicrosecondOverlap", at(t3.Add(-time.Microsecond)), at(t4)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := e.eventCount(t)
			err := e.store.Link(e.ctx, affiliation.Link{UserID: "u1", OrganisationID: "o1", ValidFrom: tt.from, ValidTo: tt.to})
			assert.ErrorIs(t, err, affiliation.ErrDuplicate)
			assert.Equal(t, int64(1), e.count(t, affiliation.LinksTable, "1 = 1"))
			assert.Equal(t, before, e.eventCount(t))
		})
	}

	t.Run("AdjacentAndOtherOrganisationAccepted", func(t *testing.T) {
		e.link(t, "u1", "o1", at(t3), at(t4)) // starts where the first ends
		e.link(t, "u1", "o1", nil, at(t1))    // ends where the first starts
		e.link(t, "u1", "o2", nil, nil)
		links, err := e.store.Links(e.ctx, "u1")
		require.NoError(t, err)
		assert.Equal(t, []affiliation.Link{
			{UserID: "u1", OrganisationID: "o1", ValidTo: at(t1)},
			{UserID: "u1", OrganisationID: "o1", ValidFrom: at(t1), ValidTo: at(t3)},
			{UserID: "u1", OrganisationID: "o1", ValidFrom: at(t3), ValidTo: at(t4)},
			{UserID: "u1", OrganisationID: "o2"},
		}, links)
	})
}

func TestLink_ConcurrentOverlappingLinksOneWins(t *testing.T) {
	e := newEnv(t)
	e.user(t, "u1")
	e.org(t, "o1")
	const n = 8
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			from := t0.Add(time.Duration(i) * time.Minute)
			errs[i] = e.store.Link(e.ctx, affiliation.Link{UserID: "u1", OrganisationID: "o1", ValidFrom: &from})
		})
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		if err == nil {
			ok++
		} else {
			assert.ErrorIs(t, err, affiliation.ErrDuplicate)
		}
	}
	assert.Equal(t, 1, ok)
	assert.Equal(t, int64(1), e.count(t, affiliation.LinksTable, "deleted_at IS NULL"))
	assert.Len(t, e.events(t, audit.TypeLink), 1)
}

func TestLink_WindowFollowsClock(t *testing.T) {
	e := newEnv(t)
	e.user(t, "u1")
	e.org(t, "o1")
	from, to := t0.Add(time.Hour), t0.Add(2*time.Hour)
	e.link(t, "u1", "o1", at(from), at(to))
	tests := []struct {
		name string
		now  time.Time
		live bool
	}{
		{"BeforeStart", from.Add(-time.Microsecond), false},
		{"AtStart", from, true},
		{"Inside", from.Add(30 * time.Minute), true},
		{"JustBeforeEnd", to.Add(-time.Microsecond), true},
		{"AtEnd", to, false},
		{"AfterEnd", to.Add(time.Hour), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.clock.Set(tt.now)
			members, err := e.store.Members(e.ctx, "o1")
			require.NoError(t, err)
			orgs, err := e.store.OrganisationsOf(e.ctx, "u1")
			require.NoError(t, err)
			links, err := e.store.Links(e.ctx, "u1")
			require.NoError(t, err)
			if tt.live {
				assert.Equal(t, []string{"u1"}, memberIDs(members))
				assert.Equal(t, []string{"o1"}, orgIDs(orgs))
			} else {
				assert.Empty(t, members)
				assert.Empty(t, orgs)
			}
			assert.Len(t, links, 1, "history keeps the link whatever the time")
		})
	}
}

func TestLink_PastWindowIsKeptAsHistory(t *testing.T) {
	e := newEnv(t)
	e.user(t, "u1")
	e.org(t, "o1")
	past := affiliation.Link{UserID: "u1", OrganisationID: "o1", ValidFrom: at(t0.Add(-48 * time.Hour)), ValidTo: at(t0.Add(-24 * time.Hour))}
	require.NoError(t, e.store.Link(e.ctx, past))
	links, err := e.store.Links(e.ctx, "u1")
	require.NoError(t, err)
	assert.Equal(t, []affiliation.Link{past}, links)
	members, err := e.store.Members(e.ctx, "o1")
	require.NoError(t, err)
	assert.Empty(t, members)
}

func TestLink_StoresUTCMicroseconds(t *testing.T) {
	e := newEnv(t)
	e.user(t, "u1")
	e.org(t, "o1")
	zone := time.FixedZone("UTC+5", 5*3600)
	from := time.Date(2030, 1, 2, 8, 30, 0, 123456789, zone)
	e.link(t, "u1", "o1", &from, nil)
	links, err := e.store.Links(e.ctx, "u1")
	require.NoError(t, err)
	require.Len(t, links, 1)
	want := from.UTC().Truncate(time.Microsecond)
	assert.Equal(t, &want, links[0].ValidFrom)
	assert.Nil(t, links[0].ValidTo)
}

func TestLink_Audited(t *testing.T) {
	e := newEnv(t)
	e.user(t, "u1")
	_, err := e.store.CreateOrganisation(e.ctx, affiliation.Organisation{ID: "o1", Name: "O", Kind: "k", LocationID: "v1"})
	require.NoError(t, err)
	ctx := actor.With(e.ctx, actor.Actor{UserID: "admin-1", ImpersonatorID: "root"})
	require.NoError(t, e.store.Link(ctx, affiliation.Link{UserID: "u1", OrganisationID: "o1", ValidFrom: at(t0), ValidTo: at(t0.Add(time.Hour))}))
	require.NoError(t, e.store.Link(ctx, affiliation.Link{UserID: "u1", OrganisationID: "o1", ValidFrom: at(t0.Add(time.Hour))}))
	evs := e.events(t, audit.TypeLink)
	require.Len(t, evs, 2)
	assert.Equal(t, "admin-1", evs[0].ActorID)
	assert.Equal(t, "root", evs[0].ImpersonatorID)
	assert.Equal(t, "u1", evs[0].UserID)
	assert.Equal(t, "v1", evs[0].LocationID)
	assert.Equal(t, map[string]any{
		"organisation_id": "o1",
		"valid_from":      t0.Format(time.RFC3339Nano),
		"valid_to":        t0.Add(time.Hour).Format(time.RFC3339Nano),
	}, evs[0].Details)
	assert.Equal(t, map[string]any{"organisation_id": "o1", "valid_from": t0.Add(time.Hour).Format(time.RFC3339Nano)}, evs[1].Details)
}

func TestUnlink(t *testing.T) {
	e := newEnv(t)
	e.user(t, "u1")
	e.user(t, "u2")
	e.org(t, "o1")
	e.org(t, "o2")
	past := affiliation.Link{UserID: "u1", OrganisationID: "o1", ValidFrom: at(t0.Add(-2 * time.Hour)), ValidTo: at(t0.Add(-time.Hour))}
	require.NoError(t, e.store.Link(e.ctx, past))
	e.link(t, "u1", "o1", at(t0.Add(-time.Hour)), at(t0.Add(time.Hour))) // live
	e.link(t, "u1", "o1", at(t0.Add(2*time.Hour)), nil)                  // upcoming
	e.link(t, "u1", "o2", nil, nil)

	t.Run("EndsLiveAndUpcomingKeepsPast", func(t *testing.T) {
		require.NoError(t, e.store.Unlink(e.ctx, "u1", "o1"))
		links, err := e.store.Links(e.ctx, "u1")
		require.NoError(t, err)
		assert.Equal(t, []affiliation.Link{past, {UserID: "u1", OrganisationID: "o2"}}, links)
		members, err := e.store.Members(e.ctx, "o1")
		require.NoError(t, err)
		assert.Empty(t, members)
		e.clock.Set(t0.Add(3 * time.Hour)) // the upcoming link never becomes live
		members, err = e.store.Members(e.ctx, "o1")
		require.NoError(t, err)
		assert.Empty(t, members)
		e.clock.Set(t0)
	})

	t.Run("SoftDeletesRows", func(t *testing.T) {
		assert.Equal(t, int64(3), e.count(t, affiliation.LinksTable, "organisation_id = ?", "o1"))
		assert.Equal(t, int64(2), e.count(t, affiliation.LinksTable, "organisation_id = ? AND deleted_at IS NOT NULL", "o1"))
	})

	t.Run("Audited", func(t *testing.T) {
		evs := e.events(t, audit.TypeUnlink)
		require.Len(t, evs, 1)
		assert.Equal(t, "u1", evs[0].UserID)
		assert.Equal(t, "m1", evs[0].LocationID)
		assert.Equal(t, actor.SystemID, evs[0].ActorID)
		assert.Equal(t, map[string]any{"organisation_id": "o1", "links_ended": float64(2)}, evs[0].Details)
	})

	t.Run("RelinkAfterUnlink", func(t *testing.T) {
		// An open start would overlap the past link kept as history.
		assert.ErrorIs(t, e.store.Link(e.ctx, affiliation.Link{UserID: "u1", OrganisationID: "o1"}), affiliation.ErrDuplicate)
		e.link(t, "u1", "o1", at(t0), nil)
		members, err := e.store.Members(e.ctx, "o1")
		require.NoError(t, err)
		assert.Equal(t, []string{"u1"}, memberIDs(members))
		require.NoError(t, e.store.Unlink(e.ctx, "u1", "o1"))
	})

	t.Run("RejectsMissingLinkAndBadInput", func(t *testing.T) {
		e.org(t, "o-deleted")
		e.link(t, "u2", "o-deleted", nil, nil)
		require.NoError(t, e.store.DeleteOrganisation(e.ctx, "o-deleted"))
		tests := []struct {
			name, user, org string
			want            error
		}{
			{"OnlyPastLinkLeft", "u1", "o1", affiliation.ErrNotFound},
			{"NeverLinked", "u2", "o1", affiliation.ErrNotFound},
			{"UnknownUser", "nobody", "o1", affiliation.ErrNotFound},
			{"UnknownOrganisation", "u1", "nothing", affiliation.ErrNotFound},
			{"DeletedOrganisation", "u2", "o-deleted", affiliation.ErrNotFound},
			{"OrganisationOtherCase", "u1", "O2", affiliation.ErrNotFound},
			{"MalformedUser", "", "o2", affiliation.ErrInvalidInput},
			{"MalformedOrganisation", "u1", "o 2", affiliation.ErrInvalidInput},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				before := e.eventCount(t)
				assert.ErrorIs(t, e.store.Unlink(e.ctx, tt.user, tt.org), tt.want)
				assert.ErrorIs(t, txwrite.Unlink(e.ctx, e.db, e.store, tt.user, tt.org), tt.want)
				assert.Equal(t, before, e.eventCount(t))
			})
		}
		orgs, err := e.store.OrganisationsOf(e.ctx, "u1")
		require.NoError(t, err)
		assert.Equal(t, []string{"o2"}, orgIDs(orgs), "failed unlinks changed nothing")
	})
}

func TestMembers(t *testing.T) {
	e := newEnv(t)
	for _, id := range []string{"u1", "u2", "u3", "u4", "u5"} {
		e.user(t, id)
	}
	e.org(t, "o1")
	e.org(t, "o2")
	to := t0.Add(time.Hour)
	e.link(t, "u2", "o1", at(t0.Add(-time.Hour)), at(to))
	e.link(t, "u1", "o1", nil, nil)
	e.link(t, "u3", "o1", at(t0.Add(time.Minute)), nil) // not yet live
	e.link(t, "u4", "o1", nil, nil)
	e.deleteUser(t, "u4")
	e.link(t, "u5", "o2", nil, nil)
	e.setInactive(t, "u5")

	t.Run("LiveLinksWithUserFields", func(t *testing.T) {
		got, err := e.store.Members(e.ctx, "o1")
		require.NoError(t, err)
		assert.Equal(t, []affiliation.Member{
			{UserID: "u1", Username: "u1", Email: "u1@example.org", FirstName: "First u1", LastName: "Last u1"},
			{UserID: "u2", Username: "u2", Email: "u2@example.org", FirstName: "First u2", LastName: "Last u2",
				ValidFrom: at(t0.Add(-time.Hour)), ValidTo: at(to)},
		}, got)
	})

	t.Run("InactiveUsersAreStillMembers", func(t *testing.T) {
		got, err := e.store.Members(e.ctx, "o2")
		require.NoError(t, err)
		assert.Equal(t, []string{"u5"}, memberIDs(got))
	})

	t.Run("EmptyListForUnknownOrDeletedOrganisation", func(t *testing.T) {
		e.org(t, "o-deleted")
		e.link(t, "u1", "o-deleted", nil, nil)
		require.NoError(t, e.store.DeleteOrganisation(e.ctx, "o-deleted"))
		for _, id := range []string{"nothing", "o-deleted", "O1"} {
			got, err := e.store.Members(e.ctx, id)
			require.NoError(t, err, id)
			assert.NotNil(t, got, id)
			assert.Empty(t, got, id)
		}
	})

	t.Run("RejectsMalformedID", func(t *testing.T) {
		_, err := e.store.Members(e.ctx, "o 1")
		assert.ErrorIs(t, err, affiliation.ErrInvalidInput)
	})
}

func TestOrganisationsOf(t *testing.T) {
	e := newEnv(t)
	e.user(t, "u1")
	e.user(t, "u-deleted")
	e.org(t, "b", "claims")
	e.org(t, "a")
	e.org(t, "c")
	e.org(t, "d")
	e.link(t, "u1", "b", nil, nil)
	e.link(t, "u1", "a", at(t0), nil)
	e.link(t, "u1", "c", nil, at(t0)) // ended
	e.link(t, "u1", "d", nil, nil)
	require.NoError(t, e.store.DeleteOrganisation(e.ctx, "d"))
	e.link(t, "u-deleted", "a", nil, nil)
	e.deleteUser(t, "u-deleted")

	got, err := e.store.OrganisationsOf(e.ctx, "u1")
	require.NoError(t, err)
	assert.Equal(t, []string{"a", "b"}, orgIDs(got))
	assert.Equal(t, affiliation.Organisation{ID: "b", Name: "Organisation b", Kind: "health facility", LocationID: "m1", Services: []string{"claims"}}, got[1])

	for _, id := range []string{"nobody", "u-deleted", "U1"} {
		got, err := e.store.OrganisationsOf(e.ctx, id)
		require.NoError(t, err, id)
		assert.NotNil(t, got, id)
		assert.Empty(t, got, id)
	}
	_, err = e.store.OrganisationsOf(e.ctx, "")
	assert.ErrorIs(t, err, affiliation.ErrInvalidInput)
}

func TestLinks_EmptyForUnknownOrDeletedUser(t *testing.T) {
	e := newEnv(t)
	e.user(t, "u-deleted")
	e.org(t, "o1")
	e.link(t, "u-deleted", "o1", nil, nil)
	e.deleteUser(t, "u-deleted")
	for _, id := range []string{"nobody", "u-deleted"} {
		got, err := e.store.Links(e.ctx, id)
		require.NoError(t, err, id)
		assert.NotNil(t, got, id)
		assert.Empty(t, got, id)
	}
	_, err := e.store.Links(e.ctx, "a/b")
	assert.ErrorIs(t, err, affiliation.ErrInvalidInput)
}

func TestLoadLinks_ReturnsUndeletedLinksWithWindows(t *testing.T) {
	e := newEnv(t)
	e.user(t, "u1")
	e.user(t, "u2")
	e.org(t, "o1")
	e.org(t, "o2")
	past := at(t0.Add(-time.Hour))
	future := at(t0.Add(time.Hour))
	e.link(t, "u2", "o1", future, nil)
	e.link(t, "u1", "o2", nil, past)
	e.link(t, "u1", "o1", nil, nil)
	e.link(t, "u2", "o2", nil, nil)
	require.NoError(t, e.store.Unlink(e.ctx, "u2", "o2"))

	got, err := affiliation.LoadLinks(e.ctx, e.db)
	require.NoError(t, err)
	assert.Equal(t, []affiliation.Link{
		{UserID: "u1", OrganisationID: "o1"},
		{UserID: "u1", OrganisationID: "o2", ValidTo: past},
		{UserID: "u2", OrganisationID: "o1", ValidFrom: future},
	}, got)
}

func TestTxForms_CommitAndRollBackWithCallerWithoutAudit(t *testing.T) {
	e := newEnv(t)
	e.user(t, "u1")
	e.org(t, "o1")
	before := e.eventCount(t)
	errAbort := errors.New("abort")

	err := dbx.Tx(e.ctx, e.db, func(tx *gorm.DB) error {
		require.NoError(t, txwrite.Link(e.ctx, tx, e.store, affiliation.Link{UserID: "u1", OrganisationID: "o1"}))
		return errAbort
	})
	require.ErrorIs(t, err, errAbort)
	assert.Zero(t, e.count(t, affiliation.LinksTable, "1 = 1"), "rolled back with the caller")

	require.NoError(t, dbx.Tx(e.ctx, e.db, func(tx *gorm.DB) error {
		return txwrite.Link(e.ctx, tx, e.store, affiliation.Link{UserID: "u1", OrganisationID: "o1"})
	}))
	orgs, err := e.store.OrganisationsOf(e.ctx, "u1")
	require.NoError(t, err)
	assert.Equal(t, []string{"o1"}, orgIDs(orgs))

	require.NoError(t, dbx.Tx(e.ctx, e.db, func(tx *gorm.DB) error {
		return txwrite.Unlink(e.ctx, tx, e.store, "u1", "o1")
	}))
	orgs, err = e.store.OrganisationsOf(e.ctx, "u1")
	require.NoError(t, err)
	assert.Empty(t, orgs)
	assert.Equal(t, before, e.eventCount(t), "Tx forms record no audit event")
}

package affiliation_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/civicstack/townhall/affiliation"
	"github.com/civicstack/townhall/audit"
	"github.com/civicstack/townhall/internal/actor"
	"github.com/civicstack/townhall/internal/txwrite"
	"github.com/civicstack/townhall/location"
)

func TestCreateOrganisation(t *testing.T) {
	e := newEnv(t)

	t.Run("StoresNormalisedServicesAndReadsBack", func(t *testing.T) {
		got, err := e.store.CreateOrganisation(e.ctx, affiliation.Organisation{
			ID: "clinic-1", Name: "Clinic", Kind: "health facility", LocationID: "v1",
			Services: []string{"occurrences", "claims", "occurrences", "Claims"},
		})
		require.NoError(t, err)
		want := &affiliation.Organisation{
			ID: "clinic-1", Name: "Clinic", Kind: "health facility", LocationID: "v1",
			Services: []string{"Claims", "claims", "occurrences"},
		}
		assert.Equal(t, want, got)
		read, err := e.store.GetOrganisation(e.ctx, "clinic-1")
		require.NoError(t, err)
		assert.Equal(t, want, read)
	})

	t.Run("GeneratesIDAndNeverNilServices", func(t *testing.T) {
		got, err := e.store.CreateOrganisation(e.ctx, affiliation.Organisation{Name: "Insurer", Kind: "policy holder", LocationID: "m1"})
		require.NoError(t, err)
		assert.NotEmpty(t, got.ID)
		assert.Equal(t, []string{}, got.Services)
		read, err := e.store.GetOrganisation(e.ctx, got.ID)
		require.NoError(t, err)
		assert.Equal(t, []string{}, read.Services)
	})

	t.Run("IDsAreCaseSensitive", func(t *testing.T) {
		e.org(t, "Case")
		e.org(t, "case")
		a, err := e.store.GetOrganisation(e.ctx, "Case")
		require.NoError(t, err)
		assert.Equal(t, "Case", a.ID)
		_, err = e.store.GetOrganisation(e.ctx, "CASE")
		assert.ErrorIs(t, err, affiliation.ErrNotFound)
	})

	t.Run("RejectsTakenIDEvenAfterDeletion", func(t *testing.T) {
		e.org(t, "taken")
		e.org(t, "gone")
		require.NoError(t, e.store.DeleteOrganisation(e.ctx, "gone"))
		for _, id := range []string{"taken", "gone"} {
			before := e.eventCount(t)
			_, err := e.store.CreateOrganisation(e.ctx, affiliation.Organisation{ID: id, Name: "X", Kind: "k", LocationID: "m1"})
			assert.ErrorIs(t, err, affiliation.ErrDuplicate, id)
			assert.Equal(t, before, e.eventCount(t), id)
		}
	})

	t.Run("AuditedWithActorFromContext", func(t *testing.T) {
		ctx := actor.With(e.ctx, actor.Actor{UserID: "admin-7"})
		_, err := e.store.CreateOrganisation(ctx, affiliation.Organisation{
			ID: "audited", Name: "A", Kind: "k", LocationID: "v1", Services: []string{"b", "a", "b"},
		})
		require.NoError(t, err)
		evs := e.events(t, audit.TypeOrganisationCreated)
		require.NotEmpty(t, evs)
		ev := evs[len(evs)-1]
		assert.Equal(t, "admin-7", ev.ActorID)
		assert.Equal(t, "v1", ev.LocationID)
		assert.Equal(t, map[string]any{"organisation_id": "audited", "services": []any{"a", "b"}}, ev.Details)
	})

	t.Run("AuditedAsSystemWithoutActor", func(t *testing.T) {
		e.org(t, "by-system")
		evs := e.events(t, audit.TypeOrganisationCreated)
		require.NotEmpty(t, evs)
		assert.Equal(t, actor.SystemID, evs[len(evs)-1].ActorID)
	})
}

func TestCreateOrganisation_RejectsInvalidInput(t *testing.T) {
	e := newEnv(t)
	valid := affiliation.Organisation{ID: "o1", Name: "Name", Kind: "kind", LocationID: "m1"}
	tests := []struct {
		name   string
		change func(o *affiliation.Organisation)
	}{
		{"ReservedID", func(o *affiliation.Organisation) { o.ID = "*" }},
		{"IDWithSpace", func(o *affiliation.Organisation) { o.ID = "o 1" }},
		{"IDTooLong", func(o *affiliation.Organisation) { o.ID = strings.Repeat("a", 65) }},
		{"EmptyName", func(o *affiliation.Organisation) { o.Name = "" }},
		{"BlankName", func(o *affiliation.Organisation) { o.Name = "   " }},
		{"NameTooLong", func(o *affiliation.Organisation) { o.Name = strings.Repeat("é", 201) }},
		{"NameWithControl", func(o *affiliation.Organisation) { o.Name = "a\x00b" }},
		{"NameInvalidUTF8", func(o *affiliation.Organisation) { o.Name = "a\xffb" }},
		{"EmptyKind", func(o *affiliation.Organisation) { o.Kind = "" }},
		{"KindTooLong", func(o *affiliation.Organisation) { o.Kind = strings.Repeat("k", 65) }},
		{"KindWithNewline", func(o *affiliation.Organisation) { o.Kind = "a\nb" }},
		{"EmptyLocation", func(o *affiliation.Organisation) { o.LocationID = "" }},
		{"MalformedLocation", func(o *affiliation.Organisation) { o.LocationID = "m/1" }},
		{"EmptyService", func(o *affiliation.Organisation) { o.Services = []string{""} }},
		{"ServiceWithDot", func(o *affiliation.Organisation) { o.Services = []string{"a.b"} }},
		{"ServiceTooLong", func(o *affiliation.Organisation) { o.Services = []string{strings.Repeat("s", 65)} }},
		{"TooManyServices", func(o *affiliation.Organisation) {
			for i := range affiliation.MaxServices + 1 {
				o.Services = append(o.Services, fmt.Sprintf("s%d", i))
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := valid
			tt.change(&o)
			before := e.eventCount(t)
			_, err := e.store.CreateOrganisation(e.ctx, o)
			assert.ErrorIs(t, err, affiliation.ErrInvalidInput)
			assert.Zero(t, e.count(t, affiliation.OrganisationsTable, "1 = 1"))
			assert.Equal(t, before, e.eventCount(t))
		})
	}

	t.Run("LimitsAreInclusive", func(t *testing.T) {
		_, err := e.store.CreateOrganisation(e.ctx, affiliation.Organisation{
			ID: strings.Repeat("i", 64), Name: strings.Repeat("é", 200), Kind: strings.Repeat("k", 64), LocationID: "m1",
			Services: []string{strings.Repeat("s", 64), "a_b-C9"},
		})
		assert.NoError(t, err)
	})
}

func TestCreateOrganisation_RejectsUnknownOrDeletedLocation(t *testing.T) {
	e := newEnv(t)
	_, err := e.locs.Create(e.ctx, location.Location{ID: "m2", Name: "Other", Level: location.Municipality})
	require.NoError(t, err)
	require.NoError(t, e.locs.Delete(e.ctx, "m2"))
	for _, loc := range []string{"nowhere", "m2", "M1"} {
		before := e.eventCount(t)
		_, err := e.store.CreateOrganisation(e.ctx, affiliation.Organisation{ID: "o-" + loc, Name: "N", Kind: "k", LocationID: loc})
		assert.ErrorIs(t, err, affiliation.ErrNotFound, loc)
		assert.ErrorIs(t, err, location.ErrNotFound, loc)
		assert.Zero(t, e.count(t, affiliation.OrganisationsTable, "1 = 1"), loc)
		assert.Equal(t, before, e.eventCount(t), loc)
	}
}

func TestGetOrganisation(t *testing.T) {
	e := newEnv(t)
	e.org(t, "live")
	e.org(t, "deleted")
	require.NoError(t, e.store.DeleteOrganisation(e.ctx, "deleted"))
	tests := []struct {
		id   string
		want error
	}{
		{"live", nil},
		{"deleted", affiliation.ErrNotFound},
		{"unknown", affiliation.ErrNotFound},
		{"", affiliation.ErrInvalidInput},
		{"bad id", affiliation.ErrInvalidInput},
	}
	for _, tt := range tests {
		_, err := e.store.GetOrganisation(e.ctx, tt.id)
		if tt.want == nil {
			assert.NoError(t, err, tt.id)
		} else {
			assert.ErrorIs(t, err, tt.want, tt.id)
		}
	}
}

func TestUpdateServices(t *testing.T) {
	e := newEnv(t)
	e.org(t, "o1", "occurrences")

	t.Run("ReplacesNormalisedAndAudited", func(t *testing.T) {
		require.NoError(t, e.store.UpdateServices(e.ctx, "o1", []string{"equipment", "claims", "equipment"}))
		o, err := e.store.GetOrganisation(e.ctx, "o1")
		require.NoError(t, err)
		assert.Equal(t, []string{"claims", "equipment"}, o.Services)
		evs := e.events(t, affiliation.TypeOrganisationUpdated)
		require.Len(t, evs, 1)
		assert.Equal(t, "m1", evs[0].LocationID)
		assert.Equal(t, map[string]any{"organisation_id": "o1", "services": []any{"claims", "equipment"}}, evs[0].Details)
	})

	t.Run("UnchangedSetWritesNothing", func(t *testing.T) {
		before := e.eventCount(t)
		require.NoError(t, e.store.UpdateServices(e.ctx, "o1", []string{"equipment", "claims"}))
		assert.Equal(t, before, e.eventCount(t))
	})

	t.Run("EmptyListClears", func(t *testing.T) {
		require.NoError(t, e.store.UpdateServices(e.ctx, "o1", nil))
		o, err := e.store.GetOrganisation(e.ctx, "o1")
		require.NoError(t, err)
		assert.Equal(t, []string{}, o.Services)
	})

	t.Run("RejectsBadInputAndUnknownOrganisation", func(t *testing.T) {
		e.org(t, "o-deleted")
		require.NoError(t, e.store.DeleteOrganisation(e.ctx, "o-deleted"))
		tests := []struct {
			id       string
			services []string
			want     error
		}{
			{"o1", []string{"bad name"}, affiliation.ErrInvalidInput},
			{"", []string{"a"}, affiliation.ErrInvalidInput},
			{"unknown", []string{"a"}, affiliation.ErrNotFound},
			{"o-deleted", []string{"a"}, affiliation.ErrNotFound},
		}
		for _, tt := range tests {
			before := e.eventCount(t)
			err := e.store.UpdateServices(e.ctx, tt.id, tt.services)
			assert.ErrorIs(t, err, tt.want, tt.id)
			assert.Equal(t, before, e.eventCount(t), tt.id)
		}
		o, err := e.store.GetOrganisation(e.ctx, "o1")
		require.NoError(t, err)
		assert.Equal(t, []string{}, o.Services)
	})
}

func TestLoadOrganisations_ReturnsLiveOnesInIDOrder(t *testing.T) {
	e := newEnv(t)
	e.org(t, "b", "x")
	e.org(t, "a")
	e.org(t, "c")
	require.NoError(t, e.store.DeleteOrganisation(e.ctx, "c"))
	got, err := affiliation.LoadOrganisations(e.ctx, e.db)
	require.NoError(t, err)
	assert.Equal(t, []string{"a", "b"}, orgIDs(got))
	assert.Equal(t, []string{"x"}, got[1].Services)
	assert.Equal(t, "m1", got[1].LocationID)
}

func TestStore_RejectsMissingDependencies(t *testing.T) {
	e := newEnv(t)
	var nilCtx context.Context
	noDB := affiliation.NewStore(nil, e.log)
	noLog := affiliation.NewStore(e.db, nil)
	var zero affiliation.Store
	checks := map[string]error{
		"MigrateNil":          affiliation.Migrate(nil),
		"LoadLinksNilDB":      second(affiliation.LoadLinks(e.ctx, nil)),
		"LoadLinksNilCtx":     second(affiliation.LoadLinks(nilCtx, e.db)),
		"LoadOrgsNilDB":       second(affiliation.LoadOrganisations(e.ctx, nil)),
		"GetNilCtx":           second(e.store.GetOrganisation(nilCtx, "o1")),
		"GetNoDB":             second(noDB.GetOrganisation(e.ctx, "o1")),
		"MembersNoDB":         second(noDB.Members(e.ctx, "o1")),
		"CreateNoLog":         second(noLog.CreateOrganisation(e.ctx, affiliation.Organisation{ID: "o1", Name: "n", Kind: "k", LocationID: "m1"})),
		"CreateZeroStore":     second(zero.CreateOrganisation(e.ctx, affiliation.Organisation{ID: "o1", Name: "n", Kind: "k", LocationID: "m1"})),
		"LinkNoLog":           noLog.Link(e.ctx, affiliation.Link{UserID: "u1", OrganisationID: "o1"}),
		"LinkTxNilTx":         txwrite.Link(e.ctx, nil, e.store, affiliation.Link{UserID: "u1", OrganisationID: "o1"}),
		"UnlinkTxNilTx":       txwrite.Unlink(e.ctx, nil, e.store, "u1", "o1"),
		"DeleteTxNilTx":       second(txwrite.DeleteOrganisation(e.ctx, nil, e.store, "o1")),
		"LinkTxZeroStore":     txwrite.Link(e.ctx, e.db, &zero, affiliation.Link{UserID: "u1", OrganisationID: "o1"}),
		"DeleteNoLog":         noLog.DeleteOrganisation(e.ctx, "o1"),
		"UpdateServicesNoLog": noLog.UpdateServices(e.ctx, "o1", nil),
	}
	for name, err := range checks {
		assert.ErrorIs(t, err, affiliation.ErrInvalidInput, name)
	}
	assert.Zero(t, e.count(t, affiliation.OrganisationsTable, "1 = 1"))
}

func second[T any](_ T, err error) error { return err }

func TestMigrate_IsIdempotent(t *testing.T) {
	e := newEnv(t)
	e.org(t, "kept")
	require.NoError(t, affiliation.Migrate(e.db))
	_, err := e.store.GetOrganisation(e.ctx, "kept")
	assert.NoError(t, err)
}

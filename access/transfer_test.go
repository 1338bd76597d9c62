package access_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/civicstack/townhall"
	"github.com/civicstack/townhall/access"
	"github.com/civicstack/townhall/internal/testkit"
	"github.com/civicstack/townhall/location"
	"github.com/civicstack/townhall/users"
)

// roundTrip exports p, writes and reads the document as JSON, and returns it.
func roundTrip(t *testing.T, p *townhall.Platform) *access.Document {
	t.Helper()
	doc, err := p.Admin.Export(context.Background())
	require.NoError(t, err)
	var buf bytes.Buffer
	require.NoError(t, access.WriteDocument(&buf, doc))
	assert.NotContains(t, buf.String(), "argon2", "no password hash leaves the database")
	back, err := access.ReadDocument(&buf)
	require.NoError(t, err)
	return back
}

// On generated worlds, a platform imported from an export decides every
// request exactly as the exported one: every subject (impersonation
// sessions are not exported) × every action, as a gate in every
// municipality and on records at every location, category and
// organisation.
func TestImport_ReproducesDecisions(t *testing.T) {
	for _, seed := range diffSeeds {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			w := newGenWorld(t, seed)
			ctx := context.Background()
			doc := roundTrip(t, w.p)
			q := testkit.Open(t, townhall.WithRegistry(w.reg), townhall.WithLevels(w.p.Locations.Levels()...),
				townhall.WithClock(testkit.NewClock().Now))
			require.NoError(t, q.Admin.Import(ctx, access.System(), doc, access.ImportOptions{}))

			var munis []string
			for _, id := range w.live {
				if l, err := w.p.Locations.Get(ctx, id); err == nil && l.Level == location.Municipality {
					munis = append(munis, id)
				}
			}
			var reqs []access.Request
			for _, ma := range w.actions() {
				for _, m := range munis {
					reqs = append(reqs, access.Request{Municipality: m, Module: ma[0], Action: ma[1]})
				}
				for i, loc := range w.live {
					reqs = append(reqs, access.Request{Module: ma[0], Action: ma[1], Resource: &access.Resource{
						LocationID: loc, Category: genCategories[i%len(genCategories)], OrganisationID: w.orgs[i%len(w.orgs)]}})
				}
			}
			compared, allowed := 0, 0
			for _, s := range w.subjects {
				if s.ImpersonatorID != "" {
					continue
				}
				for _, req := range reqs {
					want, werr := w.p.Checker.Check(ctx, s, req)
					got, gerr := q.Checker.Check(ctx, s, req)
					require.Equal(t, werr == nil, gerr == nil, "%+v %+v: %v / %v", s, req, werr, gerr)
					require.Equal(t, want, got, "%+v %+v", s, req)
					compared++
					if want.Allowed {
						allowed++
					}
				}
			}
			assert.Positive(t, allowed)
			t.Logf("seed %d: %d decisions compared, %d allowed; %d users, %d grants, %d links imported",
				seed, compared, allowed, len(doc.Users), len(doc.Grants), len(doc.Links))
			// The export of the import is the same document.
			again := roundTrip(t, q)
			again.ExportedAt = doc.ExportedAt
			for i := range again.Profiles {
				again.Profiles[i].ID, doc.Profiles[i].ID = "", ""
				again.Profiles[i].CreatedAt = doc.Profiles[i].CreatedAt
				again.Profiles[i].UpdatedAt = doc.Profiles[i].UpdatedAt
			}
			assert.Equal(t, doc, again)
		})
	}
}

// importFixture is a small platform to export.
func importFixture(t *testing.T) (*townhall.Platform, *access.Document) {
	p := testkit.Open(t)
	testkit.Locations(t, p, location.Location{ID: "R", Level: "region"},
		location.Location{ID: "W", Level: "municipality", ParentID: "R"})
	testkit.Member(t, p, "olga", "operator", "W")
	return p, roundTrip(t, p)
}

func TestImport_RefusesANonEmptyDatabaseUnlessMerging(t *testing.T) {
	ctx := context.Background()
	p, doc := importFixture(t)
	head, err := p.Audit.Head(ctx)
	require.NoError(t, err)

	err = p.Admin.Import(ctx, access.System(), doc, access.ImportOptions{})
	require.ErrorIs(t, err, access.ErrInvalidInput)
	after, err := p.Audit.Head(ctx)
	require.NoError(t, err)
	assert.Equal(t, head, after, "a refused import writes nothing")

	// Merging what is there already adds nothing.
	doc.Users = append(doc.Users, access.ExportedUser{ID: "new", Username: "new", Kind: users.Interactive, Active: true})
	doc.Grants = append(doc.Grants, access.ExportedGrant{UserID: "olga", Role: "manager", LocationID: "W"})
	require.NoError(t, p.Admin.Import(ctx, access.System(), doc, access.ImportOptions{Merge: true}))
	merged := roundTrip(t, p)
	assert.Len(t, merged.Users, 2)
	assert.Len(t, merged.Profiles, 1)
	assert.Len(t, merged.Grants, 2)
	d, err := p.Checker.Check(ctx, access.Subject{UserID: "olga"}, access.Request{Municipality: "W", Module: "occurrences", Action: "close"})
	require.NoError(t, err)
	assert.True(t, d.Allowed, "the merged grant counts at once")
}

func TestImport_NeverHalfApplies(t *testing.T) {
	ctx := context.Background()
	_, doc := importFixture(t)
	doc.Grants = append(doc.Grants, access.ExportedGrant{UserID: "olga", Role: "no_such_role", LocationID: "W"})
	q := testkit.Open(t)
	head, err := q.Audit.Head(ctx)
	require.NoError(t, err)
	err = q.Admin.Import(ctx, access.System(), doc, access.ImportOptions{})
	require.ErrorIs(t, err, access.ErrUnknownRole)
	empty := roundTrip(t, q)
	assert.Empty(t, empty.Users)
	assert.Empty(t, empty.Locations)
	assert.Empty(t, empty.Grants)
	after, err := q.Audit.Head(ctx)
	require.NoError(t, err)
	assert.Equal(t, head, after)
	_, err = q.Checker.Check(ctx, access.Subject{UserID: "olga"}, access.Request{Municipality: "W", Module: "occurrences", Action: "view"})
	assert.ErrorIs(t, err, location.ErrNotFound, "the snapshot holds none of it")
}

func TestImport_OnlySystemAndSuperAdmins(t *testing.T) {
	ctx := context.Background()
	p, doc := importFixture(t)
	q := testkit.Open(t)
	testkit.User(t, q, "root")
	testkit.User(t, q, "olga2")
	err := q.Admin.Import(ctx, access.Subject{UserID: "olga2"}, doc, access.ImportOptions{Merge: true})
	assert.ErrorIs(t, err, access.ErrForbidden)
	require.NoError(t, q.Admin.SetSuperAdmin(ctx, access.System(), "root", true))
	require.NoError(t, q.Admin.Import(ctx, access.Subject{UserID: "root"}, doc, access.ImportOptions{Merge: true}))
	_ = p
}

func TestReadDocument_RefusesOtherVersionsAndUnknownFields(t *testing.T) {
	for _, tc := range []string{`{"version": 2}`, `{"version": 1, "secrets": []}`, `[`} {
		_, err := access.ReadDocument(bytes.NewBufferString(tc))
		assert.ErrorIs(t, err, access.ErrInvalidInput, tc)
	}
}

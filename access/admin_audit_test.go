package access_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/civicstack/townhall"
	"github.com/civicstack/townhall/access"
	"github.com/civicstack/townhall/affiliation"
	"github.com/civicstack/townhall/audit"
	"github.com/civicstack/townhall/internal/dbtest"
	"github.com/civicstack/townhall/internal/testkit"
	"github.com/civicstack/townhall/location"
	"github.com/civicstack/townhall/users"
)

// TestCheck_DecisionsGoThroughTheAsynchronousWriter: denied decisions are
// recorded (anonymous ones with an empty actor), allowed ones only with
// townhall.WithAuditAllowed.
func TestCheck_DecisionsGoThroughTheAsynchronousWriter(t *testing.T) {
	ctx := context.Background()
	for _, auditAllowed := range []bool{false, true} {
		name := "denied only"
		var opts []townhall.Option
		if auditAllowed {
			name = "with allowed"
			opts = append(opts, townhall.WithAuditAllowed())
		}
		t.Run(name, func(t *testing.T) {
			e := openAdmin(t, nil, opts...)
			e.tree(t)
			testkit.Member(t, e.p, "op", access.RoleOperator, "M1")
			seq := e.mark(t)
			op := access.Subject{UserID: "op"}
			require.False(t, e.allowed(t, op, probe(access.RoleAdmin, "M1")).Allowed)
			require.True(t, e.allowed(t, op, probe(access.RoleOperator, "M1")).Allowed)
			require.False(t, e.allowed(t, access.Anonymous(), probe(access.RoleOperator, "M2")).Allowed)

			events, err := e.p.Audit.Query(ctx, audit.Query{AfterSeq: seq})
			require.NoError(t, err)
			var denied, allowed []audit.Event
			for _, ev := range events {
				switch ev.Type {
				case audit.TypeDecisionDenied:
					denied = append(denied, ev)
				case audit.TypeDecisionAllowed:
					allowed = append(allowed, ev)
				}
			}
			require.Len(t, denied, 2)
			assert.Equal(t, "op", denied[0].ActorID)
			assert.Equal(t, "M1", denied[0].LocationID)
			assert.Equal(t, "occurrences", denied[0].Module)
			assert.Equal(t, "delete", denied[0].Action)
			assert.Equal(t, string(access.ReasonNoGrant), denied[0].Reason)
			require.NotNil(t, denied[0].Allowed)
			assert.False(t, *denied[0].Allowed)
			assert.Empty(t, denied[1].ActorID, "an anonymous decision stays anonymous")
			if auditAllowed {
				require.Len(t, allowed, 1)
				assert.Equal(t, "op", allowed[0].ActorID)
				assert.Equal(t, string(access.ReasonRole), allowed[0].Reason)
			} else {
				assert.Empty(t, allowed)
			}
		})
	}
}

// TestStoreWrites_AuditedWithTheSubjectInTheContext: unguarded store
// writes carry the subject of access.WithSubject (impersonator included),
// or "system" without one, and the next Check sees them.
func TestStoreWrites_AuditedWithTheSubjectInTheContext(t *testing.T) {
	bg := context.Background()
	e := openAdmin(t, nil)
	e.tree(t)
	pat := access.WithSubject(bg, access.Subject{UserID: "pat"})
	imp := access.WithSubject(bg, access.Subject{UserID: "madmin", ImpersonatorID: "root"})

	seq := e.mark(t)
	_, err := e.p.Users.Create(pat, users.NewUser{ID: "newbie", Username: "newbie"})
	require.NoError(t, err)
	_, err = e.p.Locations.Create(imp, location.Location{ID: "V9", Level: "village", ParentID: "M2"})
	require.NoError(t, err)
	_, err = e.p.Affiliations.CreateOrganisation(bg, affiliation.Organisation{ID: "club", Name: "Club", Kind: "sports", LocationID: "V9", Services: []string{"occurrences"}})
	require.NoError(t, err)
	events := e.changesSince(t, seq)
	require.Len(t, events, 3)
	assert.Equal(t, audit.TypeUserCreated, events[0].Type)
	assert.Equal(t, "pat", events[0].ActorID)
	assert.Equal(t, audit.TypeLocationCreated, events[1].Type)
	assert.Equal(t, "madmin", events[1].ActorID)
	assert.Equal(t, "root", events[1].ImpersonatorID)
	assert.Equal(t, audit.TypeOrganisationCreated, events[2].Type)
	assert.Equal(t, access.SystemActorID, events[2].ActorID)

	// A grant without a profile counts for nothing until a store-level
	// write adds the profile: the next Check sees it.
	testkit.RawGrant(t, e.p, "newbie", access.RoleOperator, "V9")
	req := access.Request{Module: "equipment", Action: "update", Resource: &access.Resource{LocationID: "V9"}}
	require.Equal(t, access.ReasonNoGrant, e.allowed(t, access.Subject{UserID: "newbie"}, req).Reason)
	_, err = e.p.Profiles.Create(pat, users.Profile{UserID: "newbie", LocationID: "M2", IsActive: true, IsApproved: true})
	require.NoError(t, err)
	assert.True(t, e.allowed(t, access.Subject{UserID: "newbie"}, req).Allowed)
}

// permit is a host model that embeds the audit stamp.
type permit struct {
	ID   string `gorm:"size:64;primaryKey"`
	Name string `gorm:"size:100"`
	audit.Stamp
}

// TestOpen_StampsHostModelsWithTheSubject: townhall.Open registers the
// stamp plugin on the host's handle, so host models that embed
// audit.Stamp get CreatedBy/UpdatedBy from access.WithSubject (SPEC §5).
// Opening twice on one handle registers it once.
func TestOpen_StampsHostModelsWithTheSubject(t *testing.T) {
	bg := context.Background()
	db, dsn := dbtest.NewWithDSN(t)
	p, err := townhall.Open(bg, db, townhall.WithKDF(testkit.FastKDF))
	require.NoError(t, err)
	defer p.Close()
	again, err := townhall.Open(bg, db, townhall.WithKDF(testkit.FastKDF))
	require.NoError(t, err, "opening again on the same handle")
	require.NoError(t, again.Close())
	require.NoError(t, db.AutoMigrate(&permit{}))

	alice := access.WithSubject(bg, access.Subject{UserID: "alice"})
	bob := access.WithSubject(bg, access.Subject{UserID: "bob", ImpersonatorID: "root"})
	load := func(id string) permit {
		var got permit
		require.NoError(t, db.First(&got, "id = ?", id).Error)
		return got
	}
	require.NoError(t, db.WithContext(alice).Create(&permit{ID: "p1", Name: "market stall"}).Error)
	assert.Equal(t, audit.Stamp{CreatedBy: "alice", UpdatedBy: "alice"}, load("p1").Stamp)
	require.NoError(t, db.WithContext(bob).Model(&permit{ID: "p1"}).Update("name", "bigger stall").Error)
	assert.Equal(t, audit.Stamp{CreatedBy: "alice", UpdatedBy: "bob"}, load("p1").Stamp, "the impersonated user is stamped")
	require.NoError(t, db.WithContext(bg).Create(&permit{ID: "p2"}).Error)
	assert.Equal(t, audit.Stamp{CreatedBy: "system", UpdatedBy: "system"}, load("p2").Stamp)

	other := dbtest.Open(t, dsn)
	require.NoError(t, other.WithContext(alice).Create(&permit{ID: "p3"}).Error)
	assert.Empty(t, load("p3").CreatedBy, "a handle townhall was not opened on is left alone")
}

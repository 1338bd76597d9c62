package policy_test

import (
	"context"
	"slices"
	"testing"

	gormadapter "github.com/casbin/gorm-adapter/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/civicstack/townhall/internal/dbtest"
	"github.com/civicstack/townhall/internal/dbx"
	"github.com/civicstack/townhall/internal/policy"
)

func newDB(t *testing.T) *gorm.DB {
	t.Helper()
	db := dbtest.New(t)
	require.NoError(t, policy.Migrate(db))
	return db
}

func TestGrants_WriteReadDelete(t *testing.T) {
	ctx := context.Background()
	db := newDB(t)
	g := func(u, r, d string) policy.Grant { return policy.Grant{UserID: u, Role: r, Domain: d} }
	for _, x := range []policy.Grant{g("amy", "operator", "M2"), g("amy", "admin", "M1"), g("bob", "viewer", "M1"), g("amy", "super", "*")} {
		wrote, err := policy.InsertGrant(db, x)
		require.NoError(t, err)
		assert.True(t, wrote, "%v is new", x)
	}
	wrote, err := policy.InsertGrant(db, g("amy", "admin", "M1"))
	require.NoError(t, err)
	assert.False(t, wrote, "a grant already held writes nothing")
	// A row townhall did not write (no prefixes) is not a grant.
	require.NoError(t, db.Create(&gormadapter.CasbinRule{Ptype: "g", V0: "alice", V1: "admin", V2: "M1"}).Error)

	amy, err := policy.GrantsOf(ctx, db, "amy")
	require.NoError(t, err)
	assert.Equal(t, []policy.Grant{g("amy", "super", "*"), g("amy", "admin", "M1"), g("amy", "operator", "M2")}, amy, "by domain, then role")
	all, err := policy.AllGrants(ctx, db)
	require.NoError(t, err)
	assert.Equal(t, []policy.Grant{g("amy", "super", "*"), g("amy", "admin", "M1"), g("amy", "operator", "M2"), g("bob", "viewer", "M1")}, all)

	var scanned []policy.Grant
	require.NoError(t, policy.ScanGrants(ctx, db, "bob", func(u, r, d []byte) error {
		scanned = append(scanned, g(string(u), string(r), string(d)))
		return nil
	}))
	assert.Equal(t, []policy.Grant{g("bob", "viewer", "M1")}, scanned)

	for _, tc := range []struct {
		name string
		h    policy.Holders
		want []string
	}{
		{"at M1", policy.Holders{Domains: []string{"M1"}}, []string{"amy", "bob"}},
		{"at M1 among bob", policy.Holders{Domains: []string{"M1"}, Among: []string{"bob", "zed"}}, []string{"bob"}},
		{"at M2, M3 shared", policy.Holders{Domains: []string{"M2", "M3"}, Shared: true}, []string{"amy"}},
		{"among nobody", policy.Holders{Domains: []string{"M1"}, Among: []string{}}, nil},
		{"nowhere", policy.Holders{}, nil},
	} {
		var got []string
		err := dbx.Tx(ctx, db, func(tx *gorm.DB) error {
			var err error
			got, err = policy.HoldersAt(tx, tc.h)
			return err
		})
		require.NoError(t, err, tc.name)
		slices.Sort(got)
		assert.Equal(t, tc.want, got, tc.name)
	}

	deleted, err := policy.DeleteGrant(db, g("amy", "admin", "M1"))
	require.NoError(t, err)
	assert.True(t, deleted)
	deleted, err = policy.DeleteGrant(db, g("amy", "admin", "M1"))
	require.NoError(t, err)
	assert.False(t, deleted, "a grant not held deletes nothing")
	require.NoError(t, policy.DeleteGrantsAt(db, []string{"M1", "M9"}))
	require.NoError(t, policy.DeleteUserGrants(db, "amy"))
	all, err = policy.AllGrants(ctx, db)
	require.NoError(t, err)
	assert.Empty(t, all)
}

func TestSyncPermissions(t *testing.T) {
	ctx := context.Background()
	db := newDB(t)
	p := func(role, action string) policy.Permission {
		return policy.Permission{Role: role, Domain: "*", Module: "m", Action: action}
	}
	sync := func(want ...policy.Permission) (added, removed int) {
		t.Helper()
		require.NoError(t, dbx.Tx(ctx, db, func(tx *gorm.DB) error {
			var err error
			added, removed, err = policy.SyncPermissions(tx, want)
			return err
		}))
		return added, removed
	}
	rows := func() []string {
		var out []string
		require.NoError(t, db.Model(&gormadapter.CasbinRule{}).Where("ptype = ?", "p").
			Order("v0, v3").Pluck("v0", &out).Error)
		return out
	}
	added, removed := sync(p("a", "read"), p("a", "write"), p("a", "read"))
	assert.Equal(t, [2]int{2, 0}, [2]int{added, removed}, "a repeated permission is one row")
	assert.Equal(t, []string{policy.RoleKey("a"), policy.RoleKey("a")}, rows())
	added, removed = sync(p("a", "read"), p("a", "write"))
	assert.Equal(t, [2]int{0, 0}, [2]int{added, removed}, "nothing to do")
	// A stray row (extra column) and a dropped permission go; a new one comes.
	require.NoError(t, db.Create(&gormadapter.CasbinRule{Ptype: "p", V0: policy.RoleKey("a"), V1: "*", V2: "m", V3: "read", V4: "x"}).Error)
	added, removed = sync(p("a", "read"), p("b", "read"))
	assert.Equal(t, [2]int{1, 2}, [2]int{added, removed})
	assert.Equal(t, []string{policy.RoleKey("a"), policy.RoleKey("b")}, rows())
}

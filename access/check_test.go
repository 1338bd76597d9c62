package access_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/civicstack/townhall"
	"github.com/civicstack/townhall/access"
	"github.com/civicstack/townhall/internal/testkit"
	"github.com/civicstack/townhall/location"
	"github.com/civicstack/townhall/users"
)

// world is the fixture of the decision tests:
//
//	R (region)
//	├── D (district)
//	│   ├── M1 (municipality) ── V1 (village)
//	│   └── M2 (municipality)          equipment disabled here
//	└── D2 (district) ── M3 (municipality)
func world(t *testing.T) *townhall.Platform {
	t.Helper()
	ctx := context.Background()
	p := testkit.Open(t)
	testkit.Locations(t, p,
		location.Location{ID: "R", Level: "region"},
		location.Location{ID: "D", Level: "district", ParentID: "R"},
		location.Location{ID: "D2", Level: "district", ParentID: "R"},
		location.Location{ID: "M1", Level: "municipality", ParentID: "D"},
		location.Location{ID: "M2", Level: "municipality", ParentID: "D"},
		location.Location{ID: "M3", Level: "municipality", ParentID: "D2"},
		location.Location{ID: "V1", Level: "village", ParentID: "M1"},
	)
	sys := access.System()
	testkit.User(t, p, "super")
	require.NoError(t, p.Admin.SetSuperAdmin(ctx, sys, "super", true))
	testkit.User(t, p, "pat")
	require.NoError(t, p.Admin.Grant(ctx, sys, "pat", access.RolePlatformAdmin, "*"))
	testkit.Member(t, p, "dm", access.RoleManager, "D")
	testkit.Member(t, p, "admin1", access.RoleAdmin, "M1")
	testkit.Member(t, p, "viewer1", access.RoleViewer, "M1")
	// op's grant is at V1; its anchor is the profile at M1.
	testkit.Member(t, p, "op", access.RoleOperator, "M1")
	require.NoError(t, p.Admin.Revoke(ctx, sys, "op", access.RoleOperator, "M1"))
	require.NoError(t, p.Admin.Grant(ctx, sys, "op", access.RoleStaff, "V1"))

	testkit.User(t, p, "cat")
	_, err := p.Admin.AddMember(ctx, sys, access.Membership{UserID: "cat", LocationID: "M1", Role: "operator", AllowedCategories: []string{"roads"}})
	require.NoError(t, err)
	require.NoError(t, p.Admin.Approve(ctx, sys, "cat", "M1"))

	_, err = p.Profiles.CreateDepartment(ctx, users.Department{ID: "water", MunicipalityID: "M1", Name: "Water", Categories: []string{"water"}})
	require.NoError(t, err)
	testkit.User(t, p, "dept")
	_, err = p.Admin.AddMember(ctx, sys, access.Membership{UserID: "dept", LocationID: "M1", Role: "operator", DepartmentID: "water", AllowedCategories: []string{"roads"}})
	require.NoError(t, err)
	require.NoError(t, p.Admin.Approve(ctx, sys, "dept", "M1"))

	testkit.User(t, p, "unap")
	_, err = p.Admin.AddMember(ctx, sys, access.Membership{UserID: "unap", LocationID: "M1", Role: "operator"})
	require.NoError(t, err)

	testkit.Member(t, p, "inact", access.RoleOperator, "M1")
	require.NoError(t, p.Admin.SetProfileActive(ctx, sys, "inact", "M1", false))

	testkit.User(t, p, "noprof")
	testkit.RawGrant(t, p, "noprof", access.RoleOperator, "M1")

	testkit.Member(t, p, "off", access.RoleAdmin, "M1")
	require.NoError(t, p.Admin.SetUserActive(ctx, sys, "off", false))

	testkit.User(t, p, "plain")
	require.NoError(t, p.Admin.SetModuleEnabled(ctx, sys, "M2", "equipment", false))
	return p
}

func res(loc, cat string) *access.Resource { return &access.Resource{LocationID: loc, Category: cat} }

func TestCheck_DecisionOrder(t *testing.T) {
	p := world(t)
	ctx := context.Background()
	type want struct {
		allowed      bool
		reason       access.Reason
		role, domain string
	}
	cases := []struct {
		name    string
		subject string
		req     access.Request
		want    want
	}{
		{"anonymous public action", "", access.Request{Municipality: "M1", Module: "occurrences", Action: "view"}, want{true, access.ReasonPublic, "", ""}},
		{"anonymous non-public action", "", access.Request{Municipality: "M1", Module: "occurrences", Action: "update"}, want{false, access.ReasonNoGrant, "", ""}},
		{"anonymous public action, module disabled", "", access.Request{Municipality: "M2", Module: "occupancy", Action: "view"}, want{true, access.ReasonPublic, "", ""}},
		{"inactive user, public action", "off", access.Request{Municipality: "M1", Module: "occurrences", Action: "view"}, want{false, access.ReasonUserInactive, "", ""}},
		{"super admin, disabled module", "super", access.Request{Municipality: "M2", Module: "equipment", Action: "delete"}, want{true, access.ReasonSuperAdmin, "", ""}},
		{"platform admin, disabled module", "pat", access.Request{Municipality: "M2", Module: "equipment", Action: "view"}, want{false, access.ReasonModuleDisabled, "", ""}},
		{"signed-in public", "plain", access.Request{Municipality: "M1", Module: "occurrences", Action: "create"}, want{true, access.ReasonPublic, "", ""}},
		{"platform grant", "pat", access.Request{Municipality: "M3", Module: "users", Action: "manage"}, want{true, access.ReasonPlatformRole, "platform_admin", "*"}},
		{"platform module without municipality", "pat", access.Request{Module: "modules", Action: "configure"}, want{true, access.ReasonPlatformRole, "platform_admin", "*"}},
		{"platform module without municipality, location grant", "admin1", access.Request{Module: "users", Action: "manage"}, want{false, access.ReasonNoGrant, "", ""}},
		{"platform_admin gets only listed actions", "pat", access.Request{Municipality: "M1", Module: "equipment", Action: "delete"}, want{false, access.ReasonNoGrant, "", ""}},
		{"manager at district covers municipality", "dm", access.Request{Municipality: "M1", Module: "occurrences", Action: "assign"}, want{true, access.ReasonRole, "manager", "D"}},
		{"manager really left out of create list", "dm", access.Request{Municipality: "M1", Module: "equipment", Action: "delete"}, want{false, access.ReasonNoGrant, "", ""}},
		{"manager out of district", "dm", access.Request{Municipality: "M3", Module: "occurrences", Action: "assign"}, want{false, access.ReasonOutOfScope, "", ""}},
		{"manager, module disabled", "dm", access.Request{Municipality: "M2", Module: "equipment", Action: "create"}, want{false, access.ReasonModuleDisabled, "", ""}},
		{"admin implicit full control", "admin1", access.Request{Municipality: "M1", Module: "equipment", Action: "delete"}, want{true, access.ReasonRole, "admin", "M1"}},
		{"admin platform action by list", "admin1", access.Request{Municipality: "M1", Module: "audit", Action: "view"}, want{true, access.ReasonRole, "admin", "M1"}},
		{"admin no implicit platform action", "admin1", access.Request{Municipality: "M1", Module: "locations", Action: "manage"}, want{false, access.ReasonNoGrant, "", ""}},
		{"viewer implicit read-only", "viewer1", access.Request{Municipality: "M1", Module: "equipment", Action: "view"}, want{true, access.ReasonRole, "viewer", "M1"}},
		{"viewer no write", "viewer1", access.Request{Municipality: "M1", Module: "equipment", Action: "update"}, want{false, access.ReasonNoGrant, "", ""}},
		{"gate: grant below municipality", "op", access.Request{Municipality: "M1", Module: "equipment", Action: "update"}, want{true, access.ReasonRole, "operator", "V1"}},
		{"resource in grant subtree", "op", access.Request{Module: "equipment", Action: "update", Resource: res("V1", "")}, want{true, access.ReasonRole, "operator", "V1"}},
		{"resource outside grant subtree", "op", access.Request{Module: "equipment", Action: "update", Resource: res("M1", "")}, want{false, access.ReasonOutOfScope, "", ""}},
		{"resource outside named municipality", "admin1", access.Request{Municipality: "M2", Module: "equipment", Action: "update", Resource: res("V1", "")}, want{false, access.ReasonOutOfScope, "", ""}},
		{"category allowed", "cat", access.Request{Module: "equipment", Action: "update", Resource: res("V1", "roads")}, want{true, access.ReasonRole, "operator", "M1"}},
		{"category refused", "cat", access.Request{Module: "equipment", Action: "update", Resource: res("V1", "water")}, want{false, access.ReasonCategory, "", ""}},
		{"uncategorised record, restricted profile", "cat", access.Request{Module: "equipment", Action: "update", Resource: res("V1", "")}, want{false, access.ReasonCategory, "", ""}},
		{"empty intersection means none: profile set", "dept", access.Request{Module: "equipment", Action: "update", Resource: res("M1", "roads")}, want{false, access.ReasonCategory, "", ""}},
		{"empty intersection means none: department set", "dept", access.Request{Module: "equipment", Action: "update", Resource: res("M1", "water")}, want{false, access.ReasonCategory, "", ""}},
		{"unapproved profile", "unap", access.Request{Municipality: "M1", Module: "equipment", Action: "update"}, want{false, access.ReasonProfileNotApproved, "", ""}},
		{"inactive profile", "inact", access.Request{Municipality: "M1", Module: "equipment", Action: "update"}, want{false, access.ReasonProfileInactive, "", ""}},
		{"grant without profile counts for nothing", "noprof", access.Request{Municipality: "M1", Module: "equipment", Action: "update"}, want{false, access.ReasonNoGrant, "", ""}},
		{"record without location, role grant", "admin1", access.Request{Module: "equipment", Action: "update", Resource: res("", "")}, want{false, access.ReasonOutOfScope, "", ""}},
		{"record without location, super admin", "super", access.Request{Module: "equipment", Action: "update", Resource: res("", "")}, want{true, access.ReasonSuperAdmin, "", ""}},
		{"record without location, public, module disabled somewhere", "", access.Request{Module: "equipment", Action: "view", Resource: res("", "")}, want{false, access.ReasonNoGrant, "", ""}},
		{"record without location, public, enabled everywhere", "", access.Request{Module: "occurrences", Action: "view", Resource: res("", "")}, want{true, access.ReasonPublic, "", ""}},
		{"record above municipality level: no module setting", "dm", access.Request{Module: "equipment", Action: "create", Resource: res("D", "")}, want{true, access.ReasonRole, "manager", "D"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d, err := p.Checker.Check(ctx, access.Subject{UserID: tc.subject}, tc.req)
			require.NoError(t, err)
			assert.Equal(t, tc.want.allowed, d.Allowed, "allowed")
			assert.Equal(t, tc.want.reason, d.Reason, "reason")
			assert.Equal(t, tc.want.role, d.Role, "role")
			assert.Equal(t, tc.want.domain, d.Domain, "domain")
		})
	}
}

func TestCheck_BadInputIsATypedDenial(t *testing.T) {
	p := world(t)
	ctx := context.Background()
	cases := []struct {
		name    string
		subject access.Subject
		req     access.Request
		want    error
	}{
		{"unknown module", access.Subject{UserID: "admin1"}, access.Request{Municipality: "M1", Module: "nope", Action: "view"}, access.ErrUnknownModule},
		{"unknown action", access.Subject{UserID: "admin1"}, access.Request{Municipality: "M1", Module: "occurrences", Action: "nope"}, access.ErrUnknownAction},
		{"unknown municipality", access.Subject{UserID: "admin1"}, access.Request{Municipality: "MX", Module: "occurrences", Action: "view"}, location.ErrNotFound},
		{"not a municipality", access.Subject{UserID: "admin1"}, access.Request{Municipality: "D", Module: "occurrences", Action: "view"}, access.ErrInvalidInput},
		{"malformed municipality", access.Subject{UserID: "admin1"}, access.Request{Municipality: "M 1", Module: "occurrences", Action: "view"}, access.ErrInvalidInput},
		{"missing municipality", access.Subject{UserID: "admin1"}, access.Request{Module: "occurrences", Action: "view"}, access.ErrInvalidInput},
		{"unknown resource location", access.Subject{UserID: "admin1"}, access.Request{Module: "occurrences", Action: "view", Resource: res("nowhere", "")}, location.ErrNotFound},
		{"unknown user", access.Subject{UserID: "ghost"}, access.Request{Municipality: "M1", Module: "occurrences", Action: "view"}, users.ErrNotFound},
		{"unknown user, anonymous is not", access.Subject{UserID: "ghost"}, access.Request{Municipality: "M1", Module: "occurrences", Action: "update"}, users.ErrNotFound},
		{"impersonation without session", access.Subject{UserID: "admin1", ImpersonatorID: "super"}, access.Request{Municipality: "M1", Module: "occurrences", Action: "view"}, access.ErrInvalidToken},
		{"system is not a subject", access.System(), access.Request{Municipality: "M1", Module: "occurrences", Action: "view"}, access.ErrInvalidInput},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d, err := p.Checker.Check(ctx, tc.subject, tc.req)
			assert.ErrorIs(t, err, tc.want)
			assert.False(t, d.Allowed, "never an allow")
		})
	}
}

func TestUserCanAccessModule(t *testing.T) {
	p := world(t)
	ctx := context.Background()
	cases := []struct {
		subject, module, action string
		want                    bool
	}{
		{"", "occurrences", "view", true},
		{"", "occurrences", "update", false},
		{"super", "locations", "manage", true},
		{"pat", "modules", "configure", true},
		{"pat", "equipment", "delete", false},
		{"dm", "occurrences", "assign", true},
		{"dm", "equipment", "create", true},
		{"op", "equipment", "update", true},
		{"op", "equipment", "delete", false},
		{"viewer1", "occurrences", "view", true},
		{"unap", "equipment", "update", false},
		{"inact", "equipment", "update", false},
		{"noprof", "equipment", "update", false},
		{"off", "occurrences", "view", false},
		{"admin1", "users", "manage", true},
		{"admin1", "modules", "configure", false},
		{"plain", "occurrences", "create", true},
		{"plain", "equipment", "view", false},
	}
	for _, tc := range cases {
		ok, err := p.Checker.UserCanAccessModule(ctx, access.Subject{UserID: tc.subject}, tc.module, tc.action)
		require.NoError(t, err)
		assert.Equal(t, tc.want, ok, "%q %s.%s", tc.subject, tc.module, tc.action)
	}
	_, err := p.Checker.UserCanAccessModule(ctx, access.Subject{UserID: "ghost"}, "occurrences", "view")
	assert.ErrorIs(t, err, users.ErrNotFound)
	_, err = p.Checker.UserCanAccessModule(ctx, access.Subject{UserID: "dm"}, "occurrences", "fly")
	assert.ErrorIs(t, err, access.ErrUnknownAction)
}

func TestUserCanAccessModule_AllMunicipalitiesDisabled(t *testing.T) {
	p := world(t)
	ctx := context.Background()
	for _, m := range []string{"M1", "M2", "M3"} {
		require.NoError(t, p.Admin.SetModuleEnabled(ctx, access.System(), m, "occupancy", false))
	}
	for _, s := range []string{"", "dm", "plain", "admin1"} {
		ok, err := p.Checker.UserCanAccessModule(ctx, access.Subject{UserID: s}, "occupancy", "view")
		require.NoError(t, err)
		assert.False(t, ok, "%q", s)
	}
	ok, err := p.Checker.UserCanAccessModule(ctx, access.Subject{UserID: "super"}, "occupancy", "view")
	require.NoError(t, err)
	assert.True(t, ok)
}

package access_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"strings"
	"testing"
	"time"

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

// impWorld is the fixture of the impersonation tests: a platform with an
// injected clock on a database a second platform can open (dsn).
//
//	R ── D ─┬─ M1 ── V1     H1 (claims) at V1
//	        └─ M2
//
// super, super2, super3, super4: super admins; pat: platform_admin;
// admin1: admin at M1; op: operator granted at V1 (profile at M1);
// cat: operator at M1 for category roads; viewer1: viewer at M1;
// unap: unapproved operator; inact: inactive profile; off: inactive user;
// ca: claim_admin at M1 linked to H1; portal: linked to H1, no grant;
// plain: no profile; tech: a technical user.
type impWorld struct {
	p     *townhall.Platform
	clock *testkit.Clock
	dsn   string
}

func newImpWorld(t testing.TB, opts ...townhall.Option) *impWorld {
	t.Helper()
	ctx := context.Background()
	clock := testkit.NewClock()
	db, dsn := dbtest.NewWithDSN(t)
	opts = append([]townhall.Option{townhall.WithKDF(testkit.FastKDF), townhall.WithClock(clock.Now),
		townhall.WithRegistry(claimsRegistry(t))}, opts...)
	p, err := townhall.Open(ctx, db, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, p.Close()) })
	testkit.Locations(t, p,
		location.Location{ID: "R", Level: "region"},
		location.Location{ID: "D", Level: "district", ParentID: "R"},
		location.Location{ID: "M1", Level: "municipality", ParentID: "D"},
		location.Location{ID: "M2", Level: "municipality", ParentID: "D"},
		location.Location{ID: "V1", Level: "village", ParentID: "M1"},
	)
	sys := access.System()
	for _, id := range []string{"super", "super2", "super3", "super4"} {
		testkit.User(t, p, id)
		require.NoError(t, p.Admin.SetSuperAdmin(ctx, sys, id, true))
	}
	testkit.User(t, p, "pat")
	require.NoError(t, p.Admin.Grant(ctx, sys, "pat", access.RolePlatformAdmin, "*"))
	testkit.Member(t, p, "admin1", access.RoleAdmin, "M1")
	testkit.Member(t, p, "viewer1", access.RoleViewer, "M1")
	testkit.Member(t, p, "op", access.RoleOperator, "M1")
	require.NoError(t, p.Admin.Revoke(ctx, sys, "op", access.RoleOperator, "M1"))
	require.NoError(t, p.Admin.Grant(ctx, sys, "op", access.RoleOperator, "V1"))
	testkit.User(t, p, "cat")
	_, err = p.Admin.AddMember(ctx, sys, access.Membership{UserID: "cat", LocationID: "M1", Role: access.RoleOperator, AllowedCategories: []string{"roads"}})
	require.NoError(t, err)
	require.NoError(t, p.Admin.Approve(ctx, sys, "cat", "M1"))
	testkit.User(t, p, "unap")
	_, err = p.Admin.AddMember(ctx, sys, access.Membership{UserID: "unap", LocationID: "M1", Role: access.RoleOperator})
	require.NoError(t, err)
	testkit.Member(t, p, "inact", access.RoleOperator, "M1")
	require.NoError(t, p.Admin.SetProfileActive(ctx, sys, "inact", "M1", false))
	testkit.Member(t, p, "off", access.RoleAdmin, "M1")
	require.NoError(t, p.Admin.SetUserActive(ctx, sys, "off", false))
	testkit.Member(t, p, "ca", "claim_admin", "M1")
	testkit.User(t, p, "portal")
	testkit.User(t, p, "plain")
	_, err = p.Users.Create(ctx, users.NewUser{ID: "tech", Username: "tech", Kind: users.Technical})
	require.NoError(t, err)
	_, err = p.Affiliations.CreateOrganisation(ctx, affiliation.Organisation{ID: "H1", Name: "Clinic", Kind: "health_facility", LocationID: "V1", Services: []string{"claims"}})
	require.NoError(t, err)
	for _, u := range []string{"ca", "portal"} {
		require.NoError(t, p.Admin.Link(ctx, sys, affiliation.Link{UserID: u, OrganisationID: "H1"}))
	}
	return &impWorld{p: p, clock: clock, dsn: dsn}
}

// reopen opens a second platform on the same database with the same clock,
// as another process would.
func (w *impWorld) reopen(t *testing.T) *townhall.Platform {
	t.Helper()
	p, err := townhall.Open(context.Background(), dbtest.Open(t, w.dsn), townhall.WithKDF(testkit.FastKDF),
		townhall.WithClock(w.clock.Now), townhall.WithRegistry(claimsRegistry(t)))
	require.NoError(t, err)
	t.Cleanup(func() { p.Close() })
	return p
}

func (w *impWorld) impersonate(t *testing.T, admin, target string) string {
	t.Helper()
	token, err := w.p.Admin.Impersonate(context.Background(), access.Subject{UserID: admin}, target, "support ticket 42", 0)
	require.NoError(t, err)
	return token
}

var occurrencesUpdateM1 = access.Request{Municipality: "M1", Module: "occurrences", Action: "update"}

func TestImpersonate_ResolvesToTheTargetWithTheAdmin(t *testing.T) {
	w := newImpWorld(t)
	ctx := context.Background()
	token := w.impersonate(t, "super", "admin1")
	s, err := w.p.Admin.ResolveImpersonation(ctx, token)
	require.NoError(t, err)
	assert.Equal(t, access.Subject{UserID: "admin1", ImpersonatorID: "super"}, s)

	// A second process reading the same database resolves it alike.
	s2, err := w.reopen(t).Admin.ResolveImpersonation(ctx, token)
	require.NoError(t, err)
	assert.Equal(t, s, s2)

	// The start is audited with the reason and the session, the admin as
	// actor and the target as user.
	ev := lastEventOfType(t, w.p, audit.TypeImpersonationStart)
	assert.Equal(t, "super", ev.ActorID)
	assert.Equal(t, "admin1", ev.UserID)
	assert.Empty(t, ev.ImpersonatorID)
	assert.True(t, *ev.Allowed)
	assert.Equal(t, "support ticket 42", ev.Details["reason"])
	assert.NotEmpty(t, ev.Details["session"])
	assert.Equal(t, w.clock.Now().Add(time.Hour).UTC().Format(time.RFC3339Nano), ev.Details["expires_at"])
}

func TestImpersonate_TokenIsRandomAndStoredOnlyAsAHash(t *testing.T) {
	w := newImpWorld(t)
	a := w.impersonate(t, "super", "op")
	b := w.impersonate(t, "super", "op")
	assert.NotEqual(t, a, b)
	for _, token := range []string{a, b} {
		require.True(t, strings.HasPrefix(token, "thi_"))
		raw, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(token, "thi_"))
		require.NoError(t, err)
		assert.Len(t, raw, 32, "256 random bits")
	}
	var rows []map[string]any
	require.NoError(t, dbtest.Open(t, w.dsn).Table(access.SessionsTable).Find(&rows).Error)
	require.Len(t, rows, 2)
	hashes := map[string]bool{}
	for _, row := range rows {
		for col, v := range row {
			if s, ok := v.(string); ok {
				assert.NotContains(t, s, strings.TrimPrefix(a, "thi_"), "column %s", col)
				assert.NotContains(t, s, strings.TrimPrefix(b, "thi_"), "column %s", col)
			}
		}
		hashes[row["token_hash"].(string)] = true
	}
	for _, token := range []string{a, b} {
		sum := sha256.Sum256([]byte(token))
		assert.True(t, hashes[hex.EncodeToString(sum[:])], "stored as its SHA-256")
	}
}

func TestImpersonate_Refusals(t *testing.T) {
	w := newImpWorld(t)
	ctx := context.Background()
	require.NoError(t, w.p.Admin.SetUserActive(ctx, access.System(), "super4", false))
	nested := w.impersonate(t, "super", "admin1")
	nestedSubject, err := w.p.Admin.ResolveImpersonation(ctx, nested)
	require.NoError(t, err)

	cases := []struct {
		name   string
		actor  access.Subject
		target string
	}{
		{"not a super admin", access.Subject{UserID: "admin1"}, "op"},
		{"platform_admin", access.Subject{UserID: "pat"}, "op"},
		{"the system actor", access.System(), "op"},
		{"anonymous", access.Anonymous(), "op"},
		{"inactive super admin", access.Subject{UserID: "super4"}, "op"},
		{"of another super admin", access.Subject{UserID: "super"}, "super2"},
		{"of an inactive super admin", access.Subject{UserID: "super"}, "super4"},
		{"of a technical user", access.Subject{UserID: "super"}, "tech"},
		{"of oneself", access.Subject{UserID: "super"}, "super"},
		{"nested", nestedSubject, "op"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			token, err := w.p.Admin.Impersonate(ctx, tc.actor, tc.target, "because", 0)
			assert.ErrorIs(t, err, access.ErrForbidden)
			assert.Empty(t, token)
			ev := lastEventOfType(t, w.p, audit.TypeImpersonationStart)
			assert.False(t, *ev.Allowed, "refusals are audited")
			assert.Equal(t, tc.target, ev.UserID)
			assert.Equal(t, tc.actor.ImpersonatorID, ev.ImpersonatorID)
		})
	}
	refused := 0
	for _, ev := range eventsOfType(t, w.p, audit.TypeImpersonationStart) {
		if !*ev.Allowed {
			refused++
		}
	}
	assert.Equal(t, len(cases), refused)
	var n int64
	require.NoError(t, dbtest.Open(t, w.dsn).Table(access.SessionsTable).Count(&n).Error)
	assert.EqualValues(t, 1, n, "only the session of the nested case's setup")
}

func TestImpersonate_BadInputIsTypedAndNotAudited(t *testing.T) {
	w := newImpWorld(t, townhall.WithMaxImpersonationTTL(2*time.Hour))
	ctx := context.Background()
	require.NoError(t, w.p.Admin.DeleteUser(ctx, access.System(), "plain"))
	before := len(eventsOfType(t, w.p, audit.TypeImpersonationStart))
	super := access.Subject{UserID: "super"}
	cases := []struct {
		name, target, reason string
		ttl                  time.Duration
		want                 error
	}{
		{"no reason", "op", "", 0, access.ErrInvalidInput},
		{"blank reason", "op", " \t\n ", 0, access.ErrInvalidInput},
		{"reason too long", "op", strings.Repeat("é", 501), 0, access.ErrInvalidInput},
		{"reason with control characters", "op", "why\x00not", 0, access.ErrInvalidInput},
		{"reason not UTF-8", "op", "caf\xe9", 0, access.ErrInvalidInput},
		{"negative ttl", "op", "r", -time.Second, access.ErrInvalidInput},
		{"ttl above the maximum", "op", "r", 2*time.Hour + time.Microsecond, access.ErrInvalidInput},
		{"malformed target", "a b", "r", 0, access.ErrInvalidInput},
		{"unknown target", "ghost", "r", 0, users.ErrNotFound},
		{"deleted target", "plain", "r", 0, users.ErrNotFound},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			token, err := w.p.Admin.Impersonate(ctx, super, tc.target, tc.reason, tc.ttl)
			assert.ErrorIs(t, err, tc.want)
			assert.Empty(t, token)
		})
	}
	assert.Len(t, eventsOfType(t, w.p, audit.TypeImpersonationStart), before)
	_, err := w.p.Admin.Impersonate(ctx, super, "op", strings.Repeat("é", 500), 2*time.Hour)
	assert.NoError(t, err, "500 characters and the maximum ttl are accepted")
}

func TestImpersonate_TTL(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name     string
		max      time.Duration // 0: the default maximum
		ttl      time.Duration
		lifetime time.Duration
	}{
		{"default one hour", 0, 0, time.Hour},
		{"explicit", 0, 10 * time.Minute, 10 * time.Minute},
		{"default capped by a lower maximum", 30 * time.Minute, 0, 30 * time.Minute},
		{"up to a raised maximum", 24 * time.Hour, 24 * time.Hour, 24 * time.Hour},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var opts []townhall.Option
			if tc.max > 0 {
				opts = append(opts, townhall.WithMaxImpersonationTTL(tc.max))
			}
			w := newImpWorld(t, opts...)
			token, err := w.p.Admin.Impersonate(ctx, access.Subject{UserID: "super"}, "op", "r", tc.ttl)
			require.NoError(t, err)
			other := w.reopen(t)
			w.clock.Advance(tc.lifetime - time.Microsecond)
			for _, p := range []*townhall.Platform{w.p, other} {
				_, err = p.Admin.ResolveImpersonation(ctx, token)
				assert.NoError(t, err, "alive one microsecond before expiry")
			}
			w.clock.Advance(time.Microsecond)
			for _, p := range []*townhall.Platform{w.p, other} {
				_, err = p.Admin.ResolveImpersonation(ctx, token)
				assert.ErrorIs(t, err, access.ErrInvalidToken, "dead at expiry")
				_, err = p.Checker.Check(ctx, access.Subject{UserID: "op", ImpersonatorID: "super"}, occurrencesUpdateM1)
				assert.ErrorIs(t, err, access.ErrInvalidToken)
			}
			assert.ErrorIs(t, w.p.Admin.StopImpersonation(ctx, token), access.ErrInvalidToken, "an expired session cannot be stopped")
		})
	}
	w := newImpWorld(t, townhall.WithMaxImpersonationTTL(30*time.Minute))
	_, err := w.p.Admin.Impersonate(ctx, access.Subject{UserID: "super"}, "op", "r", 31*time.Minute)
	assert.ErrorIs(t, err, access.ErrInvalidInput, "above the configured maximum")
}

func TestResolveImpersonation_RejectsMalformedAndForgedTokens(t *testing.T) {
	w := newImpWorld(t)
	ctx := context.Background()
	token := w.impersonate(t, "super", "op")
	sum := sha256.Sum256([]byte(token))
	flip := []byte(token)
	if flip[10] == 'A' {
		flip[10] = 'B'
	} else {
		flip[10] = 'A'
	}
	var forged [32]byte
	forged[0] = 1
	bad := map[string]string{
		"empty":              "",
		"prefix only":        "thi_",
		"no prefix":          strings.TrimPrefix(token, "thi_"),
		"other prefix":       "THI_" + strings.TrimPrefix(token, "thi_"),
		"one character off":  string(flip),
		"truncated":          token[:len(token)-1],
		"extended":           token + "A",
		"padded":             token + "=",
		"whitespace":         " " + token,
		"forged":             "thi_" + base64.RawURLEncoding.EncodeToString(forged[:]),
		"stored hash":        hex.EncodeToString(sum[:]),
		"not base64":         "thi_" + strings.Repeat("!", 43),
		"not UTF-8":          "thi_" + strings.Repeat("\xff", 43),
		"NUL bytes":          "thi_" + strings.Repeat("\x00", 43),
		"very long":          "thi_" + strings.Repeat("A", 1<<20),
		"session id instead": lastEventOfType(t, w.p, audit.TypeImpersonationStart).Details["session"].(string),
	}
	for name, tok := range bad {
		t.Run(name, func(t *testing.T) {
			require.NotPanics(t, func() {
				s, err := w.p.Admin.ResolveImpersonation(ctx, tok)
				assert.ErrorIs(t, err, access.ErrInvalidToken)
				assert.Equal(t, access.Subject{}, s)
				assert.ErrorIs(t, w.p.Admin.StopImpersonation(ctx, tok), access.ErrInvalidToken)
			})
		})
	}
	s, err := w.p.Admin.ResolveImpersonation(ctx, token)
	require.NoError(t, err, "the real token still works")
	assert.Equal(t, "op", s.UserID)
}

func TestResolveImpersonation_NeverTouchesTheDatabase(t *testing.T) {
	w := newImpWorld(t)
	ctx := context.Background()
	token := w.impersonate(t, "super", "op")
	db := dbtest.Open(t, w.dsn)
	other, err := townhall.Open(ctx, db, townhall.WithKDF(testkit.FastKDF), townhall.WithClock(w.clock.Now),
		townhall.WithRegistry(claimsRegistry(t)))
	require.NoError(t, err)
	defer other.Close()
	sqlDB, err := db.DB()
	require.NoError(t, err)
	require.NoError(t, sqlDB.Close())

	s, err := other.Admin.ResolveImpersonation(ctx, token)
	require.NoError(t, err)
	assert.Equal(t, access.Subject{UserID: "op", ImpersonatorID: "super"}, s)
	d, err := other.Checker.Check(ctx, s, occurrencesUpdateM1)
	require.NoError(t, err)
	assert.True(t, d.Allowed)
}

// TestImpersonation_SessionDies covers every way a session ends. After each
// death the token no longer resolves, the impersonated subject is refused
// by Check, UserCanAccessModule and Admin, a fresh process agrees, and the
// session never comes back.
func TestImpersonation_SessionDies(t *testing.T) {
	w := newImpWorld(t)
	ctx := context.Background()
	sys := access.System()
	testkit.Member(t, w.p, "victim", access.RoleOperator, "M1")
	testkit.Member(t, w.p, "riser", access.RoleOperator, "M1")
	cases := []struct {
		name          string
		admin, target string
		kill          func(t *testing.T, token string)
		revive        func(t *testing.T) // undoes the cause, where it can be undone
		stopEvent     string             // cause of the impersonation_stop event, if any
		ended         bool               // ended for good: stopping it again is refused
	}{
		{"stopped", "super", "op", func(t *testing.T, token string) {
			require.NoError(t, w.p.Admin.StopImpersonation(ctx, token))
		}, nil, "stopped", true},
		{"expired", "super", "cat", func(t *testing.T, _ string) {
			w.clock.Advance(time.Hour)
		}, nil, "", true},
		{"admin lost the flag", "super2", "viewer1", func(t *testing.T, _ string) {
			require.NoError(t, w.p.Admin.SetSuperAdmin(ctx, access.Subject{UserID: "super"}, "super2", false))
		}, func(t *testing.T) {
			require.NoError(t, w.p.Admin.SetSuperAdmin(ctx, access.Subject{UserID: "super"}, "super2", true))
		}, "admin_revoked", true},
		{"admin deactivated", "super3", "ca", func(t *testing.T, _ string) {
			require.NoError(t, w.p.Admin.SetUserActive(ctx, sys, "super3", false))
		}, func(t *testing.T) {
			require.NoError(t, w.p.Admin.SetUserActive(ctx, sys, "super3", true))
		}, "admin_revoked", true},
		{"target deleted", "super", "victim", func(t *testing.T, _ string) {
			require.NoError(t, w.p.Admin.DeleteUser(ctx, sys, "victim"))
		}, nil, "", true},
		{"admin deleted", "super2", "portal", func(t *testing.T, _ string) {
			require.NoError(t, w.p.Admin.DeleteUser(ctx, sys, "super2"))
		}, nil, "", true},
		// Super admins are never impersonated: the session ends for good,
		// even if the flag is later removed.
		{"target made a super admin", "super", "riser", func(t *testing.T, _ string) {
			require.NoError(t, w.p.Admin.SetSuperAdmin(ctx, sys, "riser", true))
		}, func(t *testing.T) {
			require.NoError(t, w.p.Admin.SetSuperAdmin(ctx, sys, "riser", false))
		}, "target_super_admin", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			token := w.impersonate(t, tc.admin, tc.target)
			subject := access.Subject{UserID: tc.target, ImpersonatorID: tc.admin}
			_, err := w.p.Checker.Check(ctx, subject, occurrencesUpdateM1)
			require.NoError(t, err, "live before")
			stops := len(eventsOfType(t, w.p, audit.TypeImpersonationStop))

			tc.kill(t, token)
			dead := func(p *townhall.Platform, where string) {
				s, err := p.Admin.ResolveImpersonation(ctx, token)
				assert.ErrorIs(t, err, access.ErrInvalidToken, where)
				assert.Equal(t, access.Subject{}, s, where)
				d, err := p.Checker.Check(ctx, subject, occurrencesUpdateM1)
				assert.False(t, d.Allowed, where)
				if tc.name != "target deleted" { // a deleted user is denied first
					assert.ErrorIs(t, err, access.ErrInvalidToken, where)
					ok, err := p.Checker.UserCanAccessModule(ctx, subject, "occurrences", "view")
					assert.ErrorIs(t, err, access.ErrInvalidToken, where)
					assert.False(t, ok, where)
					_, err = p.Checker.Filter(ctx, subject, "occurrences", "update")
					assert.ErrorIs(t, err, access.ErrInvalidToken, where)
				}
			}
			dead(w.p, "this process")
			fresh := w.reopen(t)
			dead(fresh, "a fresh process")
			require.NoError(t, fresh.Close())
			err = w.p.Admin.Grant(ctx, subject, "plain", access.RoleViewer, "M1")
			assert.Error(t, err, "a dead impersonated subject changes nothing")
			if tc.ended {
				assert.ErrorIs(t, w.p.Admin.StopImpersonation(ctx, token), access.ErrInvalidToken, "stopping a dead session")
			}

			stopEvents := eventsOfType(t, w.p, audit.TypeImpersonationStop)
			if tc.stopEvent == "" {
				assert.Len(t, stopEvents, stops)
			} else {
				require.Len(t, stopEvents, stops+1)
				ev := stopEvents[len(stopEvents)-1]
				assert.Equal(t, tc.target, ev.UserID)
				assert.Equal(t, tc.stopEvent, ev.Details["cause"])
				assert.Equal(t, tc.admin, ev.Details["admin"])
				if tc.stopEvent == "stopped" {
					assert.Equal(t, tc.admin, ev.ActorID)
				}
			}
			if tc.revive != nil {
				tc.revive(t)
				dead(w.p, "this process, after the cause is undone")
				fresh := w.reopen(t)
				dead(fresh, "a fresh process, after the cause is undone")
				require.NoError(t, fresh.Close())
			}
		})
	}
}

// TestImpersonation_StaleReplica: a process whose snapshot lags (no
// background sync) re-checks the admin and the target inside the
// transaction, so it never starts a session the database no longer
// allows, and never stops one twice; it resolves tokens from its snapshot
// only, and agrees once synced.
func TestImpersonation_StaleReplica(t *testing.T) {
	w := newImpWorld(t)
	ctx := context.Background()
	sys := access.System()
	testkit.User(t, w.p, "riser")
	stopped := w.impersonate(t, "super", "viewer1")
	stale, err := townhall.Open(ctx, dbtest.Open(t, w.dsn), townhall.WithKDF(testkit.FastKDF), townhall.WithClock(w.clock.Now),
		townhall.WithRegistry(claimsRegistry(t)), townhall.WithSyncInterval(-1))
	require.NoError(t, err)
	defer stale.Close()

	require.NoError(t, w.p.Admin.SetSuperAdmin(ctx, access.Subject{UserID: "super"}, "super2", false))
	require.NoError(t, w.p.Admin.SetSuperAdmin(ctx, sys, "riser", true))
	require.NoError(t, w.p.Admin.StopImpersonation(ctx, stopped))
	started := w.impersonate(t, "super", "op")

	_, err = stale.Admin.Impersonate(ctx, access.Subject{UserID: "super2"}, "op", "stale admin", 0)
	assert.ErrorIs(t, err, access.ErrForbidden, "the admin lost the flag meanwhile")
	_, err = stale.Admin.Impersonate(ctx, access.Subject{UserID: "super"}, "riser", "stale target", 0)
	assert.ErrorIs(t, err, access.ErrForbidden, "the target became a super admin meanwhile")
	ev := lastEventOfType(t, w.p, audit.TypeImpersonationStart)
	assert.Equal(t, "riser", ev.UserID)
	assert.False(t, *ev.Allowed, "audited as a refusal")
	_, err = stale.Admin.ResolveImpersonation(ctx, started)
	assert.ErrorIs(t, err, access.ErrInvalidToken, "not in the stale snapshot yet")
	assert.ErrorIs(t, stale.Admin.StopImpersonation(ctx, stopped), access.ErrInvalidToken, "already stopped in the database")

	require.NoError(t, stale.Checker.Sync(ctx))
	for _, p := range []*townhall.Platform{w.p, stale} {
		s, err := p.Admin.ResolveImpersonation(ctx, started)
		require.NoError(t, err)
		assert.Equal(t, access.Subject{UserID: "op", ImpersonatorID: "super"}, s)
		_, err = p.Admin.ResolveImpersonation(ctx, stopped)
		assert.ErrorIs(t, err, access.ErrInvalidToken)
	}
	var n int64
	require.NoError(t, dbtest.Open(t, w.dsn).Table(access.SessionsTable).Count(&n).Error)
	assert.EqualValues(t, 2, n, "no session was started by the stale process")
}

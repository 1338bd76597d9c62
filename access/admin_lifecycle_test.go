package access_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/civicstack/townhall/access"
	"github.com/civicstack/townhall/affiliation"
	"github.com/civicstack/townhall/audit"
	"github.com/civicstack/townhall/internal/testkit"
	"github.com/civicstack/townhall/location"
	"github.com/civicstack/townhall/users"
)

// activeSuperAdmins counts live, active super admins in the database.
func (e *adminEnv) activeSuperAdmins(t *testing.T) int64 {
	t.Helper()
	n, err := e.p.Users.CountActiveSuperAdmins(context.Background(), nil)
	require.NoError(t, err)
	return n
}

// TestSuperAdmin_Invariants: the invariants of SPEC §3 bind everyone,
// System included, and a refusal by invariant is audited like any other.
func TestSuperAdmin_Invariants(t *testing.T) {
	ctx := context.Background()
	sys := access.System()
	e := openAdmin(t, nil)
	e.tree(t)
	testkit.Member(t, e.p, "plain", access.RoleOperator, "M1")
	e.technical(t, "bot")

	t.Run("without any super admin, ordinary users are deactivated and deleted", func(t *testing.T) {
		require.Zero(t, e.activeSuperAdmins(t))
		testkit.User(t, e.p, "early")
		require.NoError(t, e.p.Admin.SetUserActive(ctx, sys, "plain", false))
		require.NoError(t, e.p.Admin.SetUserActive(ctx, sys, "plain", true))
		require.NoError(t, e.p.Admin.DeleteUser(ctx, sys, "early"))
	})
	e.superAdmin(t, "root")

	refusedByInvariant := func(t *testing.T, run func() error, typ, actorID string, last bool) {
		t.Helper()
		before, seq := e.fingerprint(t), e.mark(t)
		err := run()
		ev := e.assertRefused(t, err, before, seq, typ, actorID)
		assert.Equal(t, last, errors.Is(err, access.ErrLastSuperAdmin), "%v", err)
		if last {
			assert.Equal(t, "last_super_admin", ev.Reason)
		}
		assert.Equal(t, int64(1), e.activeSuperAdmins(t))
	}
	t.Run("the last super admin cannot be unflagged, even by System", func(t *testing.T) {
		refusedByInvariant(t, func() error { return e.p.Admin.SetSuperAdmin(ctx, sys, "root", false) }, audit.TypeSuperAdmin, "system", true)
	})
	t.Run("the last super admin cannot be deactivated", func(t *testing.T) {
		refusedByInvariant(t, func() error { return e.p.Admin.SetUserActive(ctx, sys, "root", false) }, audit.TypeUserActive, "system", true)
	})
	t.Run("the last super admin cannot deactivate themselves", func(t *testing.T) {
		refusedByInvariant(t, func() error {
			return e.p.Admin.SetUserActive(ctx, access.Subject{UserID: "root"}, "root", false)
		}, audit.TypeUserActive, "root", true)
	})
	t.Run("the last super admin cannot be deleted", func(t *testing.T) {
		refusedByInvariant(t, func() error { return e.p.Admin.DeleteUser(ctx, sys, "root") }, audit.TypeUserDeleted, "system", true)
	})
	t.Run("technical users are never super admins, even by System", func(t *testing.T) {
		refusedByInvariant(t, func() error { return e.p.Admin.SetSuperAdmin(ctx, sys, "bot", true) }, audit.TypeSuperAdmin, "system", false)
		refusedByInvariant(t, func() error {
			return e.p.Admin.SetSuperAdmin(ctx, access.Subject{UserID: "root"}, "bot", true)
		}, audit.TypeSuperAdmin, "root", false)
	})

	e.superAdmin(t, "second")
	t.Run("a super admin cannot remove their own flag", func(t *testing.T) {
		before, seq := e.fingerprint(t), e.mark(t)
		err := e.p.Admin.SetSuperAdmin(ctx, access.Subject{UserID: "root"}, "root", false)
		e.assertRefused(t, err, before, seq, audit.TypeSuperAdmin, "root")
		assert.NotErrorIs(t, err, access.ErrLastSuperAdmin)
	})
	t.Run("an inactive super admin does not count", func(t *testing.T) {
		require.NoError(t, e.p.Admin.SetUserActive(ctx, sys, "second", false))
		refusedByInvariant(t, func() error { return e.p.Admin.SetSuperAdmin(ctx, sys, "root", false) }, audit.TypeSuperAdmin, "system", true)
		require.NoError(t, e.p.Admin.SetUserActive(ctx, sys, "second", true))
	})
	t.Run("with two, one may go", func(t *testing.T) {
		seq := e.mark(t)
		e.assertApplied(t, e.p.Admin.SetSuperAdmin(ctx, access.Subject{UserID: "root"}, "second", false), seq, audit.TypeSuperAdmin, "root")
		assert.Equal(t, int64(1), e.activeSuperAdmins(t))
		d := e.allowed(t, access.Subject{UserID: "second"}, probe(access.RoleAdmin, "M1"))
		assert.Equal(t, access.ReasonNoGrant, d.Reason, "the next Check sees the flag gone")
		refusedByInvariant(t, func() error { return e.p.Admin.DeleteUser(ctx, sys, "root") }, audit.TypeUserDeleted, "system", true)
	})
	t.Run("an unflagged super admin's impersonation sessions end for good", func(t *testing.T) {
		require.NoError(t, e.p.Admin.SetSuperAdmin(ctx, sys, "second", true))
		token, err := e.p.Admin.Impersonate(ctx, access.Subject{UserID: "second"}, "plain", "checking a report", 0)
		require.NoError(t, err)
		require.NoError(t, e.p.Admin.SetSuperAdmin(ctx, access.Subject{UserID: "root"}, "second", false))
		require.NoError(t, e.p.Admin.SetSuperAdmin(ctx, access.Subject{UserID: "root"}, "second", true))
		_, err = e.p.Admin.ResolveImpersonation(ctx, token)
		assert.ErrorIs(t, err, access.ErrInvalidToken)
	})
}

// TestLastSuperAdmin_Concurrent: two changes that would each leave one
// super admin, run at once, must not leave none: one of them fails with a
// refusal, on every database. The first round of each kind holds both
// transactions just after their invariant check (SetGuardHook) for as long
// as the other might need to get there: with a check that does not
// serialise, both pass it and both commit. Later rounds race freely.
func TestLastSuperAdmin_Concurrent(t *testing.T) {
	ctx := context.Background()
	sys := access.System()
	e := openAdmin(t, nil)
	e.tree(t)
	kinds := []struct {
		name string
		// run returns the two changes, given the two super admins.
		run func(a, b string) [2]func() error
		// last: the loser fails with ErrLastSuperAdmin (System never loses
		// its own standing; super admins may lose theirs first).
		last bool
	}{
		{"two super admins unflag each other", func(a, b string) [2]func() error {
			return [2]func() error{
				func() error { return e.p.Admin.SetSuperAdmin(ctx, access.Subject{UserID: a}, b, false) },
				func() error { return e.p.Admin.SetSuperAdmin(ctx, access.Subject{UserID: b}, a, false) },
			}
		}, false},
		{"two super admins deactivate each other", func(a, b string) [2]func() error {
			return [2]func() error{
				func() error { return e.p.Admin.SetUserActive(ctx, access.Subject{UserID: a}, b, false) },
				func() error { return e.p.Admin.SetUserActive(ctx, access.Subject{UserID: b}, a, false) },
			}
		}, false},
		{"System unflags both", func(a, b string) [2]func() error {
			return [2]func() error{
				func() error { return e.p.Admin.SetSuperAdmin(ctx, sys, a, false) },
				func() error { return e.p.Admin.SetSuperAdmin(ctx, sys, b, false) },
			}
		}, true},
		{"System deletes both", func(a, b string) [2]func() error {
			return [2]func() error{
				func() error { return e.p.Admin.DeleteUser(ctx, sys, a) },
				func() error { return e.p.Admin.DeleteUser(ctx, sys, b) },
			}
		}, true},
		{"System deactivates one and unflags the other", func(a, b string) [2]func() error {
			return [2]func() error{
				func() error { return e.p.Admin.SetUserActive(ctx, sys, a, false) },
				func() error { return e.p.Admin.SetSuperAdmin(ctx, sys, b, false) },
			}
		}, true},
	}
	const rounds = 4
	n := 0
	for _, k := range kinds {
		for round := range rounds {
			t.Run(fmt.Sprintf("%s/%d", k.name, round), func(t *testing.T) {
				// Fresh super admins each round; whoever is left from the
				// previous round is unflagged first, by System, while the
				// new pair keeps the invariant satisfied.
				n++
				a, b := fmt.Sprintf("sa%d", n), fmt.Sprintf("sb%d", n)
				e.superAdmin(t, a)
				e.superAdmin(t, b)
				for _, id := range e.superAdminIDs(t) {
					if id != a && id != b {
						require.NoError(t, e.p.Admin.SetSuperAdmin(ctx, sys, id, false))
					}
				}
				require.Equal(t, int64(2), e.activeSuperAdmins(t))
				if round == 0 {
					t.Cleanup(access.SetGuardHook(rendezvous(2, 500*time.Millisecond)))
				}
				seq := e.mark(t)
				changes := k.run(a, b)
				var errs [2]error
				var wg sync.WaitGroup
				start := make(chan struct{})
				for i := range changes {
					wg.Add(1)
					go func() {
						defer wg.Done()
						<-start
						errs[i] = changes[i]()
					}()
				}
				close(start)
				wg.Wait()

				failed := 0
				for _, err := range errs {
					if err != nil {
						failed++
						assert.ErrorIs(t, err, access.ErrForbidden)
						if k.last {
							assert.ErrorIs(t, err, access.ErrLastSuperAdmin)
						}
					}
				}
				assert.Equal(t, 1, failed, "exactly one of the two must fail: %v", errs)
				assert.Equal(t, int64(1), e.activeSuperAdmins(t), "one active super admin is left")
				survivors := e.superAdminIDs(t)
				require.Len(t, survivors, 1)
				d := e.allowed(t, access.Subject{UserID: survivors[0]}, probe(access.RoleAdmin, "M1"))
				assert.Equal(t, access.ReasonSuperAdmin, d.Reason, "the snapshot agrees with the database")
				var refusals int
				for _, ev := range e.changesSince(t, seq) {
					if ev.Allowed != nil && !*ev.Allowed {
						refusals++
					}
				}
				assert.Equal(t, 1, refusals, "the refusal is audited")
			})
		}
	}
}

// superAdminIDs lists the live, active super admins, by ID.
func (e *adminEnv) superAdminIDs(t *testing.T) []string {
	t.Helper()
	var ids []string
	require.NoError(t, e.db.Table(users.UsersTable).
		Where("is_super_admin = ? AND is_active = ? AND deleted_at IS NULL", true, true).
		Order("id").Pluck("id", &ids).Error)
	return ids
}

// rendezvous returns a hook that waits until parties callers are inside it,
// or until wait has passed for the caller (the other may be blocked on a
// lock, as it should be).
func rendezvous(parties int, wait time.Duration) func() {
	var mu sync.Mutex
	arrived := 0
	all := make(chan struct{})
	return func() {
		mu.Lock()
		arrived++
		if arrived == parties {
			close(all)
		}
		mu.Unlock()
		select {
		case <-all:
		case <-time.After(wait):
		}
	}
}

// TestDeleteUser_EndsEverythingTheUserHeld: profiles, grants (location and
// platform), affiliation links, API keys and impersonation sessions end in
// the deletion's transaction; checks deny at once and a fresh snapshot
// agrees; the user's ID and username stay taken; audit stays.
func TestDeleteUser_EndsEverythingTheUserHeld(t *testing.T) {
	ctx := context.Background()
	sys := access.System()
	e := openAdmin(t, nil)
	e.tree(t)
	e.superAdmin(t, "root")
	testkit.Member(t, e.p, "vic", access.RoleAdmin, "M1")
	testkit.Member(t, e.p, "vic", access.RoleManager, "D")
	require.NoError(t, e.p.Admin.Grant(ctx, sys, "vic", access.RoleOperator, "V1"))
	require.NoError(t, e.p.Admin.Grant(ctx, sys, "vic", access.RolePlatformAdmin, "*"))
	_, err := e.p.Affiliations.CreateOrganisation(ctx, affiliation.Organisation{ID: "clinic", Name: "Clinic", Kind: "health_facility", LocationID: "M1", Services: []string{"occurrences"}})
	require.NoError(t, err)
	require.NoError(t, e.p.Admin.Link(ctx, sys, affiliation.Link{UserID: "vic", OrganisationID: "clinic"}))
	token, err := e.p.Admin.Impersonate(ctx, access.Subject{UserID: "root"}, "vic", "reproducing a bug", 0)
	require.NoError(t, err)
	e.technical(t, "svc")
	testkit.Member(t, e.p, "svc", access.RoleOperator, "M1")
	key, err := e.p.Users.CreateAPIKey(ctx, "svc", "import job")
	require.NoError(t, err)
	testkit.Member(t, e.p, "bystander", access.RoleOperator, "M1")

	before := e.allowed(t, access.Subject{UserID: "vic"}, probe(access.RoleAdmin, "M1"))
	require.True(t, before.Allowed)

	seq := e.mark(t)
	ev := e.assertApplied(t, e.p.Admin.DeleteUser(ctx, access.Subject{UserID: "root"}, "vic"), seq, audit.TypeUserDeleted, "root")
	assert.Equal(t, "vic", ev.UserID)
	require.NoError(t, e.p.Admin.DeleteUser(ctx, sys, "svc"))

	t.Run("nothing the user held counts", func(t *testing.T) {
		for _, req := range []access.Request{
			probe(access.RoleAdmin, "M1"), probe(access.RoleManager, "M2"), probe(access.RoleOperator, "M1"),
			probe(access.RolePlatformAdmin, "*"),
			{Municipality: "M1", Module: "occurrences", Action: "view"},
			{Module: "occurrences", Action: "update", Resource: &access.Resource{LocationID: "V1"}},
		} {
			assert.Equal(t, access.ReasonUserInactive, e.allowed(t, access.Subject{UserID: "vic"}, req).Reason, "%+v", req)
		}
		ok, err := e.p.Checker.UserCanAccessModule(ctx, access.Subject{UserID: "vic"}, "users", "view")
		require.NoError(t, err)
		assert.False(t, ok)
		filter, err := e.p.Checker.LocationFilter(ctx, access.Subject{UserID: "vic"}, "occurrences", "update")
		require.NoError(t, err)
		assert.True(t, filter.Empty())
	})
	t.Run("every row ended with the user", func(t *testing.T) {
		_, err := e.p.Users.Get(ctx, "vic")
		assert.ErrorIs(t, err, users.ErrNotFound)
		profiles, err := e.p.Profiles.ListForUser(ctx, "vic")
		require.NoError(t, err)
		assert.Empty(t, profiles)
		for _, g := range [][2]string{{"admin", "M1"}, {"manager", "D"}, {"operator", "V1"}, {"platform_admin", "*"}} {
			assert.False(t, e.hasGrant(t, "vic", g[0], g[1]), "grant %v", g)
		}
		orgs, err := e.p.Affiliations.OrganisationsOf(ctx, "vic")
		require.NoError(t, err)
		assert.Empty(t, orgs)
		members, err := e.p.Affiliations.Members(ctx, "clinic")
		require.NoError(t, err)
		assert.Empty(t, members)
		_, err = e.p.Admin.ResolveImpersonation(ctx, token)
		assert.ErrorIs(t, err, access.ErrInvalidToken)
		var open int64
		require.NoError(t, e.db.Table(access.SessionsTable).Where("target_id = ? AND ended_at IS NULL", "vic").Count(&open).Error)
		assert.Zero(t, open, "the session is ended in the database, not only in memory")
		_, err = e.p.Users.AuthenticateAPIKey(ctx, key)
		assert.ErrorIs(t, err, users.ErrInvalidCredentials, "a deleted user's API keys are revoked")
	})
	t.Run("ID and username stay taken, history stays", func(t *testing.T) {
		_, err := e.p.Users.Create(ctx, users.NewUser{ID: "vic", Username: "someone-else"})
		assert.ErrorIs(t, err, users.ErrDuplicate)
		_, err = e.p.Users.Create(ctx, users.NewUser{Username: "vic"})
		assert.ErrorIs(t, err, users.ErrDuplicate)
		events, err := e.p.Audit.Query(ctx, audit.Query{UserID: "vic", Type: audit.TypeMemberAdded})
		require.NoError(t, err)
		assert.Len(t, events, 2)
		require.NoError(t, e.p.Audit.Verify(ctx))
	})
	t.Run("deleting again is not found, and not audited", func(t *testing.T) {
		seq := e.mark(t)
		assert.ErrorIs(t, e.p.Admin.DeleteUser(ctx, sys, "vic"), users.ErrNotFound)
		assert.Empty(t, e.changesSince(t, seq))
	})
	t.Run("a bystander keeps their access", func(t *testing.T) {
		assert.True(t, e.allowed(t, access.Subject{UserID: "bystander"}, probe(access.RoleOperator, "M1")).Allowed)
	})
	t.Run("a fresh snapshot agrees", func(t *testing.T) {
		e.freshAgrees(t, []string{"", "vic", "svc", "bystander", "root"}, []string{"M1", "M2", "M3"}, []string{"R", "D", "M1", "M2", "V1", "M3"})
	})
}

// TestAnonymizeUser_ClearsPersonalFieldsAndKeepsTheChain: anonymising a
// deleted user frees the username and clears names and email; the audit
// chain verifies before and after, and no event ever held the personal
// fields.
func TestAnonymizeUser_ClearsPersonalFieldsAndKeepsTheChain(t *testing.T) {
	ctx := context.Background()
	sys := access.System()
	e := openAdmin(t, nil)
	e.tree(t)
	e.platformAdmin(t, "pat")
	_, err := e.p.Users.Create(ctx, users.NewUser{ID: "u17", Username: "Anna.Smith", Email: "anna.smith@example.org", FirstName: "Anna", LastName: "Smithson", Password: "correct horse battery"})
	require.NoError(t, err)
	_, err = e.p.Admin.AddMember(ctx, sys, access.Membership{UserID: "u17", LocationID: "M1", Role: access.RoleOperator})
	require.NoError(t, err)
	require.NoError(t, e.p.Admin.Approve(ctx, sys, "u17", "M1"))
	_, err = e.p.Users.Authenticate(ctx, "anna.smith", "correct horse battery")
	require.NoError(t, err)

	assert.ErrorIs(t, e.p.Admin.AnonymizeUser(ctx, sys, "u17"), access.ErrInvalidInput, "only deleted users are anonymised")
	assert.ErrorIs(t, e.p.Admin.AnonymizeUser(ctx, sys, "ghost"), users.ErrNotFound)
	require.NoError(t, e.p.Admin.DeleteUser(ctx, sys, "u17"))
	_, err = e.p.Users.Create(ctx, users.NewUser{Username: "anna.smith"})
	require.ErrorIs(t, err, users.ErrDuplicate, "a deleted user's username stays taken")
	require.NoError(t, e.p.Audit.Verify(ctx))

	seq := e.mark(t)
	e.assertApplied(t, e.p.Admin.AnonymizeUser(ctx, access.Subject{UserID: "pat"}, "u17"), seq, audit.TypeUserAnonymized, "pat")
	require.NoError(t, e.p.Admin.AnonymizeUser(ctx, sys, "u17"), "anonymising again is harmless")

	var row map[string]any
	require.NoError(t, e.db.Table(users.UsersTable).Where("id = ?", "u17").Take(&row).Error)
	assert.Equal(t, "deleted-u17", fmt.Sprint(row["username"]))
	for _, col := range []string{"email", "first_name", "last_name", "password_hash"} {
		assert.Empty(t, fmt.Sprint(row[col]), col)
	}
	_, err = e.p.Users.Create(ctx, users.NewUser{ID: "u18", Username: "anna.smith"})
	require.NoError(t, err, "the username is free again")
	require.NoError(t, e.p.Audit.Verify(ctx), "the audit chain is untouched")

	events, err := e.p.Audit.Query(ctx, audit.Query{Limit: audit.MaxLimit})
	require.NoError(t, err)
	require.NotEmpty(t, events)
	for _, ev := range events {
		raw, err := json.Marshal(ev)
		require.NoError(t, err)
		text := strings.ToLower(string(raw))
		for _, personal := range []string{"anna", "smith", "example.org"} {
			assert.NotContains(t, text, personal, "event %d (%s) holds IDs only", ev.Seq, ev.Type)
		}
	}
}

// TestSetUserActive_IsTemporary: deactivation changes only the flag;
// profiles, grants and links work again on reactivation.
func TestSetUserActive_IsTemporary(t *testing.T) {
	ctx := context.Background()
	sys := access.System()
	e := openAdmin(t, nil)
	e.tree(t)
	e.platformAdmin(t, "pat")
	testkit.Member(t, e.p, "tmp", access.RoleOperator, "M1")
	_, err := e.p.Affiliations.CreateOrganisation(ctx, affiliation.Organisation{ID: "club", Name: "Club", Kind: "sports", LocationID: "M1", Services: []string{"occurrences"}})
	require.NoError(t, err)
	require.NoError(t, e.p.Admin.Link(ctx, sys, affiliation.Link{UserID: "tmp", OrganisationID: "club"}))
	tmp := access.Subject{UserID: "tmp"}
	req := probe(access.RoleOperator, "M1")
	require.True(t, e.allowed(t, tmp, req).Allowed)

	require.NoError(t, e.p.Admin.SetUserActive(ctx, access.Subject{UserID: "pat"}, "tmp", false))
	assert.Equal(t, access.ReasonUserInactive, e.allowed(t, tmp, req).Reason)
	u, err := e.p.Users.Get(ctx, "tmp")
	require.NoError(t, err)
	assert.False(t, u.IsActive)
	e.freshAgrees(t, []string{"tmp"}, []string{"M1"}, []string{"M1", "V1"})

	require.NoError(t, e.p.Admin.SetUserActive(ctx, access.Subject{UserID: "pat"}, "tmp", true))
	assert.Equal(t, access.ReasonRole, e.allowed(t, tmp, req).Reason, "grants count again on reactivation")
	assert.True(t, e.hasGrant(t, "tmp", access.RoleOperator, "M1"))
	profiles, err := e.p.Profiles.ListForUser(ctx, "tmp")
	require.NoError(t, err)
	require.Len(t, profiles, 1)
	assert.True(t, profiles[0].IsActive && profiles[0].IsApproved)
	orgs, err := e.p.Affiliations.OrganisationsOf(ctx, "tmp")
	require.NoError(t, err)
	assert.Len(t, orgs, 1)
}

// TestDeleteLocation_EndsWhatWasHeldInIt: the subtree goes, and with it the
// grants, profiles and organisations held in it, in one transaction; a
// user left with nothing by the organisations' cascade is deactivated
// (audited); anything outside the subtree stays; a fresh snapshot agrees.
func TestDeleteLocation_EndsWhatWasHeldInIt(t *testing.T) {
	ctx := context.Background()
	sys := access.System()
	e := openAdmin(t, nil)
	e.tree(t)
	e.superAdmin(t, "root")
	e.platformAdmin(t, "pat")
	testkit.Member(t, e.p, "va", access.RoleOperator, "M1")
	require.NoError(t, e.p.Admin.Grant(ctx, sys, "va", access.RoleViewer, "V1"))
	testkit.Member(t, e.p, "va", access.RoleOperator, "M3")
	// ra's profile is at the region; its grants inside D end, the profile
	// stays.
	testkit.Member(t, e.p, "ra", access.RoleViewer, "R")
	require.NoError(t, e.p.Admin.Grant(ctx, sys, "ra", access.RoleManager, "D"))
	require.NoError(t, e.p.Admin.Grant(ctx, sys, "ra", access.RoleAdmin, "M2"))
	testkit.Member(t, e.p, "m3op", access.RoleOperator, "M3")
	_, err := e.p.Affiliations.CreateOrganisation(ctx, affiliation.Organisation{ID: "clinic", Name: "Clinic", Kind: "health_facility", LocationID: "V1", Services: []string{"occurrences"}})
	require.NoError(t, err)
	for _, id := range []string{"linked", "linked2", "root"} {
		if id != "root" {
			testkit.User(t, e.p, id)
		}
		require.NoError(t, e.p.Admin.Link(ctx, sys, affiliation.Link{UserID: id, OrganisationID: "clinic"}))
	}
	testkit.Member(t, e.p, "linked2", access.RoleViewer, "M3")
	require.NoError(t, e.p.Admin.SetModuleEnabled(ctx, sys, "M1", "equipment", false))

	seq := e.mark(t)
	require.NoError(t, e.p.Admin.DeleteLocation(ctx, access.Subject{UserID: "pat"}, "D"))
	events := e.changesSince(t, seq)
	require.Len(t, events, 2, "location_deleted, then one user_active per deactivated user")
	assert.Equal(t, audit.TypeLocationDeleted, events[0].Type)
	assert.Equal(t, "D", events[0].LocationID)
	assert.Equal(t, audit.TypeUserActive, events[1].Type)
	assert.Equal(t, "linked", events[1].UserID)
	assert.Equal(t, false, events[1].Details["value"])

	t.Run("the subtree is gone", func(t *testing.T) {
		for _, id := range []string{"D", "M1", "M2", "V1"} {
			_, err := e.p.Checker.Check(ctx, access.Subject{UserID: "root"}, access.Request{Module: "equipment", Action: "view", Resource: &access.Resource{LocationID: id}})
			assert.ErrorIs(t, err, location.ErrNotFound, id)
			_, err = e.p.Locations.Get(ctx, id)
			assert.ErrorIs(t, err, location.ErrNotFound, id)
		}
	})
	t.Run("grants and profiles in it ended, the rest stays", func(t *testing.T) {
		for _, g := range []struct{ user, role, loc string }{
			{"va", "operator", "M1"}, {"va", "viewer", "V1"}, {"ra", "manager", "D"}, {"ra", "admin", "M2"},
		} {
			assert.False(t, e.hasGrant(t, g.user, g.role, g.loc), "%+v", g)
		}
		assert.True(t, e.hasGrant(t, "va", "operator", "M3"))
		assert.True(t, e.hasGrant(t, "ra", "viewer", "R"))
		profiles, err := e.p.Profiles.ListForUser(ctx, "va")
		require.NoError(t, err)
		require.Len(t, profiles, 1)
		assert.Equal(t, "M3", profiles[0].LocationID)
		_, err = e.p.Profiles.Get(ctx, "ra", "R")
		assert.NoError(t, err)
		assert.True(t, e.allowed(t, access.Subject{UserID: "va"}, probe(access.RoleOperator, "M3")).Allowed)
		assert.True(t, e.allowed(t, access.Subject{UserID: "m3op"}, probe(access.RoleOperator, "M3")).Allowed)
		assert.Equal(t, access.ReasonNoGrant, e.allowed(t, access.Subject{UserID: "ra"}, probe(access.RoleManager, "M3")).Reason)
	})
	t.Run("organisations in it ended; whoever was left with nothing is deactivated", func(t *testing.T) {
		_, err := e.p.Affiliations.GetOrganisation(ctx, "clinic")
		assert.ErrorIs(t, err, affiliation.ErrNotFound)
		for id, active := range map[string]bool{"linked": false, "linked2": true, "root": true} {
			u, err := e.p.Users.Get(ctx, id)
			require.NoError(t, err)
			assert.Equal(t, active, u.IsActive, id)
		}
		assert.Equal(t, access.ReasonUserInactive, e.allowed(t, access.Subject{UserID: "linked"}, access.Request{Municipality: "M3", Module: "occurrences", Action: "view"}).Reason)
	})
	t.Run("a fresh snapshot agrees", func(t *testing.T) {
		e.freshAgrees(t, []string{"", "va", "ra", "m3op", "linked", "linked2", "root", "pat"}, []string{"M3"}, []string{"R", "D2", "M3"})
	})
}

// TestMoveLocation_RechecksLevelsAndMovesScopes: a move takes grants along
// with the subtree; a move that breaks the level order or makes a cycle is
// bad input, changes nothing and is not audited.
func TestMoveLocation_RechecksLevelsAndMovesScopes(t *testing.T) {
	ctx := context.Background()
	e := openAdmin(t, nil)
	e.tree(t)
	e.platformAdmin(t, "pat")
	testkit.Member(t, e.p, "dm", access.RoleManager, "D")
	testkit.Member(t, e.p, "d2m", access.RoleManager, "D2")
	pat := access.Subject{UserID: "pat"}
	req := probe(access.RoleManager, "M2")
	require.True(t, e.allowed(t, access.Subject{UserID: "dm"}, req).Allowed)
	require.False(t, e.allowed(t, access.Subject{UserID: "d2m"}, req).Allowed)

	for _, bad := range []struct {
		id, parent string
		want       error
	}{
		{"M1", "V1", location.ErrCycle},
		{"D", "M3", location.ErrInvalidLevel},
		{"M1", "nowhere", location.ErrNotFound},
		{"M1", "bad id", access.ErrInvalidInput},
		{"", "D", access.ErrInvalidInput},
	} {
		before, seq := e.fingerprint(t), e.mark(t)
		err := e.p.Admin.MoveLocation(ctx, pat, bad.id, bad.parent)
		assert.ErrorIs(t, err, bad.want, "%+v", bad)
		assert.NotErrorIs(t, err, access.ErrForbidden)
		assert.Equal(t, before, e.fingerprint(t))
		assert.Empty(t, e.changesSince(t, seq))
	}

	seq := e.mark(t)
	ev := e.assertApplied(t, e.p.Admin.MoveLocation(ctx, pat, "M2", "D2"), seq, audit.TypeLocationMoved, "pat")
	assert.Equal(t, "M2", ev.LocationID)
	assert.Equal(t, map[string]any{"from": "D", "to": "D2"}, ev.Details)
	assert.Equal(t, access.ReasonOutOfScope, e.allowed(t, access.Subject{UserID: "dm"}, req).Reason)
	assert.True(t, e.allowed(t, access.Subject{UserID: "d2m"}, req).Allowed)
	e.freshAgrees(t, []string{"dm", "d2m", "pat"}, []string{"M1", "M2", "M3"}, []string{"R", "D", "D2", "M1", "M2", "M3", "V1"})
}

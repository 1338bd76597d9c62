package users_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/civicstack/townhall/audit"
	"github.com/civicstack/townhall/internal/actor"
	"github.com/civicstack/townhall/internal/dbx"
	"github.com/civicstack/townhall/internal/userwrite"
	"github.com/civicstack/townhall/users"
)

func TestCreate_NewUserDefaults(t *testing.T) {
	e := newEnv(t)
	u, err := e.users.Create(ctx, users.NewUser{Username: "alice", Email: "alice@example.org", FirstName: "Alice", LastName: "Liddell"})
	require.NoError(t, err)

	assert.True(t, dbx.ValidID(u.ID), "generated id %q", u.ID)
	assert.Equal(t, users.Interactive, u.Kind)
	assert.True(t, u.IsActive)
	assert.False(t, u.IsStaff)
	assert.False(t, u.IsSuperAdmin)
	assert.Nil(t, u.LastLoginAt)
	assert.Equal(t, e.clock.Now().Truncate(time.Microsecond), u.CreatedAt)

	got, err := e.users.Get(ctx, u.ID)
	require.NoError(t, err)
	assert.Equal(t, u, got)

	ev := e.lastEvent(t, audit.TypeUserCreated)
	assert.Equal(t, u.ID, ev.UserID)
	assert.Equal(t, actor.SystemID, ev.ActorID)
	for _, v := range ev.Details {
		assert.NotContains(t, []any{"alice", "alice@example.org", "Alice", "Liddell"}, v, "events hold IDs only")
	}
}

func TestCreate_ActorFromContext(t *testing.T) {
	e := newEnv(t)
	actx := actor.With(ctx, actor.Actor{UserID: "boss"})
	u, err := e.users.Create(actx, users.NewUser{Username: "bob"})
	require.NoError(t, err)
	ev := e.lastEvent(t, audit.TypeUserCreated)
	assert.Equal(t, "boss", ev.ActorID)
	assert.Equal(t, u.ID, ev.UserID)
}

func TestCreate_ValidatesInput(t *testing.T) {
	e := newEnv(t)
	long := func(s string, n int) string { return strings.Repeat(s, n) }
	tests := []struct {
		name string
		u    users.NewUser
		ok   bool
	}{
		{"id with all allowed characters", users.NewUser{ID: "A-z_0.9:x", Username: "id1"}, true},
		{"id of 64 characters", users.NewUser{ID: long("i", 64), Username: "id2"}, true},
		{"id of 65 characters", users.NewUser{ID: long("i", 65), Username: "id3"}, false},
		{"id with space", users.NewUser{ID: "a b", Username: "id4"}, false},
		{"id star", users.NewUser{ID: "*", Username: "id5"}, false},
		{"id with slash", users.NewUser{ID: "a/b", Username: "id6"}, false},
		{"id with unicode", users.NewUser{ID: "é", Username: "id7"}, false},

		{"username with allowed punctuation", users.NewUser{Username: "a.b+c-d_e@f"}, true},
		{"username with unicode letters", users.NewUser{Username: "Jürgen"}, true},
		{"username in CJK", users.NewUser{Username: "用户"}, true},
		{"username with unicode digits", users.NewUser{Username: "user٣"}, true},
		{"username of 150 characters", users.NewUser{Username: long("ü", 150)}, true},
		{"username of 151 characters", users.NewUser{Username: long("u", 151)}, false},
		{"empty username", users.NewUser{Username: ""}, false},
		{"username with space", users.NewUser{Username: "a b"}, false},
		{"username with slash", users.NewUser{Username: "a/b"}, false},
		{"username with combining mark", users.NewUser{Username: "e\u0301"}, false},
		{"username with emoji", users.NewUser{Username: "a😀"}, false},
		{"username with control character", users.NewUser{Username: "a\x00b"}, false},
		{"username not utf-8", users.NewUser{Username: "a\xffb"}, false},
		{"reserved anonymised prefix", users.NewUser{Username: "deleted-x"}, false},
		{"reserved prefix in capitals", users.NewUser{Username: "DELETED-x"}, false},

		{"plain email", users.NewUser{Username: "e1", Email: "e1@example.org"}, true},
		{"email with plus", users.NewUser{Username: "e2", Email: "e.2+tag@sub.example.org"}, true},
		{"email without at", users.NewUser{Username: "e3", Email: "example.org"}, false},
		{"email with display name", users.NewUser{Username: "e4", Email: "E <e4@example.org>"}, false},
		{"email in angle brackets", users.NewUser{Username: "e5", Email: "<e5@example.org>"}, false},
		{"email with spaces", users.NewUser{Username: "e6", Email: " e6@example.org"}, false},
		{"email of 255 bytes", users.NewUser{Username: "e7", Email: long("a", 243) + "@example.org"}, false},
		{"email of 254 bytes", users.NewUser{Username: "e8", Email: long("a", 30) + "@" + long("b", 63) + "." + long("c", 63) + "." + long("d", 63) + "." + long("e", 27) + ".org"}, true},

		{"names of 150 characters", users.NewUser{Username: "n1", FirstName: long("é", 150), LastName: long("x", 150)}, true},
		{"first name of 151 characters", users.NewUser{Username: "n2", FirstName: long("é", 151)}, false},
		{"last name of 151 characters", users.NewUser{Username: "n3", LastName: long("x", 151)}, false},
		{"name with control character", users.NewUser{Username: "n4", FirstName: "a\nb"}, false},
		{"name not utf-8", users.NewUser{Username: "n5", LastName: "\xff"}, false},

		{"technical kind", users.NewUser{Username: "k1", Kind: users.Technical}, true},
		{"interactive kind", users.NewUser{Username: "k2", Kind: users.Interactive}, true},
		{"unknown kind", users.NewUser{Username: "k3", Kind: "robot"}, false},
		{"technical user with password", users.NewUser{Username: "k4", Kind: users.Technical, Password: "long enough"}, false},

		{"password of 8 characters", users.NewUser{Username: "p1", Password: "12345678"}, true},
		{"password of 8 multibyte characters", users.NewUser{Username: "p2", Password: "ääääääää"}, true},
		{"password of 7 characters", users.NewUser{Username: "p3", Password: "1234567"}, false},
		{"password of 1024 bytes", users.NewUser{Username: "p4", Password: long("p", 1024)}, true},
		{"password of 1025 bytes", users.NewUser{Username: "p5", Password: long("p", 1025)}, false},
		{"password not utf-8", users.NewUser{Username: "p6", Password: "\xff\xff\xff\xff\xff\xff\xff\xff"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(e.events(t, audit.TypeUserCreated))
			u, err := e.users.Create(ctx, tt.u)
			if tt.ok {
				require.NoError(t, err)
				assert.Equal(t, tt.u.Username, u.Username)
				assert.Equal(t, tt.u.Email, u.Email)
				if tt.u.ID != "" {
					assert.Equal(t, tt.u.ID, u.ID)
				}
				return
			}
			assert.ErrorIs(t, err, users.ErrInvalidInput)
			assert.Nil(t, u)
			assert.Len(t, e.events(t, audit.TypeUserCreated), before, "a rejected user is not audited")
		})
	}
	t.Run("technical user with password is also ErrTechnicalUser", func(t *testing.T) {
		_, err := e.users.Create(ctx, users.NewUser{Username: "k5", Kind: users.Technical, Password: "long enough"})
		assert.ErrorIs(t, err, users.ErrTechnicalUser)
	})
}

func TestCreate_IDsAreCaseSensitive(t *testing.T) {
	e := newEnv(t)
	upper := e.mustUser(t, users.NewUser{ID: "Ab", Username: "upper"})
	lower := e.mustUser(t, users.NewUser{ID: "ab", Username: "lower"})

	got, err := e.users.Get(ctx, "Ab")
	require.NoError(t, err)
	assert.Equal(t, upper.Username, got.Username)
	got, err = e.users.Get(ctx, "ab")
	require.NoError(t, err)
	assert.Equal(t, lower.Username, got.Username)
	_, err = e.users.Get(ctx, "AB")
	assert.ErrorIs(t, err, users.ErrNotFound)

	_, err = e.users.Create(ctx, users.NewUser{ID: "Ab", Username: "third"})
	assert.ErrorIs(t, err, users.ErrDuplicate, "the same ID twice")
}

func TestCreate_RejectsDuplicateUsernameCaseInsensitively(t *testing.T) {
	e := newEnv(t)
	e.mustUser(t, users.NewUser{Username: "Alice"})
	e.mustUser(t, users.NewUser{ID: "emile", Username: "Émile"})

	for _, name := range []string{"Alice", "alice", "ALICE", "aLiCe", "émile", "ÉMILE"} {
		_, err := e.users.Create(ctx, users.NewUser{ID: "other", Username: name})
		assert.ErrorIs(t, err, users.ErrDuplicate, name)
	}
	for _, name := range []string{"alice", "ALICE", "Alice"} {
		got, err := e.users.GetByUsername(ctx, name)
		require.NoError(t, err, name)
		assert.Equal(t, "Alice", got.Username, "the username keeps its case")
	}
	_, err := e.users.GetByUsername(ctx, "nobody")
	assert.ErrorIs(t, err, users.ErrNotFound)
	_, err = e.users.GetByUsername(ctx, "not a username")
	assert.ErrorIs(t, err, users.ErrInvalidInput)
}

func TestCreate_FailedWriteLeavesNothing(t *testing.T) {
	e := newEnv(t)
	e.mustUser(t, users.NewUser{Username: "carol"})
	rows := e.count(t, users.UsersTable, "1 = 1")
	events := len(e.events(t, ""))

	_, err := e.users.Create(ctx, users.NewUser{ID: "carol2", Username: "CAROL"})
	require.ErrorIs(t, err, users.ErrDuplicate)

	assert.Equal(t, rows, e.count(t, users.UsersTable, "1 = 1"), "no row")
	assert.Len(t, e.events(t, ""), events, "no audit event")
	_, err = e.users.Get(ctx, "carol2")
	assert.ErrorIs(t, err, users.ErrNotFound)
}

func TestDelete_UsernameStaysTakenUntilAnonymized(t *testing.T) {
	e := newEnv(t)
	e.mustUser(t, users.NewUser{ID: "Dave", Username: "dave", Email: "dave@example.org", FirstName: "Dave", Password: "correct horse"})
	e.mustUser(t, users.NewUser{ID: "dave", Username: "other-dave"})
	e.deleteUser(t, "Dave")

	_, err := e.users.Get(ctx, "Dave")
	assert.ErrorIs(t, err, users.ErrNotFound)
	_, err = e.users.GetByUsername(ctx, "dave")
	assert.ErrorIs(t, err, users.ErrNotFound)
	_, err = e.users.Create(ctx, users.NewUser{Username: "DAVE"})
	assert.ErrorIs(t, err, users.ErrDuplicate, "a deleted user's username stays taken")
	_, err = e.users.Create(ctx, users.NewUser{ID: "Dave", Username: "new-dave"})
	assert.ErrorIs(t, err, users.ErrDuplicate, "IDs are never reused")

	assert.ErrorIs(t, e.tx(func(tx *gorm.DB) error { return userwrite.Delete(ctx, tx, e.clock.Now(), "Dave") }), users.ErrNotFound,
		"deleting twice")
	assert.ErrorIs(t, e.tx(func(tx *gorm.DB) error { return userwrite.Anonymize(ctx, tx, e.clock.Now(), "dave") }), users.ErrInvalidInput,
		"only deleted users are anonymised")
	assert.ErrorIs(t, e.tx(func(tx *gorm.DB) error { return userwrite.Anonymize(ctx, tx, e.clock.Now(), "nobody") }), users.ErrNotFound)

	require.NoError(t, e.tx(func(tx *gorm.DB) error { return userwrite.Anonymize(ctx, tx, e.clock.Now(), "Dave") }))
	require.NoError(t, e.tx(func(tx *gorm.DB) error { return userwrite.Anonymize(ctx, tx, e.clock.Now(), "Dave") }), "idempotent")

	var row struct {
		Username, UsernameKey, Email, FirstName, LastName, PasswordHash string
	}
	require.NoError(t, e.db.Table(users.UsersTable).Where("id = ?", "Dave").Take(&row).Error)
	assert.Equal(t, "deleted-Dave", row.Username)
	assert.Equal(t, "deleted-Dave", row.UsernameKey)
	assert.Empty(t, row.Email)
	assert.Empty(t, row.FirstName)
	assert.Empty(t, row.LastName)
	assert.Empty(t, row.PasswordHash)

	// Anonymised keys keep the ID's case, so "dave" does not clash with "Dave".
	e.deleteUser(t, "dave")
	require.NoError(t, e.tx(func(tx *gorm.DB) error { return userwrite.Anonymize(ctx, tx, e.clock.Now(), "dave") }))

	_, err = e.users.Create(ctx, users.NewUser{Username: "Dave"})
	assert.NoError(t, err, "the username is free after anonymisation")
}

func TestRegister_CreatesActiveInteractiveUser(t *testing.T) {
	e := newEnv(t)
	u, err := e.users.Register(ctx, users.NewUser{Username: "erin", Password: "open sesame"})
	require.NoError(t, err)
	assert.Equal(t, users.Interactive, u.Kind)
	assert.True(t, u.IsActive)
	assert.False(t, u.IsStaff)
	assert.False(t, u.IsSuperAdmin)

	profiles, err := e.profiles.ListForUser(ctx, u.ID)
	require.NoError(t, err)
	assert.Empty(t, profiles, "no profile")

	ev := e.lastEvent(t, audit.TypeUserCreated)
	assert.Equal(t, u.ID, ev.ActorID, "the registrant is the actor")
	assert.Equal(t, true, ev.Details["self_registered"])

	_, err = e.users.Authenticate(ctx, "erin", "open sesame")
	assert.NoError(t, err)

	actx := actor.With(ctx, actor.Actor{UserID: "helper"})
	_, err = e.users.Register(actx, users.NewUser{Username: "frank"})
	require.NoError(t, err)
	assert.Equal(t, "helper", e.lastEvent(t, audit.TypeUserCreated).ActorID)

	for name, nu := range map[string]users.NewUser{
		"technical":      {Username: "t1", Kind: users.Technical},
		"staff":          {Username: "t2", IsStaff: true},
		"unknown kind":   {Username: "t3", Kind: "robot"},
		"bad username":   {Username: "t 4"},
		"short password": {Username: "t5", Password: "short"},
	} {
		_, err := e.users.Register(ctx, nu)
		assert.ErrorIs(t, err, users.ErrInvalidInput, name)
	}
	_, err = e.users.Register(ctx, users.NewUser{Username: "ERIN"})
	assert.ErrorIs(t, err, users.ErrDuplicate)
}

func TestUpdate_ChangesPlainFields(t *testing.T) {
	e := newEnv(t)
	e.mustUser(t, users.NewUser{Username: "gina", Email: "gina@example.org", FirstName: "Gina"})
	e.mustUser(t, users.NewUser{Username: "hank"})
	e.clock.Advance(time.Hour)

	u, err := e.users.Update(ctx, "gina", users.UserUpdate{
		Username: ptr("Gina.B"), Email: ptr(""), LastName: ptr("Bee"), IsStaff: ptr(true),
	})
	require.NoError(t, err)
	assert.Equal(t, "Gina.B", u.Username)
	assert.Empty(t, u.Email)
	assert.Equal(t, "Gina", u.FirstName, "nil fields stay")
	assert.Equal(t, "Bee", u.LastName)
	assert.True(t, u.IsStaff)
	assert.True(t, u.IsActive)
	assert.Equal(t, e.clock.Now().Truncate(time.Microsecond), u.UpdatedAt)

	got, err := e.users.GetByUsername(ctx, "gina.b")
	require.NoError(t, err)
	assert.Equal(t, "gina", got.ID)
	_, err = e.users.GetByUsername(ctx, "gina")
	assert.ErrorIs(t, err, users.ErrNotFound, "the old username is free")

	ev := e.lastEvent(t, audit.TypeUserUpdated)
	assert.Equal(t, "gina", ev.UserID)
	assert.ElementsMatch(t, []any{"username", "email", "last_name", "is_staff"}, ev.Details["fields"])

	_, err = e.users.Update(ctx, "gina", users.UserUpdate{Username: ptr("GINA.b")})
	assert.NoError(t, err, "changing only the case of one's own username")

	events := len(e.events(t, audit.TypeUserUpdated))
	same, err := e.users.Update(ctx, "gina", users.UserUpdate{})
	require.NoError(t, err)
	assert.Equal(t, "GINA.b", same.Username)
	assert.Len(t, e.events(t, audit.TypeUserUpdated), events, "an empty update writes nothing")

	for name, tt := range map[string]struct {
		id   string
		u    users.UserUpdate
		want error
	}{
		"taken username":  {"gina", users.UserUpdate{Username: ptr("HANK")}, users.ErrDuplicate},
		"bad username":    {"gina", users.UserUpdate{Username: ptr("a b")}, users.ErrInvalidInput},
		"reserved prefix": {"gina", users.UserUpdate{Username: ptr("deleted-gina")}, users.ErrInvalidInput},
		"bad email":       {"gina", users.UserUpdate{Email: ptr("nope")}, users.ErrInvalidInput},
		"bad first name":  {"gina", users.UserUpdate{FirstName: ptr("\x01")}, users.ErrInvalidInput},
		"long last name":  {"gina", users.UserUpdate{LastName: ptr(strings.Repeat("x", 151))}, users.ErrInvalidInput},
		"unknown user":    {"nobody", users.UserUpdate{IsStaff: ptr(true)}, users.ErrNotFound},
		"bad id":          {"no body", users.UserUpdate{IsStaff: ptr(true)}, users.ErrInvalidInput},
		"empty id":        {"", users.UserUpdate{}, users.ErrInvalidInput},
	} {
		_, err := e.users.Update(ctx, tt.id, tt.u)
		assert.ErrorIs(t, err, tt.want, name)
	}
	got, err = e.users.Get(ctx, "gina")
	require.NoError(t, err)
	assert.Equal(t, "GINA.b", got.Username, "failed updates change nothing")
	assert.Len(t, e.events(t, audit.TypeUserUpdated), events, "failed updates are not audited")

	e.deleteUser(t, "hank")
	_, err = e.users.Update(ctx, "hank", users.UserUpdate{IsStaff: ptr(true)})
	assert.ErrorIs(t, err, users.ErrNotFound, "deleted users are not updated")
}

func TestList_PagesByID(t *testing.T) {
	e := newEnv(t)
	var want []string
	for i := 1; i <= 7; i++ {
		id := "u0" + string(rune('0'+i))
		e.mustUser(t, users.NewUser{ID: id, Username: "user" + id})
		want = append(want, id)
	}
	e.mustUser(t, users.NewUser{ID: "u00", Username: "gone"})
	e.deleteUser(t, "u00")

	var got []string
	after := ""
	for pages := 0; pages < 10; pages++ {
		page, err := e.users.List(ctx, users.ListOptions{Limit: 3, AfterID: after})
		require.NoError(t, err)
		if len(page) == 0 {
			break
		}
		assert.LessOrEqual(t, len(page), 3)
		for _, u := range page {
			got = append(got, u.ID)
		}
		after = page[len(page)-1].ID
	}
	assert.Equal(t, want, got, "every live user once, in ID order")

	all, err := e.users.List(ctx, users.ListOptions{})
	require.NoError(t, err)
	assert.Len(t, all, 7, "limit 0 means the default")
	all, err = e.users.List(ctx, users.ListOptions{Limit: 5000})
	require.NoError(t, err)
	assert.Len(t, all, 7, "a limit above the maximum is capped")

	_, err = e.users.List(ctx, users.ListOptions{Limit: -1})
	assert.ErrorIs(t, err, users.ErrInvalidInput)
	_, err = e.users.List(ctx, users.ListOptions{AfterID: "bad id"})
	assert.ErrorIs(t, err, users.ErrInvalidInput)
}

func TestGet_RejectsMalformedIDs(t *testing.T) {
	e := newEnv(t)
	for _, id := range []string{"", "*", "a b", strings.Repeat("x", 65), "ü"} {
		_, err := e.users.Get(ctx, id)
		assert.ErrorIs(t, err, users.ErrInvalidInput, id)
	}
	_, err := e.users.Get(ctx, "unknown")
	assert.ErrorIs(t, err, users.ErrNotFound)
}

func TestCreate_ConcurrentWritersThroughOneStore(t *testing.T) {
	e := newEnv(t)
	const perWriter = 15
	var wg sync.WaitGroup
	errs := make(chan error, 2*perWriter)
	for w := 0; w < 2; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < perWriter; i++ {
				_, err := e.users.Create(ctx, users.NewUser{Username: "w" + string(rune('a'+w)) + strings.Repeat("x", i+1), Password: "password1"})
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		assert.NoError(t, err)
	}
	all, err := e.users.List(ctx, users.ListOptions{})
	require.NoError(t, err)
	assert.Len(t, all, 2*perWriter)
	assert.Len(t, e.events(t, audit.TypeUserCreated), 2*perWriter)
	assert.NoError(t, e.log.Verify(ctx))
}

func TestCreate_RefusesReservedIDs(t *testing.T) {
	e := newEnv(t)
	for _, id := range users.ReservedIDs {
		for name, create := range map[string]func(context.Context, users.NewUser) (*users.User, error){
			"create": e.users.Create, "register": e.users.Register,
		} {
			t.Run(name+" "+id, func(t *testing.T) {
				_, err := create(ctx, users.NewUser{ID: id, Username: name + id})
				assert.ErrorIs(t, err, users.ErrReservedID)
				assert.ErrorIs(t, err, users.ErrInvalidInput)
				_, err = e.users.Get(ctx, id)
				assert.ErrorIs(t, err, users.ErrNotFound, "nothing written")
			})
		}
	}
	// IDs are case-sensitive: only the exact reserved IDs are refused.
	e.mustUser(t, users.NewUser{ID: "System", Username: "capital"})
}

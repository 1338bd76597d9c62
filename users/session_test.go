package users_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/civicstack/townhall/audit"
	"github.com/civicstack/townhall/internal/userwrite"
	"github.com/civicstack/townhall/users"
)

func TestLogin_StartsASessionNamedInTheLoginEvent(t *testing.T) {
	e := newEnv(t)
	e.mustUser(t, users.NewUser{Username: "amy", Password: "correct horse"})

	in, err := e.users.Login(ctx, "amy", "correct horse")
	require.NoError(t, err)
	assert.Equal(t, "amy", in.User.ID)
	assert.True(t, strings.HasPrefix(in.Token, "ths_"), in.Token)
	assert.Equal(t, users.MethodPassword, in.Session.Method)
	assert.Equal(t, e.clock.Now().Add(users.DefaultSessionLifetime).Truncate(time.Microsecond), in.Session.ExpiresAt)

	ev := e.lastEvent(t, audit.TypeLogin)
	assert.Equal(t, in.Session.ID, ev.Details["session_id"])
	assert.NotContains(t, ev.Details, "token")

	got, err := e.users.ResolveSession(ctx, in.Token)
	require.NoError(t, err)
	assert.Equal(t, in.Session.ID, got.ID)
	assert.Equal(t, "amy", got.UserID)

	_, err = e.users.Login(ctx, "amy", "wrong password")
	assert.ErrorIs(t, err, users.ErrInvalidCredentials)
	u, err := e.users.Authenticate(ctx, "amy", "correct horse")
	require.NoError(t, err)
	assert.Equal(t, "amy", u.ID)
	assert.NotContains(t, e.lastEvent(t, audit.TypeLogin).Details, "session_id", "Authenticate starts no session")
}

func TestResolveSession_ExpiresIdleAndAbsolute(t *testing.T) {
	idle, lifetime := 30*time.Minute, 2*time.Hour
	cases := []struct {
		name    string
		steps   []time.Duration // clock advances, each followed by a resolve that must work
		last    time.Duration   // the advance before the resolve that must fail
		expired bool
	}{
		{"used within the idle timeout", nil, 29 * time.Minute, false},
		{"idle too long", nil, 30 * time.Minute, true},
		{"each use restarts the idle clock", []time.Duration{25 * time.Minute, 25 * time.Minute, 25 * time.Minute}, 25 * time.Minute, false},
		{"the lifetime ends it however busy", []time.Duration{25 * time.Minute, 25 * time.Minute, 25 * time.Minute, 25 * time.Minute}, 20 * time.Minute, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, users.WithSessionTimeouts(idle, lifetime))
			e.mustUser(t, users.NewUser{Username: "amy", Password: "correct horse"})
			in, err := e.users.Login(ctx, "amy", "correct horse")
			require.NoError(t, err)
			for _, d := range tc.steps {
				e.clock.Advance(d)
				_, err := e.users.ResolveSession(ctx, in.Token)
				require.NoError(t, err)
			}
			e.clock.Advance(tc.last)
			_, err = e.users.ResolveSession(ctx, in.Token)
			if tc.expired {
				assert.ErrorIs(t, err, users.ErrSessionExpired)
				assert.ErrorIs(t, err, users.ErrInvalidCredentials)
			} else {
				assert.NoError(t, err)
			}
		})
	}
}

func TestSessions_EndedByEveryCause(t *testing.T) {
	cases := []struct {
		name  string
		end   func(e *env, token string) error
		cause string
	}{
		{"logout of the session", func(e *env, token string) error { return e.users.EndSession(ctx, token) }, users.EndLogout},
		{"logout everywhere", func(e *env, _ string) error { return e.users.Logout(ctx, "amy") }, users.EndLogout},
		{"end all", func(e *env, _ string) error { _, err := e.users.EndAll(ctx, "amy"); return err }, users.EndAll},
		{"password change", func(e *env, _ string) error { return e.users.SetPassword(ctx, "amy", "battery staple") }, users.EndPasswordChanged},
		{"password cleared", func(e *env, _ string) error { return e.users.ClearPassword(ctx, "amy") }, users.EndPasswordChanged},
		{"deactivation", func(e *env, _ string) error {
			return e.tx(func(tx *gorm.DB) error { return userwrite.SetActive(ctx, tx, e.clock.Now(), "amy", false) })
		}, users.EndDeactivated},
		{"deletion", func(e *env, _ string) error {
			return e.tx(func(tx *gorm.DB) error { return userwrite.Delete(ctx, tx, e.clock.Now(), "amy") })
		}, users.EndDeleted},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.mustUser(t, users.NewUser{Username: "amy", Password: "correct horse"})
			e.mustUser(t, users.NewUser{Username: "bob", Password: "correct horse"})
			first, err := e.users.Login(ctx, "amy", "correct horse")
			require.NoError(t, err)
			second, err := e.users.Login(ctx, "amy", "correct horse")
			require.NoError(t, err)
			other, err := e.users.Login(ctx, "bob", "correct horse")
			require.NoError(t, err)

			require.NoError(t, tc.end(e, first.Token))

			_, err = e.users.ResolveSession(ctx, first.Token)
			assert.ErrorIs(t, err, users.ErrInvalidCredentials)
			if tc.name != "logout of the session" {
				_, err = e.users.ResolveSession(ctx, second.Token)
				assert.ErrorIs(t, err, users.ErrInvalidCredentials, "every session of the user ends")
				assert.EqualValues(t, 0, e.count(t, users.SessionsTable, "user_id = ? AND ended_at IS NULL", "amy"))
			} else {
				_, err = e.users.ResolveSession(ctx, second.Token)
				assert.NoError(t, err, "other sessions of the user live on")
			}
			assert.EqualValues(t, 1, e.count(t, users.SessionsTable, "id = ? AND end_cause = ?", first.Session.ID, tc.cause))
			_, err = e.users.ResolveSession(ctx, other.Token)
			assert.NoError(t, err, "another user's session is untouched")
		})
	}
}

func TestEndSession_LogoutEventNamesTheSession(t *testing.T) {
	e := newEnv(t)
	e.mustUser(t, users.NewUser{Username: "amy", Password: "correct horse"})
	in, err := e.users.Login(ctx, "amy", "correct horse")
	require.NoError(t, err)
	require.NoError(t, e.users.EndSession(ctx, in.Token))
	ev := e.lastEvent(t, audit.TypeLogout)
	assert.Equal(t, "amy", ev.ActorID)
	assert.Equal(t, "amy", ev.UserID)
	assert.Equal(t, in.Session.ID, ev.Details["session_id"])
	assert.ErrorIs(t, e.users.EndSession(ctx, in.Token), users.ErrInvalidCredentials, "ended once")
}

func TestResolveSession_RefusesBadTokens(t *testing.T) {
	e := newEnv(t)
	e.mustUser(t, users.NewUser{Username: "amy", Password: "correct horse"})
	in, err := e.users.Login(ctx, "amy", "correct horse")
	require.NoError(t, err)
	forged := in.Token[:len(in.Token)-2] + "AA"
	if forged == in.Token {
		forged = in.Token[:len(in.Token)-2] + "BB"
	}
	for name, token := range map[string]string{
		"empty": "", "garbage": "hello", "prefix only": "ths_", "an api key shape": "th_" + in.Token[4:],
		"forged": forged, "too long": in.Token + "A", "a reset token's prefix": "thr_" + in.Token[4:],
	} {
		t.Run(name, func(t *testing.T) {
			_, err := e.users.ResolveSession(ctx, token)
			assert.ErrorIs(t, err, users.ErrInvalidCredentials)
			assert.NotErrorIs(t, err, users.ErrSessionExpired)
		})
	}
}

func TestStartSession_AfterHostSSO(t *testing.T) {
	e := newEnv(t)
	e.mustUser(t, users.NewUser{Username: "amy"})
	e.mustUser(t, users.NewUser{Username: "bot", Kind: users.Technical})
	e.mustUser(t, users.NewUser{Username: "gone"})
	require.NoError(t, e.tx(func(tx *gorm.DB) error { return userwrite.SetActive(ctx, tx, e.clock.Now(), "gone", false) }))

	in, err := e.users.StartSession(ctx, "amy", "oidc:google")
	require.NoError(t, err)
	assert.Equal(t, "oidc:google", in.Session.Method)
	ev := e.lastEvent(t, audit.TypeLogin)
	assert.Equal(t, in.Session.ID, ev.Details["session_id"])
	assert.Equal(t, "oidc:google", ev.Details["method"])
	require.NotNil(t, in.User.LastLoginAt)

	for _, tc := range []struct {
		user, method string
		want         error
	}{
		{"bot", "sso", users.ErrTechnicalUser},
		{"gone", "sso", users.ErrInactive},
		{"nobody", "sso", users.ErrNotFound},
		{"amy", "bad method", users.ErrInvalidInput},
		{"", "sso", users.ErrInvalidInput},
	} {
		_, err := e.users.StartSession(ctx, tc.user, tc.method)
		assert.ErrorIs(t, err, tc.want, "%s/%s", tc.user, tc.method)
	}
}

func TestSessions_ListsLiveOnes(t *testing.T) {
	e := newEnv(t, users.WithSessionTimeouts(10*time.Minute, time.Hour))
	e.mustUser(t, users.NewUser{Username: "amy", Password: "correct horse"})
	old, err := e.users.Login(ctx, "amy", "correct horse")
	require.NoError(t, err)
	e.clock.Advance(11 * time.Minute)
	fresh, err := e.users.Login(ctx, "amy", "correct horse")
	require.NoError(t, err)

	got, err := e.users.Sessions(ctx, "amy")
	require.NoError(t, err)
	require.Len(t, got, 1, "the idle one is not live")
	assert.Equal(t, fresh.Session.ID, got[0].ID)
	assert.NotEqual(t, old.Session.ID, got[0].ID)

	none, err := e.users.Sessions(ctx, "nobody")
	require.NoError(t, err)
	assert.Empty(t, none)
}

package users_test

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/civicstack/townhall/audit"
	"github.com/civicstack/townhall/internal/userwrite"
	"github.com/civicstack/townhall/users"
)

const goodPassword = "correct horse battery"

func TestAuthenticate_AnswersInSpecOrder(t *testing.T) {
	e := newEnv(t)
	e.mustUser(t, users.NewUser{Username: "ann", Password: goodPassword})
	e.mustUser(t, users.NewUser{Username: "bot", Kind: users.Technical})
	e.mustUser(t, users.NewUser{Username: "sso"}) // no password
	e.mustUser(t, users.NewUser{Username: "idle", Password: goodPassword})
	e.mustUser(t, users.NewUser{Username: "gone", Password: goodPassword})
	e.mustUser(t, users.NewUser{Username: "locked", Password: goodPassword})
	require.NoError(t, e.tx(func(tx *gorm.DB) error { return userwrite.SetActive(ctx, tx, e.clock.Now(), "idle", false) }))
	e.deleteUser(t, "gone")
	for i := 0; i < users.DefaultMaxFailures; i++ {
		_, err := e.users.Authenticate(ctx, "locked", "wrong password")
		require.ErrorIs(t, err, users.ErrInvalidCredentials)
	}

	tests := []struct {
		name, username, password string
		want                     error
		reason                   string // of the login_failed event; "" for a login
		userID                   string // of the event
	}{
		{"unknown username", "nobody", goodPassword, users.ErrInvalidCredentials, users.ReasonUnknownUser, ""},
		{"malformed username", "no body", goodPassword, users.ErrInvalidCredentials, users.ReasonUnknownUser, ""},
		{"empty username", "", "", users.ErrInvalidCredentials, users.ReasonUnknownUser, ""},
		{"deleted user", "gone", goodPassword, users.ErrInvalidCredentials, users.ReasonUnknownUser, ""},
		{"technical user", "bot", goodPassword, users.ErrTechnicalUser, users.ReasonTechnicalUser, "bot"},
		{"technical user, empty password", "bot", "", users.ErrTechnicalUser, users.ReasonTechnicalUser, "bot"},
		{"locked user, right password", "locked", goodPassword, users.ErrLocked, users.ReasonLocked, "locked"},
		{"no password", "sso", "anything goes", users.ErrInvalidCredentials, users.ReasonNoPassword, "sso"},
		{"wrong password", "ann", "wrong password", users.ErrInvalidCredentials, users.ReasonWrongPassword, "ann"},
		{"empty password", "ann", "", users.ErrInvalidCredentials, users.ReasonWrongPassword, "ann"},
		{"inactive user, wrong password", "idle", "wrong password", users.ErrInvalidCredentials, users.ReasonWrongPassword, "idle"},
		{"inactive user, right password", "idle", goodPassword, users.ErrInactive, users.ReasonInactive, "idle"},
		{"right password", "ann", goodPassword, nil, "", "ann"},
		{"username in other case", "ANN", goodPassword, nil, "", "ann"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := e.users.Authenticate(ctx, tt.username, tt.password)
			if tt.want != nil {
				assert.ErrorIs(t, err, tt.want)
				assert.Nil(t, u)
				ev := e.lastEvent(t, audit.TypeLoginFailed)
				assert.Equal(t, tt.reason, ev.Reason)
				assert.Equal(t, tt.userID, ev.UserID)
				if tt.userID != "" {
					assert.Equal(t, tt.userID, ev.ActorID)
				}
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.userID, u.ID)
			require.NotNil(t, u.LastLoginAt)
			assert.Equal(t, e.clock.Now().Truncate(time.Microsecond), *u.LastLoginAt)
			ev := e.lastEvent(t, audit.TypeLogin)
			assert.Equal(t, tt.userID, ev.UserID)
			assert.Equal(t, tt.userID, ev.ActorID)
		})
	}

	stored, err := e.users.Get(ctx, "ann")
	require.NoError(t, err)
	assert.NotNil(t, stored.LastLoginAt, "the login time is stored")
	for _, ev := range e.events(t, "") {
		for _, v := range ev.Details {
			assert.NotEqual(t, goodPassword, v, "passwords are never logged")
		}
	}
}

func TestAuthenticate_LocksAfterFiveFailuresForFifteenMinutes(t *testing.T) {
	e := newEnv(t)
	e.mustUser(t, users.NewUser{Username: "ivy", Password: goodPassword})

	fail := func(n int) {
		t.Helper()
		for i := 0; i < n; i++ {
			_, err := e.users.Authenticate(ctx, "ivy", "wrong password")
			require.ErrorIs(t, err, users.ErrInvalidCredentials)
		}
	}

	// A success resets the count: 4 + 4 failures never lock.
	fail(4)
	_, err := e.users.Authenticate(ctx, "ivy", goodPassword)
	require.NoError(t, err)
	fail(4)
	_, err = e.users.Authenticate(ctx, "ivy", goodPassword)
	require.NoError(t, err, "failures are counted consecutively")

	fail(5)
	_, err = e.users.Authenticate(ctx, "ivy", goodPassword)
	assert.ErrorIs(t, err, users.ErrLocked, "the fifth failure locks")
	_, err = e.users.Authenticate(ctx, "ivy", "wrong password")
	assert.ErrorIs(t, err, users.ErrLocked, "a locked account answers ErrLocked whatever the password")

	e.clock.Advance(15*time.Minute - time.Second)
	_, err = e.users.Authenticate(ctx, "ivy", goodPassword)
	assert.ErrorIs(t, err, users.ErrLocked, "still locked just before fifteen minutes")

	e.clock.Advance(2 * time.Second)
	fail(4)
	u, err := e.users.Authenticate(ctx, "ivy", goodPassword)
	require.NoError(t, err, "after the lock expires the user has a fresh set of attempts")
	assert.Equal(t, "ivy", u.ID)

	fail(5)
	_, err = e.users.Authenticate(ctx, "ivy", goodPassword)
	assert.ErrorIs(t, err, users.ErrLocked, "the account locks again")
	require.NoError(t, e.users.SetPassword(ctx, "ivy", "a new password"))
	_, err = e.users.Authenticate(ctx, "ivy", "a new password")
	assert.NoError(t, err, "setting a password lifts the lock")

	var locks int
	for _, ev := range e.events(t, audit.TypeLoginFailed) {
		if _, ok := ev.Details["locked_until"]; ok {
			locks++
		}
	}
	assert.Equal(t, 2, locks, "each lock is recorded on the failure that caused it")
}

func TestAuthenticate_LockoutOptions(t *testing.T) {
	e := newEnv(t, users.WithLockout(2, time.Minute))
	e.mustUser(t, users.NewUser{Username: "jack", Password: goodPassword})
	for i := 0; i < 2; i++ {
		_, err := e.users.Authenticate(ctx, "jack", "wrong password")
		require.ErrorIs(t, err, users.ErrInvalidCredentials)
	}
	_, err := e.users.Authenticate(ctx, "jack", goodPassword)
	assert.ErrorIs(t, err, users.ErrLocked)
	e.clock.Advance(time.Minute)
	_, err = e.users.Authenticate(ctx, "jack", goodPassword)
	assert.NoError(t, err)

	// Non-positive values keep the defaults.
	d := newEnv(t, users.WithLockout(0, -time.Second))
	d.mustUser(t, users.NewUser{Username: "kim", Password: goodPassword})
	for i := 0; i < users.DefaultMaxFailures; i++ {
		_, err := d.users.Authenticate(ctx, "kim", "wrong password")
		require.ErrorIs(t, err, users.ErrInvalidCredentials)
	}
	_, err = d.users.Authenticate(ctx, "kim", goodPassword)
	assert.ErrorIs(t, err, users.ErrLocked)
	d.clock.Advance(users.DefaultLockout)
	_, err = d.users.Authenticate(ctx, "kim", goodPassword)
	assert.NoError(t, err)
}

func TestAuthenticate_ConcurrentFailuresAllCount(t *testing.T) {
	e := newEnv(t)
	e.mustUser(t, users.NewUser{Username: "lee", Password: goodPassword})
	var wg sync.WaitGroup
	for i := 0; i < users.DefaultMaxFailures; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := e.users.Authenticate(ctx, "lee", "wrong password")
			assert.ErrorIs(t, err, users.ErrInvalidCredentials)
		}()
	}
	wg.Wait()
	_, err := e.users.Authenticate(ctx, "lee", goodPassword)
	assert.ErrorIs(t, err, users.ErrLocked, "no failure was lost")
}

func TestLogout_RecordsEvent(t *testing.T) {
	e := newEnv(t)
	e.mustUser(t, users.NewUser{Username: "mia", Password: goodPassword})
	require.NoError(t, e.users.Logout(ctx, "mia"))
	ev := e.lastEvent(t, audit.TypeLogout)
	assert.Equal(t, "mia", ev.UserID)
	assert.Equal(t, "mia", ev.ActorID)

	assert.ErrorIs(t, e.users.Logout(ctx, "nobody"), users.ErrNotFound)
	assert.ErrorIs(t, e.users.Logout(ctx, ""), users.ErrInvalidInput)
	e.deleteUser(t, "mia")
	assert.ErrorIs(t, e.users.Logout(ctx, "mia"), users.ErrNotFound)
	assert.Len(t, e.events(t, audit.TypeLogout), 1)
}

package users_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/civicstack/townhall/audit"
	"github.com/civicstack/townhall/internal/dbx"
	"github.com/civicstack/townhall/users"
)

func TestRequestPasswordReset_AnswersAlikeForUnknownEmails(t *testing.T) {
	mail := &outbox{}
	e := newEnv(t, users.WithMailer(mail))
	e.mustUser(t, users.NewUser{Username: "amy", Email: "Amy@Example.org", Password: "correct horse"})
	e.mustUser(t, users.NewUser{Username: "bot", Email: "bot@example.org", Kind: users.Technical})

	known := e.users.RequestPasswordReset(ctx, "amy@example.org")
	unknown := e.users.RequestPasswordReset(ctx, "nobody@example.org")
	technical := e.users.RequestPasswordReset(ctx, "bot@example.org")
	assert.NoError(t, known)
	assert.Equal(t, known, unknown, "the same answer")
	assert.Equal(t, known, technical)

	require.Len(t, mail.sent, 1, "only the known interactive user gets a message")
	m := mail.sent[0]
	assert.Equal(t, users.MessagePasswordReset, m.Kind)
	assert.Equal(t, "amy", m.UserID)
	assert.Equal(t, "Amy@Example.org", m.To)
	assert.True(t, strings.HasPrefix(m.Token, "thr_"))
	assert.Equal(t, e.clock.Now().Add(users.DefaultResetTTL).Truncate(time.Microsecond), m.ExpiresAt)

	evs := e.events(t, audit.TypePasswordResetRequested)
	require.Len(t, evs, 3, "every request is audited")
	assert.Equal(t, "amy", evs[0].UserID)
	assert.Empty(t, evs[1].UserID)

	mail.fail = errors.New("queue full")
	assert.Equal(t, known, e.users.RequestPasswordReset(ctx, "amy@example.org"), "a mailer failure does not tell either")
	assert.Len(t, e.events(t, audit.TypeMailFailed), 1, "but it is on record")

	assert.ErrorIs(t, e.users.RequestPasswordReset(ctx, "not an address"), users.ErrInvalidInput)
	assert.ErrorIs(t, e.users.RequestPasswordReset(ctx, ""), users.ErrInvalidInput)
	noMailer := newEnv(t)
	assert.ErrorIs(t, noMailer.users.RequestPasswordReset(ctx, "amy@example.org"), users.ErrNoMailer)
}

func TestResetPassword_WorksOnceEndsSessionsClearsLock(t *testing.T) {
	mail := &outbox{}
	e := newEnv(t, users.WithMailer(mail), users.WithLockout(2, time.Hour))
	e.mustUser(t, users.NewUser{Username: "amy", Email: "amy@example.org", Password: "correct horse"})
	in, err := e.users.Login(ctx, "amy", "correct horse")
	require.NoError(t, err)
	for range 2 {
		_, _ = e.users.Authenticate(ctx, "amy", "wrong password")
	}
	_, err = e.users.Authenticate(ctx, "amy", "correct horse")
	require.ErrorIs(t, err, users.ErrLocked)

	require.NoError(t, e.users.RequestPasswordReset(ctx, "amy@example.org"))
	token := mail.last(t, users.MessagePasswordReset).Token

	assert.ErrorIs(t, e.users.ResetPassword(ctx, token, "short"), users.ErrInvalidInput)
	require.NoError(t, e.users.ResetPassword(ctx, token, "battery staple"), "a refused password does not spend the token")

	_, err = e.users.ResolveSession(ctx, in.Token)
	assert.ErrorIs(t, err, users.ErrInvalidCredentials, "the reset ends every session")
	_, err = e.users.Authenticate(ctx, "amy", "battery staple")
	assert.NoError(t, err, "the new password works and the lock is gone")
	_, err = e.users.Authenticate(ctx, "amy", "correct horse")
	assert.ErrorIs(t, err, users.ErrInvalidCredentials)

	assert.ErrorIs(t, e.users.ResetPassword(ctx, token, "another password"), users.ErrInvalidToken, "single use")
	ev := e.lastEvent(t, audit.TypePasswordResetFailed)
	assert.Equal(t, users.ReasonSpentToken, ev.Reason)
	assert.Equal(t, "amy", ev.UserID)
	assert.Len(t, e.events(t, audit.TypePasswordReset), 1)
}

func TestResetPassword_RefusesBadTokens(t *testing.T) {
	cases := []struct {
		name   string
		token  func(e *env, mail *outbox) string
		reason string
	}{
		{"expired", func(e *env, mail *outbox) string {
			tok := e.requestReset(t, mail)
			e.clock.Advance(time.Hour)
			return tok
		}, users.ReasonExpiredToken},
		{"superseded by a newer request", func(e *env, mail *outbox) string {
			tok := e.requestReset(t, mail)
			e.requestReset(t, mail)
			return tok
		}, users.ReasonSpentToken},
		{"the email changed since", func(e *env, mail *outbox) string {
			tok := e.requestReset(t, mail)
			_, err := e.users.Update(ctx, "amy", users.UserUpdate{Email: ptr("amy@elsewhere.org")})
			require.NoError(t, err)
			return tok
		}, users.ReasonEmailChanged},
		{"unknown", func(e *env, mail *outbox) string { return "thr_" + strings.Repeat("A", 43) }, users.ReasonUnknownToken},
		{"malformed", func(e *env, mail *outbox) string { return "thr_short" }, users.ReasonMalformedToken},
		{"a verification token", func(e *env, mail *outbox) string { return "thv_" + strings.Repeat("A", 43) }, users.ReasonMalformedToken},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			mail := &outbox{}
			e := newEnv(t, users.WithMailer(mail))
			e.mustUser(t, users.NewUser{Username: "amy", Email: "amy@example.org", Password: "correct horse"})
			err := e.users.ResetPassword(ctx, tc.token(e, mail), "battery staple")
			assert.ErrorIs(t, err, users.ErrInvalidToken)
			assert.Equal(t, tc.reason, e.lastEvent(t, audit.TypePasswordResetFailed).Reason)
			_, err = e.users.Authenticate(ctx, "amy", "correct horse")
			assert.NoError(t, err, "the password is unchanged")
		})
	}
}

// requestReset asks for a reset of amy's password and returns the token.
func (e *env) requestReset(t *testing.T, mail *outbox) string {
	t.Helper()
	require.NoError(t, e.users.RequestPasswordReset(ctx, "amy@example.org"))
	return mail.last(t, users.MessagePasswordReset).Token
}

// conflictOnce is a Mailer that keeps every message handed to it and fails
// the first one to user with a retryable conflict, as a queue kept in the
// same database does when it loses a deadlock: the transaction runs again.
type conflictOnce struct {
	outbox
	user   string
	failed bool
	handed []users.Message
}

func (c *conflictOnce) Send(ctx context.Context, m users.Message) error {
	c.mu.Lock()
	c.handed = append(c.handed, m)
	fail := !c.failed && m.UserID == c.user
	c.failed = c.failed || fail
	c.mu.Unlock()
	if fail {
		return fmt.Errorf("enqueue: %w", dbx.ErrConflict)
	}
	return c.outbox.Send(ctx, m)
}

// TestRequestPasswordReset_RetryNeverHandsOneTokenToTwoUsers: when the
// transaction runs again, every attempt issues fresh tokens, so a token
// handed to the Mailer for one user (here bob's, in the attempt that lost)
// never becomes another user's (amy's) reset token, the tokens of the lost
// attempt reset no one, and a Mailer failure the retry got past is not on
// record as a failed mail.
func TestRequestPasswordReset_RetryNeverHandsOneTokenToTwoUsers(t *testing.T) {
	mail := &conflictOnce{user: "bob"}
	e := newEnv(t, users.WithMailer(mail))
	e.mustUser(t, users.NewUser{Username: "amy", Email: "family@example.org", Password: "correct horse"})
	e.mustUser(t, users.NewUser{Username: "bob", Email: "family@example.org", Password: "correct horse"})

	require.NoError(t, e.users.RequestPasswordReset(ctx, "family@example.org"))
	require.True(t, mail.failed, "precondition: the first attempt lost")
	owner := map[string]string{}
	for _, m := range mail.handed {
		if prev, ok := owner[m.Token]; ok {
			t.Errorf("one token handed to the Mailer for %s and for %s", prev, m.UserID)
		}
		owner[m.Token] = m.UserID
	}
	require.Len(t, mail.handed, 4, "two attempts, one message each to amy and bob")
	for _, m := range mail.handed[:2] {
		assert.ErrorIs(t, e.users.ResetPassword(ctx, m.Token, "battery staple"), users.ErrInvalidToken,
			"the token handed to %s in the attempt that lost resets no one", m.UserID)
	}
	for _, id := range []string{"amy", "bob"} {
		_, err := e.users.Authenticate(ctx, id, "correct horse")
		assert.NoError(t, err, "%s's password is untouched", id)
	}
	for _, m := range mail.handed[2:] {
		require.NoError(t, e.users.ResetPassword(ctx, m.Token, "battery staple "+m.UserID))
		_, err := e.users.Authenticate(ctx, m.UserID, "battery staple "+m.UserID)
		assert.NoError(t, err, "%s's own token resets %s's password", m.UserID, m.UserID)
	}
	assert.Empty(t, e.events(t, audit.TypeMailFailed), "the retry sent every message")
}

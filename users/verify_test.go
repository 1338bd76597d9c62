package users_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/civicstack/townhall/audit"
	"github.com/civicstack/townhall/users"
)

func TestRegister_WithVerificationSignsInOnlyOnceVerified(t *testing.T) {
	mail := &outbox{}
	e := newEnv(t, users.WithMailer(mail), users.WithEmailVerification())
	u, err := e.users.Register(ctx, users.NewUser{ID: "amy", Username: "amy", Email: "amy@example.org", Password: "correct horse"})
	require.NoError(t, err)
	assert.True(t, u.VerificationPending)
	m := mail.last(t, users.MessageEmailVerification)
	assert.Equal(t, "amy", m.UserID)
	assert.True(t, strings.HasPrefix(m.Token, "thv_"))

	_, err = e.users.Login(ctx, "amy", "correct horse")
	assert.ErrorIs(t, err, users.ErrUnverified)
	assert.Equal(t, users.ReasonUnverified, e.lastEvent(t, audit.TypeLoginFailed).Reason)
	_, err = e.users.StartSession(ctx, "amy", "sso")
	assert.ErrorIs(t, err, users.ErrUnverified)

	got, err := e.users.VerifyEmail(ctx, m.Token)
	require.NoError(t, err)
	assert.False(t, got.VerificationPending)
	require.NotNil(t, got.EmailVerifiedAt)
	_, err = e.users.Login(ctx, "amy", "correct horse")
	assert.NoError(t, err)

	_, err = e.users.VerifyEmail(ctx, m.Token)
	assert.ErrorIs(t, err, users.ErrInvalidToken, "single use")
	assert.Equal(t, users.ReasonSpentToken, e.lastEvent(t, audit.TypeVerificationFailed).Reason)

	created, err := e.users.Create(ctx, users.NewUser{Username: "bob", Password: "correct horse"})
	require.NoError(t, err)
	assert.False(t, created.VerificationPending, "users made by Create are not held back")
}

func TestRegister_WithVerificationNeedsEmailAndAMailer(t *testing.T) {
	mail := &outbox{fail: errors.New("queue full")}
	e := newEnv(t, users.WithMailer(mail), users.WithEmailVerification())
	_, err := e.users.Register(ctx, users.NewUser{Username: "amy", Password: "correct horse"})
	assert.ErrorIs(t, err, users.ErrInvalidInput)
	_, err = e.users.Register(ctx, users.NewUser{Username: "amy", Email: "amy@example.org"})
	assert.Error(t, err, "a message that cannot be sent")
	_, err = e.users.GetByUsername(ctx, "amy")
	assert.ErrorIs(t, err, users.ErrNotFound, "registers no one")

	noMailer := newEnv(t, users.WithEmailVerification())
	_, err = noMailer.users.Register(ctx, users.NewUser{Username: "amy", Email: "amy@example.org"})
	assert.ErrorIs(t, err, users.ErrNoMailer)
}

func TestVerifyEmail_ResendExpiryAndAdmin(t *testing.T) {
	mail := &outbox{}
	e := newEnv(t, users.WithMailer(mail), users.WithEmailVerification(), users.WithTokenTTL(0, time.Hour))
	_, err := e.users.Register(ctx, users.NewUser{ID: "amy", Username: "amy", Email: "amy@example.org", Password: "correct horse"})
	require.NoError(t, err)
	first := mail.last(t, users.MessageEmailVerification).Token

	require.NoError(t, e.users.ResendVerification(ctx, "amy"))
	second := mail.last(t, users.MessageEmailVerification).Token
	assert.NotEqual(t, first, second)
	_, err = e.users.VerifyEmail(ctx, first)
	assert.ErrorIs(t, err, users.ErrInvalidToken, "a resend supersedes the earlier message")

	e.clock.Advance(time.Hour)
	_, err = e.users.VerifyEmail(ctx, second)
	assert.ErrorIs(t, err, users.ErrInvalidToken, "expired")
	assert.Equal(t, users.ReasonExpiredToken, e.lastEvent(t, audit.TypeVerificationFailed).Reason)

	require.NoError(t, e.users.MarkEmailVerified(ctx, "amy"), "an administrator vouches")
	_, err = e.users.Login(ctx, "amy", "correct horse")
	assert.NoError(t, err)
	assert.ErrorIs(t, e.users.ResendVerification(ctx, "amy"), users.ErrInvalidInput, "nothing to verify any more")
	assert.ErrorIs(t, e.users.ResendVerification(ctx, "nobody"), users.ErrNotFound)
	assert.True(t, e.lastEvent(t, audit.TypeEmailVerified).Details["by_admin"].(bool))
}

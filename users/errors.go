package users

import "errors"

// Errors returned by the stores. They are wrapped with context; test for them
// with errors.Is.
var (
	// ErrNotFound reports an unknown or deleted user, profile, department or
	// API key.
	ErrNotFound = errors.New("users: not found")
	// ErrDuplicate reports an ID, username (case-insensitively) or live
	// profile that already exists.
	ErrDuplicate = errors.New("users: duplicate")
	// ErrInvalidInput reports malformed input: a bad ID, username, email,
	// name, password, kind, category list or option.
	ErrInvalidInput = errors.New("users: invalid input")
	// ErrInvalidCredentials reports an unknown or deleted username, a wrong
	// or missing password, or an unknown, malformed or revoked API key.
	ErrInvalidCredentials = errors.New("users: invalid credentials")
	// ErrInactive reports correct credentials of a deactivated user.
	ErrInactive = errors.New("users: user inactive")
	// ErrTechnicalUser reports a password operation on a technical user:
	// technical users never have a password and sign in with API keys.
	ErrTechnicalUser = errors.New("users: technical user")
	// ErrTechnicalOnly reports an API key operation on an interactive user.
	// It is always returned together with ErrInvalidInput.
	ErrTechnicalOnly = errors.New("users: api keys are for technical users only")
	// ErrLocked reports a sign-in attempt on an account locked after too
	// many consecutive failures. The lock expires by itself.
	ErrLocked = errors.New("users: account locked")
	// ErrReservedID reports a new user ID that townhall keeps for itself
	// (see ReservedIDs). It is always returned together with
	// ErrInvalidInput.
	ErrReservedID = errors.New("users: reserved user id")
	// ErrUnverified reports a sign-in of a self-registered user whose email
	// is not verified yet (WithEmailVerification).
	ErrUnverified = errors.New("users: email not verified")
	// ErrSessionExpired reports a session past its idle timeout or its
	// absolute lifetime. It is always returned together with
	// ErrInvalidCredentials.
	ErrSessionExpired = errors.New("users: session expired")
	// ErrInvalidToken reports a password reset or email verification token
	// that is malformed, unknown, already used, superseded or expired.
	ErrInvalidToken = errors.New("users: invalid token")
	// ErrNoMailer reports an operation that sends email on a store
	// configured without WithMailer.
	ErrNoMailer = errors.New("users: no mailer configured")
)

// ReservedIDs are user IDs no user may have: "system" is the ActorID of
// access.System() in the audit log, and "anonymous" stands for subjects
// who are not signed in. Like "*" for domains, they would otherwise make
// a user indistinguishable from them.
var ReservedIDs = []string{"system", "anonymous"}

// Package users keeps townhall's users, their credentials and API keys
// (Store), and their profiles — memberships at locations — and the
// departments of municipalities (ProfileStore).
//
// # Guarantees
//
// Every write runs in one database transaction together with its audit
// event, so a failed write leaves neither a row nor an event behind. Events
// hold IDs only: never usernames, names, emails, passwords or keys. Writes
// through Store and ProfileStore are unguarded (bootstrap, imports, host code
// that has authorised the change) and are audited with the subject in the
// context, or "system"; access.Admin is the guarded way, and runs the same
// writes inside its own transactions, with its own audit events and
// snapshot update. No exported method writes without an audit event and a
// change callback.
// Every time-dependent rule uses the clock given with WithClock. Bad input
// returns an error matching ErrInvalidInput (or another sentinel below) with
// errors.Is; nothing panics.
//
// # Users
//
// IDs are 1-64 characters of A-Z a-z 0-9 . _ : -, compared byte for byte
// (also on MariaDB); an empty ID on create means "generate one". IDs are
// never reused: deletion is soft and keeps the row.
//
// A username is 1-150 Unicode letters or digits (unicode.IsLetter,
// unicode.IsDigit; combining marks are refused, so only precomposed forms
// are accepted) or @ . + - _. Usernames are unique case-insensitively
// through a key column holding strings.ToLower of the username; a deleted
// user keeps its key, so its username stays taken until the user is
// anonymised. Usernames beginning with "deleted-" (in any case) are
// reserved for anonymised users. Email is optional; when given it is a bare
// address as net/mail parses it (no display name), at most 254 bytes. First
// and last names are optional, at most 150 characters, without control
// characters. New users are active.
//
// # Passwords and sign-in
//
// Passwords are at least 8 characters (runes) and at most 1024 bytes of
// UTF-8, with no composition rules. They are hashed with argon2id (cost set
// with WithKDF, default DefaultKDF) into the PHC string format
// $argon2id$v=19$m=..,t=..,p=..$salt$hash, and verified with the parameters
// stored in the hash and a constant-time comparison. A user may have no
// password (single sign-on); technical users never have one.
//
// Authenticate answers in SPEC §4's order: unknown or deleted user
// (ErrInvalidCredentials), technical user (ErrTechnicalUser), locked
// (ErrLocked), no or wrong password (ErrInvalidCredentials, counted),
// inactive (ErrInactive). Five consecutive failures lock the account for
// fifteen minutes (WithLockout); the lock expires by itself and the user
// then gets a fresh set of attempts. Sign-ins, failures (with a Reason) and
// sign-outs are audited with the user as actor and target.
//
// # Sessions
//
// Login (a password) and StartSession (after the host's single sign-on)
// start a session: an opaque token of 256 random bits (ths_...), shown
// once and stored only as its SHA-256, with an idle timeout and an
// absolute lifetime (WithSessionTimeouts, default 30 minutes and 8 hours)
// on the store's clock. ResolveSession turns the token back into the
// session on every request. A session ends on EndSession (logout), Logout
// and EndAll (every session of the user), a password change or reset,
// deactivation and deletion; ended sessions never come back. Login and
// logout events carry the session's ID, never the token.
//
// # Recovery and verification
//
// Password reset and email verification use single-use tokens (thr_...,
// thv_...), stored as their SHA-256, expiring (WithTokenTTL, default one
// hour and 24 hours), superseded by a newer one, and sent through the
// host's Mailer (WithMailer) inside the transaction that issues them.
// RequestPasswordReset answers alike for known and unknown addresses;
// ResetPassword spends the token, sets the password, clears the lockout
// and ends every session. With WithEmailVerification, Register sends a
// verification message and the user cannot sign in until VerifyEmail (or
// MarkEmailVerified). SendWelcome sends the welcome message of the
// onboarding checklist. Every step is audited, never with a token,
// password or email address.
//
// # External identities
//
// LinkIdentity maps a (provider, subject) pair, verified by the host's
// OAuth, OIDC or SAML code, to a user; FindByIdentity looks it up;
// SignInExternal signs the linked user in, provisioning one on first
// sign-in when asked.
//
// # API keys
//
// Technical users sign in with API keys: th_<id>_<secret>, a 96-bit public
// ID and a 256-bit random secret, shown once by CreateAPIKey and stored only
// as the secret's SHA-256. Keys are revocable; deleting a user revokes them.
//
// # Profiles and departments
//
// A user has at most one live profile per location (deleted profiles stay
// on record). A profile's department must belong to the profile's location
// or to one of its ancestors (a village profile may join its municipality's
// department). Departments belong to municipality-level locations.
// Category lists are sets of identifiers (the ID rules), stored sorted and
// without duplicates; EffectiveCategories combines a profile's and its
// department's lists as SPEC §1 says. Onboarding reports a user's checklist
// at a municipality.
package users

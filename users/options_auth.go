package users

import "time"

// Defaults of sessions and of the single-use tokens of SPEC §4.
const (
	DefaultSessionIdle     = 30 * time.Minute
	DefaultSessionLifetime = 8 * time.Hour
	DefaultResetTTL        = time.Hour
	DefaultVerificationTTL = 24 * time.Hour
)

// WithSessionTimeouts sets how long a session lives without use (idle,
// default 30 minutes) and at most in all (lifetime, default 8 hours).
// Non-positive values keep the defaults; an idle timeout longer than the
// lifetime is cut to it.
func WithSessionTimeouts(idle, lifetime time.Duration) Option {
	return func(o *options) {
		if idle > 0 {
			o.sessionIdle = idle
		}
		if lifetime > 0 {
			o.sessionLifetime = lifetime
		}
		o.sessionIdle = min(o.sessionIdle, o.sessionLifetime)
	}
}

// WithTokenTTL sets how long a password reset token (default one hour) and
// an email verification token (default 24 hours) stay valid. Non-positive
// values keep the defaults.
func WithTokenTTL(reset, verification time.Duration) Option {
	return func(o *options) {
		if reset > 0 {
			o.resetTTL = reset
		}
		if verification > 0 {
			o.verifyTTL = verification
		}
	}
}

// WithMailer sets the host's Mailer, which sends password reset, email
// verification and welcome messages. Without one those operations fail with
// ErrNoMailer. A nil Mailer is ignored.
func WithMailer(m Mailer) Option {
	return func(o *options) {
		if m != nil {
			o.mailer = m
		}
	}
}

// WithEmailVerification makes Register require an email address and send a
// verification message: the new user cannot sign in until the address is
// verified (VerifyEmail) or marked verified (MarkEmailVerified). Users made
// with Create are not affected.
func WithEmailVerification() Option { return func(o *options) { o.verifyEmail = true } }

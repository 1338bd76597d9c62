package townhall

import (
	"time"

	"github.com/civicstack/townhall/access"
	"github.com/civicstack/townhall/users"
)

// WithMailer sets the host's Mailer for password reset, email verification
// and welcome messages (see users.Mailer).
func WithMailer(m users.Mailer) Option {
	return func(c *config) { c.userOpts = append(c.userOpts, users.WithMailer(m)) }
}

// WithSessionTimeouts sets the idle timeout (default 30 minutes) and the
// absolute lifetime (default 8 hours) of sessions (see
// users.WithSessionTimeouts).
func WithSessionTimeouts(idle, lifetime time.Duration) Option {
	return func(c *config) { c.userOpts = append(c.userOpts, users.WithSessionTimeouts(idle, lifetime)) }
}

// WithTokenTTL sets how long password reset (default one hour) and email
// verification (default 24 hours) tokens stay valid.
func WithTokenTTL(reset, verification time.Duration) Option {
	return func(c *config) { c.userOpts = append(c.userOpts, users.WithTokenTTL(reset, verification)) }
}

// WithEmailVerification makes self-registration (Users.Register) send a
// verification message; the user cannot sign in until verified. It needs
// WithMailer.
func WithEmailVerification() Option {
	return func(c *config) { c.userOpts = append(c.userOpts, users.WithEmailVerification()) }
}

// Authenticator returns the platform's authentication middleware: it turns
// a request's session cookie, bearer session token or API key (and an
// impersonation token) into the subject that Require, Check and the
// filters see. See access.NewAuthenticator for the options.
func (p *Platform) Authenticator(opts ...access.AuthOption) (*access.Authenticator, error) {
	return access.NewAuthenticator(p.Users, p.Admin, opts...)
}

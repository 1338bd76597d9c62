package users

import (
	"context"
	"time"
)

// Defaults of the lockout rule of SPEC §4.
const (
	DefaultMaxFailures = 5
	DefaultLockout     = 15 * time.Minute
)

type options struct {
	now         func() time.Time
	kdf         KDFParams
	maxFailures int
	lockout     time.Duration
	onChange    func(context.Context, Change) error

	sessionIdle     time.Duration
	sessionLifetime time.Duration
	resetTTL        time.Duration
	verifyTTL       time.Duration
	verifyEmail     bool
	mailer          Mailer
}

func defaultOptions() options {
	return options{
		now:         time.Now,
		kdf:         DefaultKDF,
		maxFailures: DefaultMaxFailures,
		lockout:     DefaultLockout,

		sessionIdle:     DefaultSessionIdle,
		sessionLifetime: DefaultSessionLifetime,
		resetTTL:        DefaultResetTTL,
		verifyTTL:       DefaultVerificationTTL,
	}
}

func buildOptions(opts []Option) options {
	o := defaultOptions()
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	return o
}

// Option configures a Store or a ProfileStore.
type Option func(*options)

// WithClock sets the clock used for timestamps, lockouts and last-login
// times (default time.Now). A nil function is ignored.
func WithClock(now func() time.Time) Option {
	return func(o *options) {
		if now != nil {
			o.now = now
		}
	}
}

// WithKDF sets the argon2id cost used to hash new passwords. Zero fields keep
// the value of DefaultKDF; MemoryKiB is rounded the way argon2 rounds it
// (down to a multiple of 4×Threads, at least 8×Threads) so the parameters
// written into a hash are the ones actually used. Existing hashes keep
// verifying with the parameters stored in them.
func WithKDF(p KDFParams) Option {
	return func(o *options) {
		o.kdf = p.normalized()
	}
}

// WithLockout sets how many consecutive failed sign-ins lock an account
// (default 5) and for how long (default 15 minutes). Non-positive values keep
// the defaults: a lock is never permanent.
func WithLockout(maxFailures int, d time.Duration) Option {
	return func(o *options) {
		if maxFailures > 0 {
			o.maxFailures = maxFailures
		}
		if d > 0 {
			o.lockout = d
		}
	}
}

// now returns the clock's time in UTC at the microsecond precision the
// databases store.
func (o *options) nowUTC() time.Time {
	return o.now().UTC().Truncate(time.Microsecond)
}

// Change names what a committed write changed, for WithOnChange.
type Change struct {
	UserID       string // a user, or its profiles, changed
	DepartmentID string // a department changed
}

// WithOnChange registers fn to run after each write of a user, profile or
// department has committed, before the write call returns, so that an
// in-memory copy (the access checker's snapshot) sees it. An error from fn
// is returned by the write call; the write itself stays committed.
// access.Admin's in-transaction forms of these writes do not call fn: Admin
// updates the snapshot after its own commit.
func WithOnChange(fn func(ctx context.Context, c Change) error) Option {
	return func(o *options) { o.onChange = fn }
}

// notify runs the WithOnChange hook, if any.
func (o *options) notify(ctx context.Context, c Change) error {
	if o.onChange == nil {
		return nil
	}
	return o.onChange(ctx, c)
}

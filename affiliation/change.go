package affiliation

import "context"

// Change tells WithOnChange's hook what a committed write touched:
// organisations or links changed, and these users' links or activity.
type Change struct {
	UserIDs []string
}

// WithOnChange registers fn to run after each write of the Store has
// committed, before the write call returns, so that an in-memory copy (the
// access checker's snapshot) sees it. An error from fn is returned by the
// write call; the write itself stays committed. access.Admin's
// in-transaction forms of these writes do not call fn: Admin updates the
// snapshot after its own commit.
func WithOnChange(fn func(ctx context.Context, c Change) error) Option {
	return func(o *options) { o.onChange = fn }
}

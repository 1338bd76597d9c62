// Package txwrite is the typed way to the store writes that run inside the
// caller's transaction: the ones access.Admin (guarded changes, import)
// composes into one transaction with its own rules, audit events and
// snapshot update. The stores keep them unexported (SPEC §3: no exported
// write bypasses audit and snapshot); package hook carries them here.
//
// None of these functions authorises, audits or notifies: the caller's
// transaction must. Each returns the errors of the store method it stands
// for (users.ErrNotFound, location.ErrCycle, ...).
package txwrite

import (
	"errors"
	"fmt"
)

// errUnwired reports a hook that its store package did not set, or set to
// a function of another type: a programming error inside townhall, which
// TestHooks_AllWired catches.
var errUnwired = errors.New("txwrite: store hook not wired")

// fn returns hook h as the function type F.
func fn[F any](name string, h any) (F, error) {
	f, ok := h.(F)
	if !ok {
		return f, fmt.Errorf("%w: %s", errUnwired, name)
	}
	return f, nil
}

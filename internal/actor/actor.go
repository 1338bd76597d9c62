// Package actor carries the acting subject through a context.Context.
//
// It sits below every data store so that users, location, affiliation and
// audit can attribute their writes without importing package access, whose
// WithSubject and SubjectFrom are the public face of the same context key.
package actor

import "context"

// Actor is who performs an operation: a user, optionally impersonated by
// another. The zero Actor is anonymous.
type Actor struct {
	UserID         string
	ImpersonatorID string
	System         bool // the in-process bootstrap actor; UserID is SystemID
}

// SystemID is the actor ID recorded for in-process bootstrap writes. It is
// reserved: no user may have it as ID.
const SystemID = "system"

type ctxKey struct{}

// With returns a copy of ctx that carries a.
func With(ctx context.Context, a Actor) context.Context {
	return context.WithValue(ctx, ctxKey{}, a)
}

// From returns the actor in ctx and whether there was one.
func From(ctx context.Context) (Actor, bool) {
	a, ok := ctx.Value(ctxKey{}).(Actor)
	return a, ok
}

// OrSystem returns the actor in ctx, or the system actor when there is none.
func OrSystem(ctx context.Context) Actor {
	if a, ok := From(ctx); ok {
		return a
	}
	return Actor{UserID: SystemID, System: true}
}

package access

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/civicstack/townhall/location"
	"github.com/civicstack/townhall/users"
)

// RequireOption configures Require.
type RequireOption func(*requireConfig)

type requireConfig struct {
	municipality func(*http.Request) (string, error)
	hide         bool
}

// WithMunicipalityPathValue takes the municipality from the request's path
// value name (net/http patterns such as "/m/{municipality}/occurrences").
func WithMunicipalityPathValue(name string) RequireOption {
	return func(c *requireConfig) {
		c.municipality = func(r *http.Request) (string, error) { return r.PathValue(name), nil }
	}
}

// WithMunicipalityFunc takes the municipality from fn. An error from fn is
// answered 400.
func WithMunicipalityFunc(fn func(*http.Request) (string, error)) RequireOption {
	return func(c *requireConfig) { c.municipality = fn }
}

// WithNotFoundOnDeny answers 404 instead of 403 to signed-in subjects who
// are denied, so the response does not reveal what exists.
func WithNotFoundOnDeny() RequireOption { return func(c *requireConfig) { c.hide = true } }

type decisionKey struct{}

// DecisionFrom returns the decision Require made for this request.
func DecisionFrom(ctx context.Context) (Decision, bool) {
	d, ok := ctx.Value(decisionKey{}).(Decision)
	return d, ok
}

// ImpersonatorFrom returns the super admin acting through an impersonated
// subject, if any.
func ImpersonatorFrom(ctx context.Context) (string, bool) {
	s, ok := SubjectFrom(ctx)
	if !ok || s.ImpersonatorID == "" {
		return "", false
	}
	return s.ImpersonatorID, true
}

// Require returns net/http middleware that lets a request through only
// when the subject in its context (WithSubject; none means anonymous) may
// perform module.action. With a municipality option it asks Check for that
// municipality; without one it asks UserCanAccessModule (the module gate).
//
// Answers: anonymous and denied, or a subject naming an unknown user or a
// dead impersonation: 401; signed in and denied: 403 (404 with
// WithNotFoundOnDeny); a malformed or unknown municipality: 400 or 404; any
// other error: 500, never an allow. Bodies are RFC 9457
// application/problem+json. The handler finds the decision with
// DecisionFrom.
func (c *Checker) Require(module, action string, opts ...RequireOption) func(http.Handler) http.Handler {
	cfg := requireConfig{}
	for _, o := range opts {
		if o != nil {
			o(&cfg)
		}
	}
	return c.obs.traced(module, action, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ctx := r.Context()
			s, _ := SubjectFrom(ctx)
			var (
				d   Decision
				err error
			)
			if cfg.municipality != nil {
				muni, merr := cfg.municipality(r)
				if merr != nil {
					problem(w, http.StatusBadRequest, "Bad request", merr.Error())
					return
				}
				d, err = c.Check(ctx, s, Request{Municipality: muni, Module: module, Action: action})
			} else {
				var ok bool
				ok, err = c.UserCanAccessModule(ctx, s, module, action)
				d = Decision{Allowed: ok, Reason: ReasonNoGrant}
				if ok {
					d.Reason = ReasonRole
				}
			}
			switch {
			case errors.Is(err, users.ErrNotFound), errors.Is(err, ErrInvalidToken):
				problem(w, http.StatusUnauthorized, "Unauthorized", "the subject is not a known, signed-in user")
				return
			case errors.Is(err, location.ErrNotFound):
				problem(w, http.StatusNotFound, "Not found", "unknown municipality")
				return
			case errors.Is(err, ErrInvalidInput):
				problem(w, http.StatusBadRequest, "Bad request", "malformed municipality")
				return
			case err != nil:
				problem(w, http.StatusInternalServerError, "Internal error", "the access decision failed")
				return
			case !d.Allowed && s.UserID == "":
				problem(w, http.StatusUnauthorized, "Unauthorized", "sign in to "+action+" "+module)
				return
			case !d.Allowed && cfg.hide:
				problem(w, http.StatusNotFound, "Not found", "no such resource")
				return
			case !d.Allowed:
				problem(w, http.StatusForbidden, "Forbidden", "not allowed to "+action+" "+module+" ("+string(d.Reason)+")")
				return
			}
			next.ServeHTTP(w, r.WithContext(context.WithValue(ctx, decisionKey{}, d)))
		})
	})
}

// problem writes an RFC 9457 problem details body.
func problem(w http.ResponseWriter, status int, title, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"type": "about:blank", "title": title, "status": status, "detail": detail,
	})
}

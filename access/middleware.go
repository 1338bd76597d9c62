package access

import (
	"context"
	"errors"
	"net/http"

	"github.com/civicstack/townhall/location"
)

// RequireOption configures Require.
type RequireOption func(*requireConfig)

type requireConfig struct {
	municipality func(*http.Request) (string, error)
	resource     func(*http.Request) (*Resource, error)
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

// WithResource takes the record the request acts on from fn, so Require
// decides on that record (its location, category and organisation) as
// Check with a Resource does, instead of the module gate. Combined with a
// municipality option, the record must also lie in that municipality. fn
// returns (nil, nil) when the request names no record that exists: that
// is answered 404, as is an error matching location.ErrNotFound; other
// errors are mapped as Check's are (see ProblemFor).
func WithResource(fn func(*http.Request) (*Resource, error)) RequireOption {
	return func(c *requireConfig) { c.resource = fn }
}

// Require returns net/http middleware that lets a request through only
// when the subject in its context (WithSubject; none means anonymous) may
// perform module.action. With WithResource it asks Check about the record;
// with a municipality option only, Check for that municipality; with
// neither, CheckModule (the module gate, UserCanAccessModule with its
// reason). Every decision takes Check's path: denials are audited, and
// the decision the handler finds with DecisionFrom has the real reason.
//
// Answers are ProblemFor's: anonymous and denied, or a subject naming an
// unknown user or a dead impersonation: 401; signed in and denied: 403
// (404 with WithNotFoundOnDeny); a malformed or unknown municipality: 400
// or 404; any other error: 500, never an allow. Bodies are RFC 9457
// application/problem+json.
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
			req := Request{Module: module, Action: action}
			if cfg.municipality != nil {
				muni, err := cfg.municipality(r)
				if err != nil {
					problem(w, http.StatusBadRequest, "Bad request", err.Error())
					return
				}
				req.Municipality = muni
			}
			if cfg.resource != nil {
				res, err := cfg.resource(r)
				switch {
				case err == nil && res == nil, errors.Is(err, location.ErrNotFound):
					WriteProblem(w, notFoundProblem)
					return
				case err != nil:
					p, _ := ProblemFor(s, req, Decision{}, err)
					WriteProblem(w, p)
					return
				}
				req.Resource = res
			}
			var (
				d   Decision
				err error
			)
			if cfg.municipality == nil && cfg.resource == nil {
				d, err = c.CheckModule(ctx, s, module, action)
			} else {
				d, err = c.Check(ctx, s, req)
			}
			if p, refused := ProblemFor(s, req, d, err); refused {
				if cfg.hide && p.Status == http.StatusForbidden {
					p = notFoundProblem
				}
				WriteProblem(w, p)
				return
			}
			next.ServeHTTP(w, r.WithContext(context.WithValue(ctx, decisionKey{}, d)))
		})
	})
}

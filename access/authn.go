package access

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/civicstack/townhall/users"
)

// Authenticator is the authentication middleware: it turns a request into
// the subject that Require, Check and the filters see, from
//
//   - an Authorization: Bearer header holding a session token (Login,
//     StartSession, SignInExternal) or a technical user's API key;
//   - else the session cookie (SetSessionCookie);
//   - then, if present, the impersonation header, which must hold a live
//     impersonation token of the signed-in super admin
//     (Admin.ImpersonationHeader).
//
// A request without credentials passes on as anonymous. Credentials that
// are present but malformed, unknown, ended, expired or of an inactive user
// are answered 401, never treated as anonymous. Requests authenticated by
// the cookie are refused (403) on unsafe methods when they come from
// another origin (http.CrossOriginProtection), since a browser attaches the
// cookie to cross-site requests; bearer credentials are not ambient and
// need no such check.
type Authenticator struct {
	users  *users.Store
	admin  *Admin
	cookie string
	imp    string
	cop    *http.CrossOriginProtection
}

// AuthOption configures NewAuthenticator.
type AuthOption func(*Authenticator) error

// DefaultSessionCookie and DefaultImpersonationHeader are the names an
// Authenticator uses unless told otherwise.
const (
	DefaultSessionCookie       = "townhall_session"
	DefaultImpersonationHeader = "X-Impersonation"
)

// WithSessionCookie names the session cookie (default "townhall_session").
func WithSessionCookie(name string) AuthOption {
	return func(a *Authenticator) error {
		if name == "" || strings.ContainsAny(name, " \t\r\n;,=\"") {
			return fmt.Errorf("%w: cookie name %q", ErrInvalidInput, name)
		}
		a.cookie = name
		return nil
	}
}

// WithImpersonationHeader names the header that carries impersonation
// tokens (default "X-Impersonation"); "" turns impersonation off.
func WithImpersonationHeader(name string) AuthOption {
	return func(a *Authenticator) error { a.imp = name; return nil }
}

// WithTrustedOrigins lets cookie-authenticated unsafe requests from these
// origins ("https://admin.example.org") through the cross-origin check.
func WithTrustedOrigins(origins ...string) AuthOption {
	return func(a *Authenticator) error {
		for _, o := range origins {
			if err := a.cop.AddTrustedOrigin(o); err != nil {
				return fmt.Errorf("%w: %w", ErrInvalidInput, err)
			}
		}
		return nil
	}
}

// NewAuthenticator returns an Authenticator on the users store (sessions,
// API keys) and admin (impersonation). ErrInvalidInput for a nil store or
// admin, or a bad option.
func NewAuthenticator(st *users.Store, admin *Admin, opts ...AuthOption) (*Authenticator, error) {
	if st == nil || admin == nil {
		return nil, fmt.Errorf("%w: nil users store or admin", ErrInvalidInput)
	}
	a := &Authenticator{users: st, admin: admin, cookie: DefaultSessionCookie, imp: DefaultImpersonationHeader,
		cop: http.NewCrossOriginProtection()}
	for _, o := range opts {
		if o == nil {
			continue
		}
		if err := o(a); err != nil {
			return nil, err
		}
	}
	return a, nil
}

type sessionKey struct{}

// SessionFrom returns the session the request was authenticated with, if
// it was authenticated with one (not an API key).
func SessionFrom(ctx context.Context) (users.Session, bool) {
	s, ok := ctx.Value(sessionKey{}).(users.Session)
	return s, ok
}

// credential is what a request presented.
type credential struct {
	token  string
	bearer bool // from the Authorization header; else the cookie
}

// credentialOf returns the request's credential; ok false when the
// Authorization header is present but not a bearer token.
func (a *Authenticator) credentialOf(r *http.Request) (c credential, present, ok bool) {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, token, found := strings.Cut(h, " ")
		if !found || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
			return c, true, false
		}
		return credential{token: strings.TrimSpace(token), bearer: true}, true, true
	}
	if ck, err := r.Cookie(a.cookie); err == nil && ck.Value != "" {
		return credential{token: ck.Value}, true, true
	}
	return c, false, true
}

// Middleware authenticates each request and calls next with the subject
// in its context (WithSubject), or answers the request itself with a
// problem (see Authenticator).
func (a *Authenticator) Middleware(next http.Handler) http.Handler {
	inner := next
	if a.imp != "" {
		inner = a.admin.ImpersonationHeader(a.imp)(next)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cred, present, ok := a.credentialOf(r)
		switch {
		case !present:
			inner.ServeHTTP(w, r)
			return
		case !ok:
			a.unauthorized(w, cred, "the Authorization header is not a bearer token")
			return
		case !cred.bearer:
			if err := a.cop.Check(r); err != nil {
				problem(w, http.StatusForbidden, "Forbidden", "cross-origin request refused")
				return
			}
		}
		ctx := r.Context()
		var subject Subject
		if strings.HasPrefix(cred.token, "th_") && cred.bearer {
			u, err := a.users.AuthenticateAPIKey(ctx, cred.token)
			if err != nil {
				a.refuse(w, cred, err)
				return
			}
			subject = Subject{UserID: u.ID}
		} else {
			sess, err := a.users.ResolveSession(ctx, cred.token)
			if err != nil {
				a.refuse(w, cred, err)
				return
			}
			subject = Subject{UserID: sess.UserID}
			ctx = context.WithValue(ctx, sessionKey{}, *sess)
		}
		inner.ServeHTTP(w, r.WithContext(WithSubject(ctx, subject)))
	})
}

// refuse answers a request whose credential did not resolve: 401 for a bad
// credential, 500 when the lookup itself failed.
func (a *Authenticator) refuse(w http.ResponseWriter, cred credential, err error) {
	switch {
	case errors.Is(err, users.ErrSessionExpired):
		a.unauthorized(w, cred, "the session has expired")
	case errors.Is(err, users.ErrInvalidCredentials), errors.Is(err, users.ErrInactive):
		a.unauthorized(w, cred, "invalid credentials")
	default:
		problem(w, http.StatusInternalServerError, "Internal error", "authentication failed")
	}
}

func (a *Authenticator) unauthorized(w http.ResponseWriter, cred credential, detail string) {
	if cred.bearer || cred.token == "" {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
	} else {
		a.ClearSessionCookie(w) // a dead cookie would fail every request
	}
	problem(w, http.StatusUnauthorized, "Unauthorized", detail)
}

// SetSessionCookie puts the session of in into the response as the
// session cookie: Secure, HttpOnly, SameSite=Lax, Path=/. It is a
// browser-session cookie (no Expires): the server enforces the session's
// idle timeout and lifetime, on its own clock.
func (a *Authenticator) SetSessionCookie(w http.ResponseWriter, in *users.SignIn) {
	http.SetCookie(w, &http.Cookie{
		Name: a.cookie, Value: in.Token, Path: "/",
		Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode,
	})
}

// ClearSessionCookie tells the browser to drop the session cookie.
func (a *Authenticator) ClearSessionCookie(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{
		Name: a.cookie, Value: "", Path: "/", MaxAge: -1,
		Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode,
	})
}

// SignOut ends the session the request was authenticated with
// (users.Store.EndSession, audited as logout) and clears the cookie. It
// returns users.ErrInvalidCredentials when the request carries no session.
func (a *Authenticator) SignOut(w http.ResponseWriter, r *http.Request) error {
	cred, present, ok := a.credentialOf(r)
	if !present || !ok || strings.HasPrefix(cred.token, "th_") && cred.bearer {
		return fmt.Errorf("sign out: %w", users.ErrInvalidCredentials)
	}
	if !cred.bearer {
		a.ClearSessionCookie(w)
	}
	return a.users.EndSession(r.Context(), cred.token)
}

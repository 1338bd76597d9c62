// Command sso signs users in through an external OAuth 2.0 / OpenID
// Connect provider with golang.org/x/oauth2 (authorization code flow with
// PKCE and a state check) and maps the provider's identity to a townhall
// user and session: users.Store.SignInExternal finds the user linked to the
// (provider, subject) pair, or provisions one on first sign-in.
//
// The identity is taken from the provider's userinfo endpoint, called with
// the access token over TLS, so it is the provider's own answer. A host
// that reads the ID token instead must verify its signature, issuer,
// audience and expiry (an OIDC library such as coreos/go-oidc does) before
// trusting its "sub".
//
//	go run ./examples/sso -auth https://idp.example/authorize -token https://idp.example/token \
//	    -userinfo https://idp.example/userinfo -client-id townhall -client-secret ... \
//	    -redirect https://townhall.example/callback
//
// The test starts a fake provider with httptest and drives the whole flow.
package main

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/oauth2"

	"github.com/civicstack/townhall"
	"github.com/civicstack/townhall/access"
	"github.com/civicstack/townhall/users"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "listen address")
	authURL := flag.String("auth", "", "the provider's authorization endpoint")
	tokenURL := flag.String("token", "", "the provider's token endpoint")
	userinfo := flag.String("userinfo", "", "the provider's userinfo endpoint")
	clientID := flag.String("client-id", "", "OAuth client ID")
	clientSecret := flag.String("client-secret", os.Getenv("SSO_CLIENT_SECRET"), "OAuth client secret (or $SSO_CLIENT_SECRET)")
	redirect := flag.String("redirect", "http://127.0.0.1:8080/callback", "this service's callback URL")
	flag.Parse()

	dir, err := os.MkdirTemp("", "townhall-sso-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	db, err := townhall.OpenSQLite(filepath.Join(dir, "townhall.db"))
	if err != nil {
		log.Fatal(err)
	}
	p, err := townhall.Open(context.Background(), db)
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close()
	h, err := newApp(p, Provider{
		Name: "idp", UserinfoURL: *userinfo,
		OAuth: oauth2.Config{
			ClientID: *clientID, ClientSecret: *clientSecret, RedirectURL: *redirect,
			Endpoint: oauth2.Endpoint{AuthURL: *authURL, TokenURL: *tokenURL},
			Scopes:   []string{"openid", "profile", "email"},
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("listening on %s", *addr)
	log.Fatal(http.ListenAndServe(*addr, h))
}

// Provider is an external identity provider.
type Provider struct {
	Name        string // townhall's provider ID in the identity links
	OAuth       oauth2.Config
	UserinfoURL string
	// Client makes the calls to the provider (default http.DefaultClient).
	Client *http.Client
}

type app struct {
	p    *townhall.Platform
	auth *access.Authenticator
	idp  Provider
}

// flowCookie carries the state and the PKCE verifier of a sign-in in
// progress from /login to /callback.
const flowCookie = "sso_flow"

// newApp returns the service: /login starts a sign-in at the provider,
// /callback completes it into a townhall session, /me shows the subject,
// /logout ends the session.
func newApp(p *townhall.Platform, idp Provider) (http.Handler, error) {
	auth, err := p.Authenticator()
	if err != nil {
		return nil, err
	}
	if idp.Client == nil {
		idp.Client = http.DefaultClient
	}
	a := &app{p: p, auth: auth, idp: idp}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /login", a.login)
	mux.HandleFunc("GET /callback", a.callback)
	mux.HandleFunc("GET /me", a.me)
	mux.HandleFunc("POST /logout", a.logout)
	return auth.Middleware(mux), nil
}

func (a *app) login(w http.ResponseWriter, r *http.Request) {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	state := base64.RawURLEncoding.EncodeToString(b)
	verifier := oauth2.GenerateVerifier()
	http.SetCookie(w, &http.Cookie{
		Name: flowCookie, Value: state + "." + verifier, Path: "/callback", MaxAge: 600,
		Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode,
	})
	http.Redirect(w, r, a.idp.OAuth.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier)), http.StatusFound)
}

// claims is what the example reads from the userinfo endpoint.
type claims struct {
	Sub               string `json:"sub"`
	PreferredUsername string `json:"preferred_username"`
	Email             string `json:"email"`
	EmailVerified     bool   `json:"email_verified"`
}

func (a *app) callback(w http.ResponseWriter, r *http.Request) {
	ck, err := r.Cookie(flowCookie)
	http.SetCookie(w, &http.Cookie{Name: flowCookie, Path: "/callback", MaxAge: -1, Secure: true, HttpOnly: true})
	if err != nil {
		bad(w, http.StatusBadRequest, "no sign-in in progress")
		return
	}
	state, verifier, _ := strings.Cut(ck.Value, ".")
	if got := r.FormValue("state"); state == "" || subtle.ConstantTimeCompare([]byte(got), []byte(state)) != 1 {
		bad(w, http.StatusBadRequest, "state mismatch")
		return
	}
	if e := r.FormValue("error"); e != "" {
		bad(w, http.StatusUnauthorized, "the provider refused: "+e)
		return
	}
	ctx := context.WithValue(r.Context(), oauth2.HTTPClient, a.idp.Client)
	tok, err := a.idp.OAuth.Exchange(ctx, r.FormValue("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		bad(w, http.StatusBadGateway, "the code exchange failed")
		return
	}
	c, err := a.userinfo(ctx, tok)
	if err != nil {
		bad(w, http.StatusBadGateway, "the userinfo request failed")
		return
	}
	nu := &users.NewUser{Username: c.PreferredUsername}
	if c.EmailVerified {
		nu.Email = c.Email
	}
	in, err := a.p.Users.SignInExternal(r.Context(), users.ExternalSignIn{Provider: a.idp.Name, Subject: c.Sub, Provision: nu})
	switch {
	case errors.Is(err, users.ErrInactive), errors.Is(err, users.ErrTechnicalUser), errors.Is(err, users.ErrUnverified):
		bad(w, http.StatusForbidden, "this account cannot sign in")
		return
	case errors.Is(err, users.ErrDuplicate), errors.Is(err, users.ErrInvalidInput):
		bad(w, http.StatusConflict, "no account could be made for this identity")
		return
	case err != nil:
		bad(w, http.StatusInternalServerError, "sign-in failed")
		return
	}
	a.auth.SetSessionCookie(w, in)
	http.Redirect(w, r, "/me", http.StatusFound)
}

func (a *app) userinfo(ctx context.Context, tok *oauth2.Token) (claims, error) {
	var c claims
	req, err := http.NewRequestWithContext(ctx, "GET", a.idp.UserinfoURL, nil)
	if err != nil {
		return c, err
	}
	res, err := a.idp.OAuth.Client(ctx, tok).Do(req)
	if err != nil {
		return c, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return c, fmt.Errorf("userinfo: %s", res.Status)
	}
	if err := json.NewDecoder(res.Body).Decode(&c); err != nil {
		return c, err
	}
	if c.Sub == "" {
		return c, errors.New("userinfo: no subject")
	}
	return c, nil
}

func (a *app) me(w http.ResponseWriter, r *http.Request) {
	s, _ := access.SubjectFrom(r.Context())
	if s.UserID == "" {
		bad(w, http.StatusUnauthorized, "not signed in")
		return
	}
	u, err := a.p.Users.Get(r.Context(), s.UserID)
	if err != nil {
		bad(w, http.StatusInternalServerError, "lookup failed")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]string{"id": u.ID, "username": u.Username, "email": u.Email})
}

func (a *app) logout(w http.ResponseWriter, r *http.Request) {
	if err := a.auth.SignOut(w, r); err != nil {
		bad(w, http.StatusUnauthorized, "not signed in")
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func bad(w http.ResponseWriter, status int, detail string) {
	access.WriteProblem(w, access.Problem{Status: status, Detail: detail})
}

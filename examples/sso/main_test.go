package main

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/civicstack/townhall"
	"github.com/civicstack/townhall/access"
	"github.com/civicstack/townhall/audit"
	"github.com/civicstack/townhall/users"
)

// fakeIDP is a minimal OAuth 2.0 provider with a userinfo endpoint: it
// "signs in" whichever account the test names, issues single-use codes
// bound to the PKCE challenge and redirect URI, and access tokens for
// userinfo.
type fakeIDP struct {
	mu       sync.Mutex
	account  claims // who signs in at /authorize
	codes    map[string]grantReq
	tokens   map[string]claims
	secret   string
	exchange int
}

type grantReq struct {
	challenge, redirect string
	who                 claims
}

func newFakeIDP(secret string) *fakeIDP {
	return &fakeIDP{codes: map[string]grantReq{}, tokens: map[string]claims{}, secret: secret}
}

func (f *fakeIDP) signInAs(c claims) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.account = c
}

func (f *fakeIDP) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /authorize", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if q.Get("response_type") != "code" || q.Get("code_challenge_method") != "S256" || q.Get("client_id") != "townhall" {
			http.Error(w, "bad authorization request", http.StatusBadRequest)
			return
		}
		f.mu.Lock()
		code := oauth2.GenerateVerifier()
		f.codes[code] = grantReq{challenge: q.Get("code_challenge"), redirect: q.Get("redirect_uri"), who: f.account}
		f.mu.Unlock()
		back, _ := url.Parse(q.Get("redirect_uri"))
		back.RawQuery = url.Values{"code": {code}, "state": {q.Get("state")}}.Encode()
		http.Redirect(w, r, back.String(), http.StatusFound)
	})
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.exchange++
		g, ok := f.codes[r.FormValue("code")]
		delete(f.codes, r.FormValue("code")) // single use
		sum := sha256.Sum256([]byte(r.FormValue("code_verifier")))
		switch {
		case !ok, r.FormValue("grant_type") != "authorization_code",
			r.FormValue("client_id") != "townhall", r.FormValue("client_secret") != f.secret,
			r.FormValue("redirect_uri") != g.redirect,
			base64.RawURLEncoding.EncodeToString(sum[:]) != g.challenge:
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, `{"error":"invalid_grant"}`)
			return
		}
		at := oauth2.GenerateVerifier()
		f.tokens[at] = g.who
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": at, "token_type": "Bearer", "expires_in": 300})
	})
	mux.HandleFunc("GET /userinfo", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		who, ok := f.tokens[strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")]
		f.mu.Unlock()
		if !ok {
			http.Error(w, "invalid token", http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(who)
	})
	return mux
}

type world struct {
	p   *townhall.Platform
	idp *fakeIDP
	app *httptest.Server
}

func newWorld(t *testing.T) *world {
	t.Helper()
	ctx := context.Background()
	db, err := townhall.OpenSQLite(filepath.Join(t.TempDir(), "townhall.db"))
	require.NoError(t, err)
	p, err := townhall.Open(ctx, db, townhall.WithKDF(users.KDFParams{Time: 1, MemoryKiB: 64, Threads: 1}))
	require.NoError(t, err)
	t.Cleanup(func() { p.Close() })

	idp := newFakeIDP("s3cret")
	provider := httptest.NewTLSServer(idp.handler())
	t.Cleanup(provider.Close)
	w := &world{p: p, idp: idp}
	// The app's URL is needed for the redirect URI before the handler
	// exists: start the server unstarted.
	app := httptest.NewUnstartedServer(nil)
	app.StartTLS()
	t.Cleanup(app.Close)
	h, err := newApp(p, Provider{
		Name: "fakeidp", UserinfoURL: provider.URL + "/userinfo", Client: provider.Client(),
		OAuth: oauth2.Config{
			ClientID: "townhall", ClientSecret: "s3cret", RedirectURL: app.URL + "/callback",
			Endpoint: oauth2.Endpoint{AuthURL: provider.URL + "/authorize", TokenURL: provider.URL + "/token",
				AuthStyle: oauth2.AuthStyleInParams},
			Scopes: []string{"openid", "profile", "email"},
		},
	})
	require.NoError(t, err)
	app.Config.Handler = h
	w.app = app
	return w
}

// browser returns a client that trusts both test servers and keeps
// cookies.
func (w *world) browser(t *testing.T) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	c := *w.app.Client()
	tr := c.Transport.(*http.Transport).Clone()
	tr.TLSClientConfig.InsecureSkipVerify = true // both servers use httptest's own certificate
	c.Transport, c.Jar = tr, jar
	return &c
}

// signIn runs the whole flow from /login and returns the final status and
// body.
func (w *world) signIn(t *testing.T, c *http.Client) (int, string) {
	t.Helper()
	res, err := c.Get(w.app.URL + "/login")
	require.NoError(t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return res.StatusCode, string(b)
}

func TestSSO_ProvisionsOnFirstSignInAndFindsTheUserAfter(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	w.idp.signInAs(claims{Sub: "idp-0001", PreferredUsername: "amy", Email: "amy@example.org", EmailVerified: true})

	c := w.browser(t)
	status, body := w.signIn(t, c)
	require.Equal(t, http.StatusOK, status, body)
	var me map[string]string
	require.NoError(t, json.Unmarshal([]byte(body), &me))
	assert.Equal(t, "amy", me["username"])
	assert.Equal(t, "amy@example.org", me["email"])

	u, err := w.p.Users.FindByIdentity(ctx, "fakeidp", "idp-0001")
	require.NoError(t, err)
	assert.Equal(t, me["id"], u.ID, "the identity is linked to the provisioned user")
	logins, err := w.p.Audit.Query(ctx, audit.Query{UserID: u.ID, Type: audit.TypeLogin})
	require.NoError(t, err)
	require.Len(t, logins, 1)
	assert.Equal(t, "fakeidp", logins[0].Details["method"])
	assert.NotEmpty(t, logins[0].Details["session_id"])

	// Signing in again, even under a new username at the provider, finds
	// the same user.
	w.idp.signInAs(claims{Sub: "idp-0001", PreferredUsername: "amy.renamed"})
	status, body = w.signIn(t, w.browser(t))
	require.Equal(t, http.StatusOK, status, body)
	assert.Contains(t, body, `"id":"`+u.ID+`"`)
	_, err = w.p.Users.GetByUsername(ctx, "amy.renamed")
	assert.ErrorIs(t, err, users.ErrNotFound, "no second user")

	// Signing out ends the session.
	req, err := http.NewRequest("POST", w.app.URL+"/logout", nil)
	require.NoError(t, err)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	res, err := c.Do(req)
	require.NoError(t, err)
	res.Body.Close()
	assert.Equal(t, http.StatusNoContent, res.StatusCode)
	res, err = c.Get(w.app.URL + "/me")
	require.NoError(t, err)
	res.Body.Close()
	assert.Equal(t, http.StatusUnauthorized, res.StatusCode)
}

func TestSSO_SignsInALinkedExistingUser(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	_, err := w.p.Users.Create(ctx, users.NewUser{ID: "olga", Username: "olga"})
	require.NoError(t, err)
	require.NoError(t, w.p.Users.LinkIdentity(ctx, "olga", "fakeidp", "idp-0042"))
	w.idp.signInAs(claims{Sub: "idp-0042", PreferredUsername: "o.berg"})

	status, body := w.signIn(t, w.browser(t))
	require.Equal(t, http.StatusOK, status, body)
	assert.Contains(t, body, `"id":"olga"`)

	require.NoError(t, w.p.Admin.SetUserActive(ctx, access.System(), "olga", false))
	status, body = w.signIn(t, w.browser(t))
	assert.Equal(t, http.StatusForbidden, status, "a deactivated user: %s", body)
}

func (f *fakeIDP) exchanges() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.exchange
}

// step sends one request of the flow without following redirects and
// returns the response's status and Location.
func step(t *testing.T, c *http.Client, u string) (int, string) {
	t.Helper()
	res, err := c.Get(u)
	require.NoError(t, err)
	res.Body.Close()
	return res.StatusCode, res.Header.Get("Location")
}

func TestSSO_RefusesForgedCallbacks(t *testing.T) {
	w := newWorld(t)
	w.idp.signInAs(claims{Sub: "idp-0007", PreferredUsername: "eve"})
	newClient := func() *http.Client {
		c := w.browser(t)
		c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		return c
	}

	status, _ := step(t, newClient(), w.app.URL+"/callback?code=x&state=y")
	assert.Equal(t, http.StatusBadRequest, status, "no sign-in in progress")

	// A callback whose state is not the browser's (login CSRF): the code
	// is never exchanged.
	c := newClient()
	status, _ = step(t, c, w.app.URL+"/login")
	require.Equal(t, http.StatusFound, status)
	before := w.idp.exchanges()
	status, _ = step(t, c, w.app.URL+"/callback?code=attacker&state=attacker")
	assert.Equal(t, http.StatusBadRequest, status)
	assert.Equal(t, before, w.idp.exchanges(), "no exchange was attempted")

	// A replayed code: the provider refuses it, and so does the app.
	c = newClient()
	_, authorize := step(t, c, w.app.URL+"/login")
	_, callback := step(t, c, authorize)
	status, _ = step(t, c, callback)
	require.Equal(t, http.StatusFound, status, "the first use signs in")
	_, authorize = step(t, c, w.app.URL+"/login") // a fresh flow, then the spent code
	fresh, err := url.Parse(authorize)
	require.NoError(t, err)
	old, err := url.Parse(callback)
	require.NoError(t, err)
	q := old.Query()
	q.Set("state", fresh.Query().Get("state"))
	status, _ = step(t, c, w.app.URL+"/callback?"+q.Encode())
	assert.Equal(t, http.StatusBadGateway, status, "a spent code")
}

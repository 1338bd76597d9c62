package access_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/civicstack/townhall"
	"github.com/civicstack/townhall/access"
)

// authWorld is the impersonation world behind a TLS test server that signs
// users in with the Authenticator.
type authWorld struct {
	*impWorld
	auth *access.Authenticator
	srv  *httptest.Server
}

const authPassword = "correct horse battery"

func newAuthWorld(t *testing.T) *authWorld {
	t.Helper()
	w := &authWorld{impWorld: newImpWorld(t, townhall.WithSessionTimeouts(30*time.Minute, 4*time.Hour))}
	ctx := context.Background()
	for _, id := range []string{"super", "admin1", "op", "off"} {
		require.NoError(t, w.p.Users.SetPassword(ctx, id, authPassword))
	}
	var err error
	w.auth, err = w.p.Authenticator()
	require.NoError(t, err)

	report := http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		s, _ := access.SubjectFrom(r.Context())
		d, _ := access.DecisionFrom(r.Context())
		fmt.Fprintf(rw, "%s|%s|%s", s.UserID, s.ImpersonatorID, d.Reason)
	})
	mux := http.NewServeMux()
	mux.HandleFunc("POST /login", func(rw http.ResponseWriter, r *http.Request) {
		in, err := w.p.Users.Login(r.Context(), r.FormValue("username"), r.FormValue("password"))
		if err != nil {
			access.WriteProblem(rw, access.Problem{Status: http.StatusUnauthorized, Detail: "sign-in failed"})
			return
		}
		w.auth.SetSessionCookie(rw, in)
		_ = json.NewEncoder(rw).Encode(map[string]string{"token": in.Token})
	})
	mux.HandleFunc("POST /logout", func(rw http.ResponseWriter, r *http.Request) {
		if err := w.auth.SignOut(rw, r); err != nil {
			access.WriteProblem(rw, access.Problem{Status: http.StatusUnauthorized, Detail: "not signed in"})
			return
		}
		rw.WriteHeader(http.StatusNoContent)
	})
	mux.Handle("GET /whoami", report)
	mux.Handle("POST /whoami", report)
	mux.Handle("POST /m/{m}/equipment", w.p.Checker.Require("equipment", "update", access.WithMunicipalityPathValue("m"))(report))
	w.srv = httptest.NewTLSServer(w.auth.Middleware(mux))
	t.Cleanup(w.srv.Close)
	return w
}

// client returns a client of the test server with its own cookie jar.
func (w *authWorld) client(t *testing.T) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	c := *w.srv.Client() // a copy: Client returns one shared client
	c.Jar = jar
	return &c
}

// login signs username in through the form and returns the token.
func (w *authWorld) login(t *testing.T, c *http.Client, username string) string {
	t.Helper()
	res, err := c.PostForm(w.srv.URL+"/login", url.Values{"username": {username}, "password": {authPassword}})
	require.NoError(t, err)
	defer res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode)
	var body struct{ Token string }
	require.NoError(t, json.NewDecoder(res.Body).Decode(&body))
	return body.Token
}

// do sends a request with optional headers and returns status and body.
func (w *authWorld) do(t *testing.T, c *http.Client, method, path string, headers ...string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, w.srv.URL+path, nil)
	require.NoError(t, err)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := c.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return res.StatusCode, string(b), res.Header
}

func TestAuthenticator_SignInSetsAHardenedCookie(t *testing.T) {
	w := newAuthWorld(t)
	res, err := w.srv.Client().PostForm(w.srv.URL+"/login", url.Values{"username": {"admin1"}, "password": {authPassword}})
	require.NoError(t, err)
	res.Body.Close()
	cookies := res.Cookies()
	require.Len(t, cookies, 1)
	ck := cookies[0]
	assert.Equal(t, access.DefaultSessionCookie, ck.Name)
	assert.True(t, ck.Secure)
	assert.True(t, ck.HttpOnly)
	assert.Equal(t, http.SameSiteLaxMode, ck.SameSite)
	assert.True(t, strings.HasPrefix(ck.Value, "ths_"))

	c := w.client(t)
	w.login(t, c, "admin1")
	status, body, _ := w.do(t, c, "GET", "/whoami")
	assert.Equal(t, http.StatusOK, status)
	assert.Equal(t, "admin1||", body, "the cookie signs the request in")
	status, body, _ = w.do(t, c, "POST", "/m/M1/equipment", "Sec-Fetch-Site", "same-origin")
	assert.Equal(t, http.StatusOK, status)
	assert.Equal(t, "admin1||role", body)

	status, _, _ = w.do(t, w.client(t), "GET", "/whoami")
	assert.Equal(t, http.StatusOK, status, "no credentials: anonymous")
}

func TestAuthenticator_RefusesCrossSiteCookieRequests(t *testing.T) {
	w := newAuthWorld(t)
	c := w.client(t)
	token := w.login(t, c, "admin1")
	cases := []struct {
		name    string
		method  string
		headers []string
		status  int
	}{
		{"cross-site POST with the cookie", "POST", []string{"Sec-Fetch-Site", "cross-site"}, http.StatusForbidden},
		{"a foreign Origin with the cookie", "POST", []string{"Origin", "https://evil.example"}, http.StatusForbidden},
		{"cross-site GET is safe", "GET", []string{"Sec-Fetch-Site", "cross-site"}, http.StatusOK},
		{"same-origin POST", "POST", []string{"Sec-Fetch-Site", "same-origin"}, http.StatusOK},
		{"cross-site POST with a bearer token carries no ambient credential", "POST",
			[]string{"Sec-Fetch-Site", "cross-site", "Authorization", "Bearer " + token}, http.StatusOK},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, body, _ := w.do(t, c, tc.method, "/whoami", tc.headers...)
			assert.Equal(t, tc.status, status, body)
		})
	}
}

func TestAuthenticator_BearerSessionsAndAPIKeys(t *testing.T) {
	w := newAuthWorld(t)
	ctx := context.Background()
	token := w.login(t, w.srv.Client(), "admin1")
	key, err := w.p.Users.CreateAPIKey(ctx, "tech", "ci")
	require.NoError(t, err)
	revoked, err := w.p.Users.CreateAPIKey(ctx, "tech", "old")
	require.NoError(t, err)
	require.NoError(t, w.p.Users.RevokeAPIKey(ctx, strings.Split(revoked, "_")[1])) // th_<key id>_<secret>

	c := w.srv.Client()
	cases := []struct {
		name, authorization string
		status              int
		body                string
	}{
		{"a session token", "Bearer " + token, http.StatusOK, "admin1||"},
		{"the scheme is case-insensitive", "bearer " + token, http.StatusOK, "admin1||"},
		{"an API key", "Bearer " + key, http.StatusOK, "tech||"},
		{"a revoked API key", "Bearer " + revoked, http.StatusUnauthorized, ""},
		{"a forged session token", "Bearer ths_" + strings.Repeat("A", 43), http.StatusUnauthorized, ""},
		{"garbage", "Bearer hello", http.StatusUnauthorized, ""},
		{"another scheme", "Basic YWRtaW4xOnB3", http.StatusUnauthorized, ""},
		{"an empty bearer", "Bearer ", http.StatusUnauthorized, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, body, h := w.do(t, c, "GET", "/whoami", "Authorization", tc.authorization)
			assert.Equal(t, tc.status, status, body)
			if tc.status == http.StatusOK {
				assert.Equal(t, tc.body, body)
				return
			}
			assert.Contains(t, h.Get("WWW-Authenticate"), "Bearer")
			assert.Equal(t, "application/problem+json", h.Get("Content-Type"))
		})
	}
}

func TestAuthenticator_ExpiredAndEndedSessionsAre401NotAnonymous(t *testing.T) {
	w := newAuthWorld(t)
	ctx := context.Background()
	cases := []struct {
		name   string
		end    func(t *testing.T, c *http.Client, token string)
		detail string
	}{
		{"idle for the idle timeout", func(t *testing.T, _ *http.Client, _ string) { w.clock.Advance(30 * time.Minute) }, "expired"},
		{"past the absolute lifetime", func(t *testing.T, c *http.Client, _ string) {
			for range 9 { // busy all along: 9 × 29 min > 4 h
				w.clock.Advance(29 * time.Minute)
				w.do(t, c, "GET", "/whoami")
			}
		}, "expired"},
		{"signed out", func(t *testing.T, c *http.Client, _ string) {
			status, _, _ := w.do(t, c, "POST", "/logout", "Sec-Fetch-Site", "same-origin")
			require.Equal(t, http.StatusNoContent, status)
		}, ""},
		{"the user was deactivated", func(t *testing.T, _ *http.Client, _ string) {
			require.NoError(t, w.p.Admin.SetUserActive(ctx, access.System(), "op", false))
			t.Cleanup(func() { _ = w.p.Admin.SetUserActive(ctx, access.System(), "op", true) })
		}, ""},
		{"the password was reset elsewhere", func(t *testing.T, _ *http.Client, _ string) {
			require.NoError(t, w.p.Users.SetPassword(ctx, "op", authPassword))
		}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := w.client(t)
			token := w.login(t, c, "op")
			status, body, _ := w.do(t, c, "GET", "/whoami")
			require.Equal(t, http.StatusOK, status)
			require.Equal(t, "op||", body)

			tc.end(t, c, token)
			status, body, _ = w.do(t, w.srv.Client(), "GET", "/whoami", "Authorization", "Bearer "+token)
			assert.Equal(t, http.StatusUnauthorized, status, "bearer: %s", body)
			assert.Contains(t, body, tc.detail)
			ck := &http.Cookie{Name: access.DefaultSessionCookie, Value: token}
			req, err := http.NewRequest("GET", w.srv.URL+"/whoami", nil)
			require.NoError(t, err)
			req.AddCookie(ck)
			res, err := w.srv.Client().Do(req)
			require.NoError(t, err)
			res.Body.Close()
			assert.Equal(t, http.StatusUnauthorized, res.StatusCode, "cookie")
			cleared := res.Cookies()
			require.Len(t, cleared, 1, "a dead cookie is cleared")
			assert.Negative(t, cleared[0].MaxAge)
		})
	}
}

func TestAuthenticator_Impersonation(t *testing.T) {
	w := newAuthWorld(t)
	c := w.srv.Client()
	superToken := w.login(t, c, "super")
	adminToken := w.login(t, c, "admin1")
	imp := w.impersonate(t, "super", "op")

	cases := []struct {
		name    string
		headers []string
		path    string
		status  int
		body    string
		method  string
	}{
		{"the admin's session and token act as the target", []string{"Authorization", "Bearer " + superToken, "X-Impersonation", imp}, "/whoami", 200, "op|super|", "GET"},
		{"with the target's limits", []string{"Authorization", "Bearer " + superToken, "X-Impersonation", imp}, "/m/M2/equipment", 403, "", "POST"},
		{"and the target's rights", []string{"Authorization", "Bearer " + superToken, "X-Impersonation", imp}, "/m/M1/equipment", 200, "op|super|role", "POST"},
		{"another user's session with the token", []string{"Authorization", "Bearer " + adminToken, "X-Impersonation", imp}, "/whoami", 401, "", "GET"},
		{"the token without a session", []string{"X-Impersonation", imp}, "/whoami", 401, "", "GET"},
		{"the token as a bearer credential", []string{"Authorization", "Bearer " + imp}, "/whoami", 401, "", "GET"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, body, _ := w.do(t, c, tc.method, tc.path, tc.headers...)
			assert.Equal(t, tc.status, status, body)
			if tc.body != "" {
				assert.Equal(t, tc.body, body)
			}
		})
	}
}

func TestNewAuthenticator_BadInput(t *testing.T) {
	w := newImpWorld(t)
	_, err := access.NewAuthenticator(nil, w.p.Admin)
	assert.ErrorIs(t, err, access.ErrInvalidInput)
	_, err = w.p.Authenticator(access.WithSessionCookie("bad name"))
	assert.ErrorIs(t, err, access.ErrInvalidInput)
	_, err = w.p.Authenticator(access.WithTrustedOrigins("not a url"))
	assert.ErrorIs(t, err, access.ErrInvalidInput)
}

func TestSessions_StayEndedAfterReactivation(t *testing.T) {
	w := newAuthWorld(t)
	ctx := context.Background()
	sys := access.System()
	require.NoError(t, w.p.Users.SetPassword(ctx, "portal", authPassword))
	cases := []struct {
		name, user string
		end        func(t *testing.T)
	}{
		{"deactivated by Admin", "op", func(t *testing.T) {
			require.NoError(t, w.p.Admin.SetUserActive(ctx, sys, "op", false))
		}},
		{"stranded by an organisation's deletion", "portal", func(t *testing.T) {
			require.NoError(t, w.p.Admin.DeleteOrganisation(ctx, sys, "H1"))
			u, err := w.p.Users.Get(ctx, "portal")
			require.NoError(t, err)
			require.False(t, u.IsActive, "the cascade deactivated the user")
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			token := w.login(t, w.srv.Client(), tc.user)
			tc.end(t)
			require.NoError(t, w.p.Admin.SetUserActive(ctx, sys, tc.user, true))
			status, body, _ := w.do(t, w.srv.Client(), "GET", "/whoami", "Authorization", "Bearer "+token)
			assert.Equal(t, http.StatusUnauthorized, status, "the old session does not come back: %s", body)
			fresh := w.login(t, w.srv.Client(), tc.user)
			status, body, _ = w.do(t, w.srv.Client(), "GET", "/whoami", "Authorization", "Bearer "+fresh)
			assert.Equal(t, http.StatusOK, status, "a new sign-in works: %s", body)
		})
	}
}

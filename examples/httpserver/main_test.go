package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/civicstack/townhall"
	"github.com/civicstack/townhall/audit"
	"github.com/civicstack/townhall/internal/testkit"
)

type fixture struct {
	t   *testing.T
	p   *townhall.Platform
	srv *httptest.Server
}

func newFixture(t *testing.T, opts ...townhall.Option) *fixture {
	t.Helper()
	opts = append([]townhall.Option{townhall.WithKDF(testkit.FastKDF)}, opts...)
	p, err := setup(context.Background(), filepath.Join(t.TempDir(), "townhall.db"), opts...)
	require.NoError(t, err)
	t.Cleanup(func() { p.Close() })
	h, err := newServer(p)
	require.NoError(t, err)
	srv := httptest.NewTLSServer(h)
	t.Cleanup(srv.Close)
	return &fixture{t: t, p: p, srv: srv}
}

// browser returns a client with a cookie jar, signed in as user unless
// user is empty.
func (f *fixture) browser(user string) *http.Client {
	f.t.Helper()
	jar, err := cookiejar.New(nil)
	require.NoError(f.t, err)
	c := *f.srv.Client() // a copy: Client returns one shared client
	c.Jar = jar
	if user != "" {
		status, body := f.post(&c, "/login", url.Values{"username": {user}, "password": {password(user)}})
		require.Equal(f.t, http.StatusOK, status, body)
	}
	return &c
}

func (f *fixture) post(c *http.Client, path string, form url.Values) (int, string) {
	f.t.Helper()
	req, err := http.NewRequest("POST", f.srv.URL+path, nil)
	require.NoError(f.t, err)
	if form != nil {
		req, err = http.NewRequest("POST", f.srv.URL+path, strings.NewReader(form.Encode()))
		require.NoError(f.t, err)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	req.Header.Set("Sec-Fetch-Site", "same-origin") // what a browser sends for its own forms
	return f.send(c, req)
}

func (f *fixture) do(c *http.Client, method, path string, header ...string) (int, string) {
	f.t.Helper()
	req, err := http.NewRequest(method, f.srv.URL+path, nil)
	require.NoError(f.t, err)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return f.send(c, req)
}

func (f *fixture) send(c *http.Client, req *http.Request) (int, string) {
	f.t.Helper()
	res, err := c.Do(req)
	require.NoError(f.t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(f.t, err)
	if res.StatusCode >= 400 {
		assert.Equal(f.t, "application/problem+json", res.Header.Get("Content-Type"), string(b))
		var problem map[string]any
		require.NoError(f.t, json.Unmarshal(b, &problem))
		assert.EqualValues(f.t, res.StatusCode, problem["status"])
		for _, k := range []string{"type", "title", "detail"} {
			assert.NotEmpty(f.t, problem[k], k)
		}
	}
	return res.StatusCode, string(b)
}

func titles(t *testing.T, body string) []string {
	t.Helper()
	var list []Occurrence
	require.NoError(t, json.Unmarshal([]byte(body), &list), body)
	out := []string{}
	for _, o := range list {
		out = append(out, o.Title)
	}
	return out
}

func TestService_SignInWorkSignOut(t *testing.T) {
	f := newFixture(t)
	olga := f.browser("olga")

	status, body := f.do(olga, "GET", "/worklist")
	require.Equal(t, http.StatusOK, status, body)
	assert.Equal(t, []string{"pothole on Main St", "washed-out lane"}, titles(t, body),
		"her municipality's road reports: the filter agrees with her grant and categories")

	status, body = f.do(f.browser("alice"), "GET", "/worklist")
	require.Equal(t, http.StatusOK, status, body)
	assert.Equal(t, []string{"pothole on Main St", "streetlight out", "washed-out lane"}, titles(t, body))

	status, _ = f.do(f.browser(""), "GET", "/worklist")
	assert.Equal(t, http.StatusUnauthorized, status, "anonymous")
	status, _ = f.do(f.browser("vera"), "GET", "/worklist")
	assert.Equal(t, http.StatusForbidden, status, "a viewer updates nothing")

	status, _ = f.post(olga, "/logout", nil)
	assert.Equal(t, http.StatusNoContent, status)
	status, _ = f.do(olga, "GET", "/worklist")
	assert.Equal(t, http.StatusUnauthorized, status, "signed out: the cookie is gone")
}

func TestService_RecordRoutes(t *testing.T) {
	f := newFixture(t)
	olga, alice, anon := f.browser("olga"), f.browser("alice"), f.browser("")
	cases := []struct {
		name         string
		c            *http.Client
		method, path string
		status       int
	}{
		{"anyone views a public record", anon, "GET", "/occurrences/1", 200},
		{"no such record", anon, "GET", "/occurrences/99", 404},
		{"an operator may not close", olga, "POST", "/occurrences/1/close", 403},
		{"anonymous may not close", anon, "POST", "/occurrences/1/close", 401},
		{"the admin closes in her municipality", alice, "POST", "/occurrences/1/close", 200},
		{"but not in another", alice, "POST", "/occurrences/4/close", 403},
		{"a hidden denial", olga, "DELETE", "/occurrences/2", 404},
		{"the admin deletes", alice, "DELETE", "/occurrences/2", 204},
		{"deleted", alice, "GET", "/occurrences/2", 404},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var status int
			var body string
			if tc.method == "GET" {
				status, body = f.do(tc.c, tc.method, tc.path)
			} else {
				status, body = f.do(tc.c, tc.method, tc.path, "Sec-Fetch-Site", "same-origin")
			}
			assert.Equal(t, tc.status, status, body)
		})
	}
	status, _ := f.do(alice, "POST", "/occurrences/3/close", "Sec-Fetch-Site", "cross-site")
	assert.Equal(t, http.StatusForbidden, status, "a cross-site form post with the cookie is refused")
}

func TestService_BearerTokensAndAPIKeys(t *testing.T) {
	clock := testkit.NewClock()
	f := newFixture(t, townhall.WithClock(clock.Now), townhall.WithSessionTimeouts(15*time.Minute, time.Hour))
	c := f.srv.Client()

	status, body := f.post(c, "/login", url.Values{"username": {"olga"}, "password": {"wrong password"}})
	require.Equal(t, http.StatusUnauthorized, status, body)
	status, body = f.post(c, "/login", url.Values{"username": {"olga"}, "password": {password("olga")}})
	require.Equal(t, http.StatusOK, status, body)
	var in struct{ Token string }
	require.NoError(t, json.Unmarshal([]byte(body), &in))
	bearer := "Bearer " + in.Token

	status, body = f.do(c, "GET", "/me", "Authorization", bearer)
	assert.Equal(t, http.StatusOK, status)
	assert.Contains(t, body, `"user":"olga"`)
	clock.Advance(15 * time.Minute)
	status, body = f.do(c, "GET", "/me", "Authorization", bearer)
	assert.Equal(t, http.StatusUnauthorized, status, "idle for 15 minutes: %s", body)

	key, err := f.p.Users.CreateAPIKey(context.Background(), "reporter", "test")
	require.NoError(t, err)
	status, body = f.do(c, "GET", "/m/riverton/equipment", "Authorization", "Bearer "+key)
	assert.Equal(t, http.StatusForbidden, status, "a key signs the program in; it still needs a grant: %s", body)
	status, body = f.do(c, "GET", "/me", "Authorization", "Bearer "+key)
	assert.Equal(t, http.StatusOK, status)
	assert.Contains(t, body, `"user":"reporter"`)

	logins, err := f.p.Audit.Query(context.Background(), audit.Query{UserID: "olga", Type: audit.TypeLogin})
	require.NoError(t, err)
	require.NotEmpty(t, logins)
	assert.NotEmpty(t, logins[len(logins)-1].Details["session_id"])
}

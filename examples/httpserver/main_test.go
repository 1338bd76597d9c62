package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestServer_OverRealHTTP(t *testing.T) {
	p, err := setup(context.Background(), filepath.Join(t.TempDir(), "townhall.db"))
	require.NoError(t, err)
	defer p.Close()
	srv := httptest.NewServer(newServer(p))
	defer srv.Close()

	cases := []struct {
		name, method, path, user string
		status                   int
	}{
		{"anonymous reads public occurrences", "GET", "/m/riverton/occurrences", "", 200},
		{"operator reads", "GET", "/m/riverton/occurrences", "olga", 200},
		{"anonymous may not close", "POST", "/m/riverton/occurrences/7/close", "", 401},
		{"operator may not close", "POST", "/m/riverton/occurrences/7/close", "olga", 403},
		{"admin closes", "POST", "/m/riverton/occurrences/7/close", "alice", 200},
		{"admin of another municipality", "POST", "/m/hillside/occurrences/7/close", "alice", 403},
		{"hidden denial", "DELETE", "/m/riverton/equipment/3", "olga", 404},
		{"admin deletes", "DELETE", "/m/riverton/equipment/3", "alice", 204},
		{"unknown user", "GET", "/m/riverton/occurrences", "ghost", 401},
		{"unknown municipality", "GET", "/m/atlantis/occurrences", "olga", 404},
		{"malformed municipality", "GET", "/m/a%20b/occurrences", "olga", 400},
		{"module gate allows", "GET", "/menu/equipment", "vera", 200},
		{"module gate, anonymous", "GET", "/menu/equipment", "", 401},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, srv.URL+tc.path, nil)
			require.NoError(t, err)
			if tc.user != "" {
				req.Header.Set("X-User", tc.user)
			}
			resp, err := srv.Client().Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			assert.Equal(t, tc.status, resp.StatusCode, string(body))
			if tc.status >= 400 {
				assert.Equal(t, "application/problem+json", resp.Header.Get("Content-Type"))
				var problem map[string]any
				require.NoError(t, json.Unmarshal(body, &problem))
				assert.EqualValues(t, tc.status, problem["status"])
				for _, k := range []string{"type", "title", "detail"} {
					assert.NotEmpty(t, problem[k], k)
				}
			}
		})
	}
}

func TestServer_HandlerSeesDecision(t *testing.T) {
	p, err := setup(context.Background(), filepath.Join(t.TempDir(), "townhall.db"))
	require.NoError(t, err)
	defer p.Close()
	srv := httptest.NewServer(newServer(p))
	defer srv.Close()
	req, err := http.NewRequest("POST", srv.URL+"/m/riverton/occurrences/9/close", nil)
	require.NoError(t, err)
	req.Header.Set("X-User", "alice")
	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	assert.Equal(t, "closed 9 as admin@riverton\n", string(body))
}

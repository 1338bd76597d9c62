package access_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/civicstack/townhall/access"
)

// impServer is a host service: X-User stands in for its authentication
// (X-As for a host that kept an impersonated subject in its own session),
// ImpersonationHeader accepts X-Impersonation tokens, Require guards the
// routes, and handlers report who they serve.
func impServer(w *impWorld) http.Handler {
	authenticate := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
			if u := r.Header.Get("X-User"); u != "" {
				s := access.Subject{UserID: u}
				if as := r.Header.Get("X-As"); as != "" {
					s = access.Subject{UserID: as, ImpersonatorID: u}
				}
				r = r.WithContext(access.WithSubject(r.Context(), s))
			}
			next.ServeHTTP(rw, r)
		})
	}
	report := http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		s, _ := access.SubjectFrom(r.Context())
		by, impersonated := access.ImpersonatorFrom(r.Context())
		d, _ := access.DecisionFrom(r.Context())
		fmt.Fprintf(rw, "%s|%s|%t|%s", s.UserID, by, impersonated, d.Reason)
	})
	mux := http.NewServeMux()
	mux.Handle("POST /m/{m}/equipment", w.p.Checker.Require("equipment", "update", access.WithMunicipalityPathValue("m"))(report))
	mux.Handle("GET /menu/locations", w.p.Checker.Require("locations", "manage")(report))
	return authenticate(w.p.Admin.ImpersonationHeader("X-Impersonation")(mux))
}

func TestImpersonation_OverHTTP(t *testing.T) {
	w := newImpWorld(t)
	ctx := context.Background()
	srv := httptest.NewServer(impServer(w))
	defer srv.Close()
	token := w.impersonate(t, "super", "op")
	stopped := w.impersonate(t, "super", "op")
	require.NoError(t, w.p.Admin.StopImpersonation(ctx, stopped))
	other := w.impersonate(t, "super2", "op")

	cases := []struct {
		name                   string
		method, path           string
		user, as, impersonated string // headers X-User, X-As, X-Impersonation
		status                 int
		body                   string
	}{
		{"the admin as themselves", "POST", "/m/M2/equipment", "super", "", "", 200, "super||false|super_admin"},
		{"impersonating: the target's grant", "POST", "/m/M1/equipment", "super", "", token, 200, "op|super|true|role"},
		{"impersonating: the target's limits", "POST", "/m/M2/equipment", "super", "", token, 403, ""},
		{"impersonating: no super admin module gate", "GET", "/menu/locations", "super", "", token, 403, ""},
		{"a stopped token", "POST", "/m/M1/equipment", "super", "", stopped, 401, ""},
		{"a garbled token", "POST", "/m/M1/equipment", "super", "", "thi_garbage", 401, ""},
		{"another admin's token", "POST", "/m/M1/equipment", "super", "", other, 401, ""},
		{"a token of an admin, signed in as someone else", "POST", "/m/M1/equipment", "admin1", "", token, 401, ""},
		{"a token without signing in", "POST", "/m/M1/equipment", "", "", token, 401, ""},
		{"a live impersonated subject in the host's session", "POST", "/m/M1/equipment", "super", "op", "", 200, "op|super|true|role"},
		{"a dead impersonated subject in the host's session", "POST", "/m/M1/equipment", "super", "cat", "", 401, ""},
		{"a dead impersonated subject at the module gate", "GET", "/menu/locations", "super", "cat", "", 401, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, srv.URL+tc.path, nil)
			require.NoError(t, err)
			for h, v := range map[string]string{"X-User": tc.user, "X-As": tc.as, "X-Impersonation": tc.impersonated} {
				if v != "" {
					req.Header.Set(h, v)
				}
			}
			resp, err := srv.Client().Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			assert.Equal(t, tc.status, resp.StatusCode, string(body))
			if tc.status == 200 {
				assert.Equal(t, tc.body, string(body))
				return
			}
			assert.Equal(t, "application/problem+json", resp.Header.Get("Content-Type"))
			var problem map[string]any
			require.NoError(t, json.Unmarshal(body, &problem))
			assert.EqualValues(t, tc.status, problem["status"])
		})
	}

	// Once stopped, the token and the subject it resolved to are refused.
	require.NoError(t, w.p.Admin.StopImpersonation(ctx, token))
	for _, h := range []map[string]string{{"X-User": "super", "X-Impersonation": token}, {"X-User": "super", "X-As": "op"}} {
		req, err := http.NewRequest("POST", srv.URL+"/m/M1/equipment", nil)
		require.NoError(t, err)
		for k, v := range h {
			req.Header.Set(k, v)
		}
		resp, err := srv.Client().Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, "%v", h)
	}
}

func TestImpersonatorFrom(t *testing.T) {
	ctx := context.Background()
	_, ok := access.ImpersonatorFrom(ctx)
	assert.False(t, ok, "no subject")
	_, ok = access.ImpersonatorFrom(access.WithSubject(ctx, access.Subject{UserID: "op"}))
	assert.False(t, ok, "not impersonated")
	by, ok := access.ImpersonatorFrom(access.WithSubject(ctx, access.Subject{UserID: "op", ImpersonatorID: "super"}))
	assert.True(t, ok)
	assert.Equal(t, "super", by)
}

package access_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/civicstack/townhall/access"
	"github.com/civicstack/townhall/audit"
)

// recordServer guards GET /records/{loc}/{cat} with Require on the record
// the path names ("none" names a record that does not exist, "bad" a
// lookup that fails), and GET /gate/{module}/{action} with the module gate.
func recordServer(w *impWorld, opts ...access.RequireOption) http.Handler {
	authenticate := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
			if u := r.Header.Get("X-User"); u != "" {
				r = r.WithContext(access.WithSubject(r.Context(), access.Subject{UserID: u}))
			}
			next.ServeHTTP(rw, r)
		})
	}
	report := http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		d, _ := access.DecisionFrom(r.Context())
		fmt.Fprintf(rw, "%s|%s|%s", d.Reason, d.Role, d.Domain)
	})
	record := access.WithResource(func(r *http.Request) (*access.Resource, error) {
		switch r.PathValue("loc") {
		case "none":
			return nil, nil
		case "bad":
			return nil, errors.New("the record store is down")
		}
		return &access.Resource{LocationID: r.PathValue("loc"), Category: r.PathValue("cat")}, nil
	})
	mux := http.NewServeMux()
	mux.Handle("GET /records/{loc}/{cat}", w.p.Checker.Require("occurrences", "update", append([]access.RequireOption{record}, opts...)...)(report))
	mux.Handle("GET /m/{m}/records/{loc}/{cat}", w.p.Checker.Require("occurrences", "update",
		append([]access.RequireOption{record, access.WithMunicipalityPathValue("m")}, opts...)...)(report))
	mux.Handle("GET /gate/occurrences/update", w.p.Checker.Require("occurrences", "update")(report))
	mux.Handle("GET /gate/locations/manage", w.p.Checker.Require("locations", "manage")(report))
	return authenticate(mux)
}

func get(t *testing.T, srv *httptest.Server, path, user string) (int, string) {
	t.Helper()
	req, err := http.NewRequest("GET", srv.URL+path, nil)
	require.NoError(t, err)
	if user != "" {
		req.Header.Set("X-User", user)
	}
	res, err := srv.Client().Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	if res.StatusCode >= 400 {
		assert.Equal(t, "application/problem+json", res.Header.Get("Content-Type"))
		var p access.Problem
		require.NoError(t, json.Unmarshal(b, &p))
		assert.Equal(t, res.StatusCode, p.Status)
		assert.NotEmpty(t, p.Title)
	}
	return res.StatusCode, string(b)
}

func TestRequire_WithResourceDecidesOnTheRecord(t *testing.T) {
	w := newImpWorld(t)
	srv := httptest.NewServer(recordServer(w))
	defer srv.Close()
	cases := []struct {
		name, path, user string
		status           int
		body             string
	}{
		{"op's grant at V1 covers a record in V1", "/records/V1/roads", "op", 200, "role|operator|V1"},
		{"but not one in M1 outside V1", "/records/M1/roads", "op", 403, "out_of_scope"},
		{"cat's categories", "/records/M1/roads", "cat", 200, "role|operator|M1"},
		{"cat outside them", "/records/M1/lighting", "cat", 403, "category"},
		{"unapproved", "/records/M1/roads", "unap", 403, "profile_not_approved"},
		{"anonymous", "/records/M1/roads", "", 401, ""},
		{"an unknown user", "/records/M1/roads", "ghost", 401, ""},
		{"no such record", "/records/none/x", "op", 404, ""},
		{"an unknown location", "/records/Nowhere/x", "op", 404, ""},
		{"a lookup that fails", "/records/bad/x", "op", 500, ""},
		{"the record must lie in the named municipality", "/m/M2/records/V1/roads", "op", 403, "out_of_scope"},
		{"and may", "/m/M1/records/V1/roads", "op", 200, "role|operator|V1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, body := get(t, srv, tc.path, tc.user)
			assert.Equal(t, tc.status, status, body)
			assert.Contains(t, body, tc.body)
		})
	}

	hidden := httptest.NewServer(recordServer(w, access.WithNotFoundOnDeny()))
	defer hidden.Close()
	status, _ := get(t, hidden, "/records/M1/lighting", "cat")
	assert.Equal(t, http.StatusNotFound, status, "WithNotFoundOnDeny hides the record")
}

func TestRequire_GateHasTheRealReasonAndAuditsDenials(t *testing.T) {
	w := newImpWorld(t)
	srv := httptest.NewServer(recordServer(w))
	defer srv.Close()
	cases := []struct {
		name, path, user string
		status           int
		body             string
	}{
		{"a super admin", "/gate/occurrences/update", "super", 200, "super_admin||"},
		{"a role names its grant", "/gate/occurrences/update", "admin1", 200, "role|admin|M1"},
		{"an operator at a village", "/gate/occurrences/update", "op", 200, "role|operator|V1"},
		{"a platform admin at a platform module", "/gate/locations/manage", "pat", 200, "platform_role|platform_admin|*"},
		{"an unapproved profile", "/gate/occurrences/update", "unap", 403, "profile_not_approved"},
		{"an inactive profile", "/gate/occurrences/update", "inact", 403, "profile_inactive"},
		{"an inactive user", "/gate/occurrences/update", "off", 403, "user_inactive"},
		{"no grant", "/gate/occurrences/update", "plain", 403, "no_grant"},
		{"anonymous", "/gate/occurrences/update", "", 401, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, body := get(t, srv, tc.path, tc.user)
			assert.Equal(t, tc.status, status, body)
			assert.Contains(t, body, tc.body)
		})
	}

	ctx := context.Background()
	require.Eventually(t, func() bool {
		evs, err := w.p.Audit.Query(ctx, audit.Query{ActorID: "unap", Type: audit.TypeDecisionDenied})
		require.NoError(t, err)
		return len(evs) > 0 && evs[len(evs)-1].Reason == "profile_not_approved" && evs[len(evs)-1].Module == "occurrences"
	}, 5*time.Second, 20*time.Millisecond, "the gate's denial is audited")
}

func TestCheckModule_AgreesWithUserCanAccessModule(t *testing.T) {
	w := newImpWorld(t)
	ctx := context.Background()
	require.NoError(t, w.p.Admin.SetModuleEnabled(ctx, access.System(), "M1", "equipment", false))
	subjects := []string{"", "super", "pat", "admin1", "viewer1", "op", "cat", "unap", "inact", "off", "ca", "portal", "plain", "tech"}
	reg := claimsRegistry(t)
	pairs := [][2]string{{"users", "view"}, {"users", "manage"}, {"modules", "configure"}, {"audit", "view"}, {"locations", "manage"}}
	for _, m := range reg.Modules() {
		for _, a := range reg.Actions(m) {
			pairs = append(pairs, [2]string{m, a})
		}
	}
	for _, pair := range pairs {
		m, a := pair[0], pair[1]
		for _, u := range subjects {
			s := access.Subject{UserID: u}
			want, err := w.p.Checker.UserCanAccessModule(ctx, s, m, a)
			require.NoError(t, err)
			d, err := w.p.Checker.CheckModule(ctx, s, m, a)
			require.NoError(t, err)
			assert.Equal(t, want, d.Allowed, "%q %s:%s (%s)", u, m, a, d.Reason)
			assert.NotEqual(t, access.ReasonInvalid, d.Reason)
		}
	}
	_, err := w.p.Checker.CheckModule(ctx, access.Subject{UserID: "ghost"}, "occurrences", "view")
	assert.Error(t, err)
	_, err = w.p.Checker.CheckModule(ctx, access.Subject{UserID: "op"}, "nope", "view")
	assert.ErrorIs(t, err, access.ErrUnknownModule)
}

func TestProblemFor_MapsOutcomes(t *testing.T) {
	req := access.Request{Module: "occurrences", Action: "update"}
	user := access.Subject{UserID: "u"}
	cases := []struct {
		name   string
		s      access.Subject
		d      access.Decision
		err    error
		status int
	}{
		{"allowed", user, access.Decision{Allowed: true, Reason: access.ReasonRole}, nil, 0},
		{"denied signed in", user, access.Decision{Reason: access.ReasonCategory}, nil, 403},
		{"denied anonymous", access.Anonymous(), access.Decision{Reason: access.ReasonNoGrant}, nil, 401},
		{"dead impersonation", user, access.Decision{}, access.ErrInvalidToken, 401},
		{"malformed", user, access.Decision{}, fmt.Errorf("x: %w", access.ErrInvalidInput), 400},
		{"other error", user, access.Decision{}, errors.New("boom"), 500},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, refused := access.ProblemFor(tc.s, req, tc.d, tc.err)
			assert.Equal(t, tc.status != 0, refused)
			assert.Equal(t, tc.status, p.Status)
			if tc.status == 403 {
				assert.True(t, strings.Contains(p.Detail, string(tc.d.Reason)), p.Detail)
			}
		})
	}
	rec := httptest.NewRecorder()
	access.WriteProblem(rec, access.Problem{Status: http.StatusTeapot})
	assert.Equal(t, http.StatusTeapot, rec.Code)
	assert.JSONEq(t, `{"type":"about:blank","title":"I'm a teapot","status":418,"detail":""}`, rec.Body.String())
}

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestObservability_MetricsScrapedAndLogsJSON(t *testing.T) {
	var logs bytes.Buffer
	obs, err := newObservability(&logs)
	require.NoError(t, err)
	defer obs.Close()
	p, err := setup(context.Background(), filepath.Join(t.TempDir(), "townhall.db"), obs.options()...)
	require.NoError(t, err)
	defer p.Close()
	srv := httptest.NewServer(obs.serve(newServer(p)))
	defer srv.Close()

	get := func(path, user string) (int, string) {
		req, err := http.NewRequest(http.MethodPost, srv.URL+path, nil)
		require.NoError(t, err)
		if path == "/metrics" {
			req.Method = http.MethodGet
		}
		if user != "" {
			req.Header.Set("X-User", user)
		}
		resp, err := srv.Client().Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, string(body)
	}
	status, _ := get("/m/riverton/occurrences/7/close", "alice")
	require.Equal(t, http.StatusOK, status)
	status, _ = get("/m/riverton/occurrences/7/close", "olga")
	require.Equal(t, http.StatusForbidden, status)

	status, body := get("/metrics", "")
	require.Equal(t, http.StatusOK, status)
	allowed := sample(t, body, "townhall_checks_total", `townhall_outcome="allowed"`, `townhall_reason="role"`)
	denied := sample(t, body, "townhall_checks_total", `townhall_outcome="denied"`, `townhall_reason="no_grant"`)
	assert.Equal(t, "1", allowed)
	assert.Equal(t, "1", denied)
	assert.Contains(t, body, "townhall_admin_changes_total{")
	assert.Contains(t, body, "townhall_snapshot_revision{")

	// Open logged the registry's policy rows as JSON.
	var first map[string]any
	line, _, _ := strings.Cut(logs.String(), "\n")
	require.NoError(t, json.Unmarshal([]byte(line), &first), line)
	assert.Equal(t, "townhall: registry policy rows rewritten", first["msg"])
}

// sample returns the value of the Prometheus sample of metric whose
// labels include every one of labels.
func sample(t *testing.T, exposition, metric string, labels ...string) string {
	t.Helper()
	for line := range strings.Lines(exposition) {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), "{")
		if !ok || name != metric {
			continue
		}
		match := true
		for _, l := range labels {
			match = match && strings.Contains(rest, l)
		}
		if match {
			return rest[strings.LastIndex(rest, " ")+1:]
		}
	}
	t.Fatalf("no sample %s{%s} in\n%s", metric, strings.Join(labels, ","), exposition)
	return ""
}

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/civicstack/townhall"
	"github.com/civicstack/townhall/internal/testkit"
)

func TestObservability_MetricsScrapedAndLogsJSON(t *testing.T) {
	var logs bytes.Buffer
	obs, err := newObservability(&logs)
	require.NoError(t, err)
	defer obs.Close()
	opts := append([]townhall.Option{townhall.WithKDF(testkit.FastKDF)}, obs.options()...)
	p, err := setup(context.Background(), filepath.Join(t.TempDir(), "townhall.db"), opts...)
	require.NoError(t, err)
	defer p.Close()
	h, err := newServer(p)
	require.NoError(t, err)
	srv := httptest.NewTLSServer(obs.serve(h))
	defer srv.Close()
	f := &fixture{t: t, p: p, srv: srv}

	alice, olga := f.browser("alice"), f.browser("olga")
	status, body := f.do(alice, "POST", "/occurrences/1/close", "Sec-Fetch-Site", "same-origin")
	require.Equal(t, http.StatusOK, status, body)
	status, body = f.do(olga, "POST", "/occurrences/1/close", "Sec-Fetch-Site", "same-origin")
	require.Equal(t, http.StatusForbidden, status, body)

	status, body = f.do(srv.Client(), "GET", "/metrics")
	require.Equal(t, http.StatusOK, status)
	allowed := sample(t, body, "townhall_checks_total", `townhall_outcome="allowed"`, `townhall_reason="role"`)
	denied := sample(t, body, "townhall_checks_total", `townhall_outcome="denied"`, `townhall_reason="no_grant"`)
	for name, v := range map[string]string{"allowed": allowed, "denied": denied} {
		n, err := strconv.ParseFloat(v, 64)
		require.NoError(t, err, name)
		assert.GreaterOrEqual(t, n, 1.0, "%s checks counted", name)
	}
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

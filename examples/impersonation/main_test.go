package main

import (
	"bytes"
	"context"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRun(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, run(context.Background(), filepath.Join(t.TempDir(), "townhall.db"), &out))
	got := regexp.MustCompile(`[ \t]+`).ReplaceAllString(out.String(), " ")
	for _, want := range []string{
		"alice impersonates olga: access: forbidden",
		"ada impersonates bob: access: forbidden",
		"ada impersonates importer: access: forbidden",
		"ada impersonates olga: access: invalid input",
		"ada as herself closes: 200 closed 7 as ada",
		"ada as olga closes: 403",
		"ada as olga updates: 200 updated 7 as olga (impersonated by ada)",
		"ada as olga in another municipality: 403",
		"alice presents ada's token: 401",
		"the stopped token: 401",
		"resolve the stopped token: access: invalid token",
		`impersonation_start actor=ada impersonator= user=olga allowed=true "ticket 4711: olga cannot close occurrences"`,
		"impersonation_stop actor=ada impersonator= user=olga allowed=true",
		"decision_denied actor=olga impersonator=ada user= allowed=false no_grant",
		"decision_denied actor=olga impersonator=ada user= allowed=false out_of_scope",
	} {
		assert.Contains(t, got, want)
	}
}

package policytest_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/civicstack/townhall/policytest"
)

func TestRun_DocumentedExampleHolds(t *testing.T) {
	policytest.Run(t, "testdata/example.yaml")
}

func TestRunFile_ReportsEachWrongExpectationWithItsExplanation(t *testing.T) {
	r, err := policytest.RunFile(context.Background(), "testdata/wrong.yaml")
	require.NoError(t, err)
	assert.False(t, r.OK())
	assert.Equal(t, 1, r.Passed)
	require.Len(t, r.Failures, 2)

	check := r.Failures[0]
	assert.Equal(t, "checks[1]", check.Expectation)
	assert.Equal(t, 11, check.Line)
	assert.Contains(t, check.Message, "olga occurrences.assign in W: want allow: true, got false")
	assert.Contains(t, check.Explanation, "grant operator at W (anchor W): role does not allow the action")
	assert.Contains(t, check.String(), "line 11: checks[1]:")

	who := r.Failures[1]
	assert.Equal(t, "who_can[0]", who.Expectation)
	assert.Equal(t, 13, who.Line)
	assert.Contains(t, who.Message, "missing olga")
}

func TestParse_RefusesMalformedFiles(t *testing.T) {
	for _, tc := range []struct {
		name, file, want string
	}{
		{"unknown key", "locations: []\nchecsk: []\n", "checsk"},
		{"unknown key in a check", "checks:\n  - {module: m, action: a, allow: true, alow: true}\n", "alow"},
		{"check without allow", "checks:\n  - {module: occurrences, action: view}\n", "line 2: checks[0]"},
		{"bad inline registry", "registry:\n  modules:\n    m:\n      actions:\n        a: {roles: [nobody]}\n", "unknown role"},
		{"missing registry file", "registry: nowhere.yaml\n", "nowhere.yaml"},
		{"bad clock", "now: yesterday\n", "now"},
		{"not yaml", "checks: [\n", "yaml"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := policytest.Parse([]byte(tc.file), t.TempDir())
			require.ErrorIs(t, err, policytest.ErrInvalidFile)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestRunFile_FixtureErrorsNameThePlace(t *testing.T) {
	f, err := policytest.Parse([]byte("locations:\n  - {id: W, level: municipality, parent: missing}\n"), t.TempDir())
	require.NoError(t, err)
	_, err = f.Run(context.Background())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "locations[0]")
}

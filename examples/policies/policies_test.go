// Package policies holds example policy test files; this test runs them,
// so they hold in CI.
package policies

import (
	"testing"

	"github.com/civicstack/townhall/policytest"
)

func TestExamplePolicies(t *testing.T) {
	policytest.Run(t, "*.yaml")
}

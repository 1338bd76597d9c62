package policytest

import (
	"context"
	"path/filepath"
	"testing"
)

// Run runs every policy test file matching the glob patterns as a subtest
// of t named after the file, failing it for each expectation that does not
// hold (with the decision's explanation) and for a file that cannot be read
// or built. A pattern matching no file fails t: a CI job that silently
// tests nothing is worse than none.
//
//	func TestPolicies(t *testing.T) { policytest.Run(t, "testdata/*.yaml") }
func Run(t *testing.T, patterns ...string) {
	t.Helper()
	for _, pattern := range patterns {
		paths, err := filepath.Glob(pattern)
		if err != nil {
			t.Fatalf("policytest: %v", err)
		}
		if len(paths) == 0 {
			t.Errorf("policytest: no file matches %q", pattern)
		}
		for _, path := range paths {
			t.Run(filepath.Base(path), func(t *testing.T) {
				r, err := RunFile(context.Background(), path)
				if err != nil {
					t.Fatalf("%v", err)
				}
				for _, f := range r.Failures {
					t.Errorf("%s:%s", path, f)
				}
			})
		}
	}
}

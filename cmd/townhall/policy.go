package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/civicstack/townhall/policytest"
)

// policyResult is policy test --json's entry per file.
type policyResult struct {
	File     string               `json:"file"`
	Passed   int                  `json:"passed"`
	Failures []policytest.Failure `json:"failures"`
}

func (a *app) policyCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "policy", Short: "Run policy test files"}
	test := &cobra.Command{
		Use:   "test FILE...",
		Short: "Run policy test files, each on a throw-away embedded SQLite; exit 5 when an expectation fails",
		Long: `test runs each policy test file (see package policytest for the format)
on its own throw-away embedded SQLite database, and prints every failing
expectation with its line and the decision's explanation. It never touches
--db. Exit 0 when every expectation holds, 5 when one fails, 2 for a file
that cannot be read or built.`,
		Args: usageArgs(cobra.MinimumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			var results []policyResult
			failed := 0
			for _, path := range args {
				r, err := policytest.RunFile(cmd.Context(), path)
				if err != nil {
					return fmt.Errorf("%w: %w", errUsage, err)
				}
				results = append(results, policyResult{File: path, Passed: r.Passed, Failures: r.Failures})
				failed += len(r.Failures)
				if a.json {
					continue
				}
				for _, f := range r.Failures {
					fmt.Fprintf(a.stdout, "FAIL %s:%s\n", path, f)
				}
				status := "ok"
				if !r.OK() {
					status = "FAIL"
				}
				fmt.Fprintf(a.stdout, "%s %s: %d passed, %d failed\n", status, path, r.Passed, len(r.Failures))
			}
			if a.json {
				if err := a.print(results, "", nil); err != nil {
					return err
				}
			}
			if failed > 0 {
				return errNo
			}
			return nil
		},
	}
	cmd.AddCommand(test)
	return cmd
}

package access_test

import (
	"context"
	"testing"

	"github.com/civicstack/townhall/access"
)

// BenchmarkGate compares the module gate with its reason (CheckModule, as
// Require without a municipality now asks it) against the baseline, the
// bool gate UserCanAccessModule that Require asked before: an allow
// through a village grant, and a denial through an unapproved profile
// (which CheckModule also queues for the audit log).
func BenchmarkGate(b *testing.B) {
	w := newImpWorld(b)
	ctx := context.Background()
	gates := []struct {
		name string
		gate func(s access.Subject) error
	}{
		{"CheckModule", func(s access.Subject) error {
			_, err := w.p.Checker.CheckModule(ctx, s, "occurrences", "update")
			return err
		}},
		{"UserCanAccessModule", func(s access.Subject) error {
			_, err := w.p.Checker.UserCanAccessModule(ctx, s, "occurrences", "update")
			return err
		}},
	}
	for _, g := range gates {
		for _, tc := range []struct{ name, user string }{{"allowed", "op"}, {"denied", "unap"}} {
			b.Run(g.name+"/"+tc.name, func(b *testing.B) {
				s := access.Subject{UserID: tc.user}
				b.ReportAllocs()
				for b.Loop() {
					if err := g.gate(s); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

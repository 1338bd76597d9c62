package access_test

import (
	"context"
	"slices"
	"testing"

	"github.com/civicstack/townhall/access"
	"github.com/civicstack/townhall/internal/benchdata"
)

// The lookups on the 100,000-user platform of bench_test.go: Subjects with
// its index warm, after a write (one chunk rebuilt), with the whole index
// rebuilt (as after a full reload), and the baseline it beats, deciding
// every user; Permissions over the whole registry.

// subjectRequests returns the resource requests of the benchmark mix whose
// action is public (every active user qualifies) or not (the assignment
// drop-down).
func subjectRequests(public bool) []benchReq {
	reg := access.DefaultRegistry()
	var out []benchReq
	for _, r := range bench.resource {
		def, err := reg.Action(r.req.Module, r.req.Action)
		if err != nil {
			panic(err)
		}
		if slices.Contains(def.Roles, access.RolePublic) == public {
			out = append(out, r)
		}
	}
	return out
}

func benchmarkSubjects(b *testing.B, public bool, lookup func(ctx context.Context, c *access.Checker, module, action, loc string) ([]string, error)) {
	benchPlatform(b)
	ctx := context.Background()
	reqs := subjectRequests(public)
	listed := 0
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		r := &reqs[i%len(reqs)]
		got, err := lookup(ctx, bench.p.Checker, r.req.Module, r.req.Action, r.req.Resource.LocationID)
		if err != nil {
			b.Fatal(err)
		}
		listed += len(got)
	}
	b.ReportMetric(float64(listed)/float64(b.N), "subjects/op")
}

func BenchmarkSubjects(b *testing.B) {
	benchmarkSubjects(b, false, func(ctx context.Context, c *access.Checker, module, action, loc string) ([]string, error) {
		return c.Subjects(ctx, module, action, loc)
	})
}

func BenchmarkSubjectsIndexRebuilt(b *testing.B) {
	benchmarkSubjects(b, false, func(ctx context.Context, c *access.Checker, module, action, loc string) ([]string, error) {
		access.DropLookupIndex(c)
		return c.Subjects(ctx, module, action, loc)
	})
}

// BenchmarkSubjectsAfterWrite republishes one user's chunk before each
// call, as a write does: the index rebuilds that chunk only.
func BenchmarkSubjectsAfterWrite(b *testing.B) {
	i := 0
	benchmarkSubjects(b, false, func(ctx context.Context, c *access.Checker, module, action, loc string) ([]string, error) {
		i++
		if err := access.RepublishUser(c, benchdata.User(i%bench.spec.Users)); err != nil {
			return nil, err
		}
		return c.Subjects(ctx, module, action, loc)
	})
}

// BenchmarkSubjectsByScan is the baseline: every user decided.
func BenchmarkSubjectsByScan(b *testing.B) {
	benchmarkSubjects(b, false, access.SubjectsByScan)
}

// BenchmarkSubjectsPublic lists the users of public actions: every active
// user, each decided.
func BenchmarkSubjectsPublic(b *testing.B) {
	benchmarkSubjects(b, true, func(ctx context.Context, c *access.Checker, module, action, loc string) ([]string, error) {
		return c.Subjects(ctx, module, action, loc)
	})
}

func BenchmarkPermissions(b *testing.B) {
	benchPlatform(b)
	ctx := context.Background()
	reqs := bench.gate
	allowed := 0
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		r := &reqs[i%len(reqs)]
		got, err := bench.p.Checker.Permissions(ctx, r.subject, r.req.Municipality)
		if err != nil {
			b.Fatal(err)
		}
		allowed += len(got)
	}
	b.ReportMetric(float64(allowed)/float64(b.N), "actions/op")
}

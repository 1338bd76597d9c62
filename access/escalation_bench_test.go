package access_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/civicstack/townhall"
	"github.com/civicstack/townhall/access"
	"github.com/civicstack/townhall/internal/testkit"
	"github.com/civicstack/townhall/location"
)

// The result check against the write it guards: BenchmarkAdmin_GrantJudged
// is a Grant by a municipal admin (write, audit event, judged snapshot);
// BenchmarkJudge the judging alone, for a target with four grants at three places.

func benchWorld(b *testing.B) (*townhall.Platform, access.Subject) {
	b.Helper()
	p := testkit.Open(b, townhall.WithSyncInterval(-1))
	testkit.Locations(b, p,
		location.Location{ID: "R", Level: "region"},
		location.Location{ID: "D", Level: "district", ParentID: "R"},
		location.Location{ID: "M1", Level: "municipality", ParentID: "D"},
		location.Location{ID: "M2", Level: "municipality", ParentID: "D"},
		location.Location{ID: "V1", Level: "village", ParentID: "M1"},
	)
	testkit.Member(b, p, "madmin", access.RoleAdmin, "M1")
	testkit.Member(b, p, "tgt", access.RoleViewer, "M1")
	for _, loc := range []string{"V1", "M2"} {
		testkit.Member(b, p, "tgt", access.RoleOperator, loc)
	}
	return p, access.Subject{UserID: "madmin"}
}

func BenchmarkAdmin_GrantJudged(b *testing.B) {
	p, actor := benchWorld(b)
	ctx := context.Background()
	roles := []string{access.RoleOperator, access.RoleManager}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if err := p.Admin.Grant(ctx, actor, "tgt", roles[i%2], "M1"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkJudge(b *testing.B) {
	p, actor := benchWorld(b)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		require.NoError(b, access.JudgeUnchanged(p.Checker, actor, "tgt"))
	}
}

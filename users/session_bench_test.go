package users_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/civicstack/townhall/users"
)

// BenchmarkResolveSession is the per-request cost of a session: one
// indexed read of the session, one of its user. The idle-clock write
// happens at most once a minute, so it is not in the loop (the clock
// stands still).
func BenchmarkResolveSession(b *testing.B) {
	e := newEnv(b)
	e.mustUser(b, users.NewUser{ID: "amy", Username: "amy", Password: "correct horse"})
	in, err := e.users.Login(ctx, "amy", "correct horse")
	require.NoError(b, err)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := e.users.ResolveSession(ctx, in.Token); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAuthenticateAPIKey is the baseline: the existing bearer
// credential, also a database read per request.
func BenchmarkAuthenticateAPIKey(b *testing.B) {
	e := newEnv(b)
	e.mustUser(b, users.NewUser{ID: "bot", Username: "bot", Kind: users.Technical})
	key, err := e.users.CreateAPIKey(ctx, "bot", "bench")
	require.NoError(b, err)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := e.users.AuthenticateAPIKey(ctx, key); err != nil {
			b.Fatal(err)
		}
	}
}

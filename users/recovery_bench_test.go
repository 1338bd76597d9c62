package users_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/civicstack/townhall/users"
)

// BenchmarkRequestPasswordReset compares a request for a known address
// with one for an unknown address, the baseline an attacker would time
// against. Both generate a token and write one transaction; the known one
// also supersedes, stores the token and hands the message to the Mailer
// (here an in-memory one, as a queue would be).
func BenchmarkRequestPasswordReset(b *testing.B) {
	for _, tc := range []struct{ name, email string }{{"known", "amy@example.org"}, {"unknown", "nobody@example.org"}} {
		b.Run(tc.name, func(b *testing.B) {
			mail := &outbox{}
			e := newEnv(b, users.WithMailer(mail))
			e.mustUser(b, users.NewUser{Username: "amy", Email: "amy@example.org"})
			b.ReportAllocs()
			for b.Loop() {
				require.NoError(b, e.users.RequestPasswordReset(ctx, tc.email))
				mail.sent = mail.sent[:0]
			}
		})
	}
}

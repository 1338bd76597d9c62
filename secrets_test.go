package townhall_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/civicstack/townhall"
	"github.com/civicstack/townhall/access"
	"github.com/civicstack/townhall/audit"
	"github.com/civicstack/townhall/internal/dbtest"
	"github.com/civicstack/townhall/internal/testkit"
	"github.com/civicstack/townhall/location"
	"github.com/civicstack/townhall/users"
)

// mailbox is a Mailer that keeps the messages.
type mailbox struct {
	mu   sync.Mutex
	sent []users.Message
}

func (m *mailbox) Send(_ context.Context, msg users.Message) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sent = append(m.sent, msg)
	return nil
}

func (m *mailbox) last(kind users.MessageKind) users.Message {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := len(m.sent) - 1; i >= 0; i-- {
		if m.sent[i].Kind == kind {
			return m.sent[i]
		}
	}
	return users.Message{}
}

// syncBuffer is a bytes.Buffer safe for the logger's concurrent writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestSecrets_NeverInClear runs every flow that handles a password or a
// bearer secret, with every SQL statement logged, then reads every table,
// the audit log and the log, and finds none of them in clear.
func TestSecrets_NeverInClear(t *testing.T) {
	ctx := context.Background()
	var sqlLog syncBuffer
	db := dbtest.New(t).Session(&gorm.Session{Logger: logger.New(log.New(&sqlLog, "", 0),
		logger.Config{LogLevel: logger.Info, ParameterizedQueries: false, Colorful: false})})
	mail := &mailbox{}
	p, err := townhall.Open(ctx, db, townhall.WithKDF(testkit.FastKDF), townhall.WithMailer(mail),
		townhall.WithEmailVerification())
	require.NoError(t, err)
	defer p.Close()
	sys := access.System()

	var secrets []string
	keep := func(s string) {
		t.Helper()
		require.NotEmpty(t, s)
		secrets = append(secrets, s)
		// The random part alone, without the prefix naming its use.
		if i := strings.LastIndexByte(s, '_'); i > 0 && i < len(s)-16 {
			secrets = append(secrets, s[i+1:])
		}
	}
	const first, second, third = "first secret password", "second secret password", "third secret password"
	secrets = append(secrets, first, second, third)

	_, err = p.Locations.Create(ctx, location.Location{ID: "M1", Level: location.Municipality})
	require.NoError(t, err)
	_, err = p.Users.Create(ctx, users.NewUser{ID: "amy", Username: "amy", Email: "amy@example.org", Password: first})
	require.NoError(t, err)
	_, err = p.Users.Create(ctx, users.NewUser{ID: "root", Username: "root", Password: first})
	require.NoError(t, err)
	require.NoError(t, p.Admin.SetSuperAdmin(ctx, sys, "root", true))
	_, err = p.Users.Create(ctx, users.NewUser{ID: "bot", Username: "bot", Kind: users.Technical})
	require.NoError(t, err)

	in, err := p.Users.Login(ctx, "amy", first)
	require.NoError(t, err)
	keep(in.Token)
	_, err = p.Users.Login(ctx, "amy", "a wrong password guess")
	require.Error(t, err)
	secrets = append(secrets, "a wrong password guess")
	require.NoError(t, p.Users.SetPassword(ctx, "amy", second))

	key, err := p.Users.CreateAPIKey(ctx, "bot", "ci")
	require.NoError(t, err)
	keep(key)
	_, err = p.Users.AuthenticateAPIKey(ctx, key)
	require.NoError(t, err)

	imp, err := p.Admin.Impersonate(ctx, access.Subject{UserID: "root"}, "amy", "ticket 7", time.Hour)
	require.NoError(t, err)
	keep(imp)
	_, err = p.Admin.ResolveImpersonation(ctx, imp)
	require.NoError(t, err)

	require.NoError(t, p.Users.RequestPasswordReset(ctx, "amy@example.org"))
	reset := mail.last(users.MessagePasswordReset).Token
	keep(reset)
	require.NoError(t, p.Users.ResetPassword(ctx, reset, third))

	_, err = p.Users.Register(ctx, users.NewUser{ID: "ned", Username: "ned", Email: "ned@example.org", Password: first})
	require.NoError(t, err)
	verify := mail.last(users.MessageEmailVerification).Token
	keep(verify)
	_, err = p.Users.VerifyEmail(ctx, verify)
	require.NoError(t, err)

	sso, err := p.Users.SignInExternal(ctx, users.ExternalSignIn{Provider: "idp", Subject: "s-1",
		Provision: &users.NewUser{Username: "sso.user"}})
	require.NoError(t, err)
	keep(sso.Token)
	sess, err := p.Users.StartSession(ctx, "root", "saml")
	require.NoError(t, err)
	keep(sess.Token)
	require.NoError(t, p.Users.EndSession(ctx, sess.Token))
	require.NoError(t, p.Audit.Verify(ctx)) // flushes pending events

	// Every table, every column.
	tables, err := p.DB().Migrator().GetTables()
	require.NoError(t, err)
	require.Contains(t, tables, users.SessionsTable)
	var dump strings.Builder
	for _, table := range tables {
		var rows []map[string]any
		require.NoError(t, p.DB().Table(table).Find(&rows).Error, table)
		for _, row := range rows {
			for col, v := range row {
				if b, ok := v.([]byte); ok {
					v = string(b)
				}
				fmt.Fprintf(&dump, "%s.%s=%v\n", table, col, v)
			}
		}
	}
	require.Contains(t, dump.String(), users.SessionsTable+".token_hash=", "the dump reads the session rows")

	events, err := p.Audit.Query(ctx, audit.Query{Limit: audit.MaxLimit})
	require.NoError(t, err)
	require.NotEmpty(t, events)
	evJSON, err := json.Marshal(events)
	require.NoError(t, err)
	for _, typ := range []string{audit.TypeLogin, audit.TypeLogout, audit.TypePasswordReset, audit.TypeEmailVerified} {
		require.Contains(t, string(evJSON), `"`+typ+`"`, "the audit log holds the %s events", typ)
	}
	logged := sqlLog.String()
	require.Contains(t, logged, users.SessionsTable, "the SQL log captured the statements")

	for _, secret := range secrets {
		assert.NotContains(t, dump.String(), secret, "a table holds a secret in clear")
		assert.NotContains(t, string(evJSON), secret, "the audit log holds a secret in clear")
		assert.NotContains(t, logged, secret, "the SQL log holds a secret in clear")
	}
}

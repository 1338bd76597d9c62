package audit_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/glebarez/sqlite"
	"gorm.io/gorm"

	"github.com/civicstack/townhall/audit"
)

func ExampleLog_Verify() {
	dir, err := os.MkdirTemp("", "audit-example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	dsn := filepath.Join(dir, "audit.db") + "?_pragma=busy_timeout(5000)&_txlock=immediate"
	db, err := gorm.Open(sqlite.Open(dsn), &gorm.Config{})
	if err != nil {
		fmt.Println(err)
		return
	}
	if sqlDB, err := db.DB(); err == nil {
		defer sqlDB.Close()
	}
	ctx := context.Background()
	if err := audit.Migrate(db); err != nil {
		fmt.Println(err)
		return
	}
	log := audit.New(db, audit.WithClock(func() time.Time {
		return time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	}))
	defer log.Close()

	_ = log.Record(ctx, audit.Event{Type: audit.TypeGrant, ActorID: "admin-1", UserID: "user-7", LocationID: "village-3"})
	log.RecordAsync(audit.Event{Type: audit.TypeDecisionDenied, ActorID: "user-7", Module: "occurrences", Action: "delete"})

	events, _ := log.Query(ctx, audit.Query{UserID: "user-7"})
	fmt.Println(len(events), events[0].Type, events[0].At.Format(time.RFC3339))
	fmt.Println("verify:", log.Verify(ctx))

	db.Exec("UPDATE townhall_audit_events SET user_id = 'user-8' WHERE seq = 1")
	err = log.Verify(ctx)
	var te *audit.TamperError
	fmt.Println(errors.Is(err, audit.ErrTampered), errors.As(err, &te) && te.Seq == 1)
	// Output:
	// 1 grant 2024-05-06T07:08:09Z
	// verify: <nil>
	// true true
}

// printSink stands in for a store the database's writers cannot reach.
type printSink struct{ kept []audit.Checkpoint }

func (s *printSink) Put(_ context.Context, c audit.Checkpoint) error {
	s.kept = append(s.kept, c)
	return nil
}

func ExampleVerifyArchive() {
	dir, err := os.MkdirTemp("", "audit-archive")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	db, err := gorm.Open(sqlite.Open(filepath.Join(dir, "audit.db")), &gorm.Config{})
	if err != nil {
		fmt.Println(err)
		return
	}
	if sqlDB, err := db.DB(); err == nil {
		defer sqlDB.Close()
	}
	if err := audit.Migrate(db); err != nil {
		fmt.Println(err)
		return
	}
	ctx := context.Background()
	priv := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize)) // in production: a kept secret
	pub := priv.Public().(ed25519.PublicKey)
	sink := &printSink{}
	log := audit.New(db, audit.WithKey("2026-12", []byte("32 bytes of a real secret key!!!")), audit.WithSigner(priv, sink))
	defer log.Close()

	for _, user := range []string{"user-1", "user-2", "user-3"} {
		_ = log.Record(ctx, audit.Event{Type: audit.TypeGrant, ActorID: "admin-1", UserID: user})
	}
	cp, _ := log.Checkpoint(ctx)
	_ = log.Record(ctx, audit.Event{Type: audit.TypeRevoke, ActorID: "admin-1", UserID: "user-2"})

	var archive bytes.Buffer
	_, _ = log.Archive(ctx, &archive, 1, cp.Seq)
	got, err := audit.VerifyArchive(bytes.NewReader(archive.Bytes()), pub)
	fmt.Println("archive verifies through event", got.Seq, err)

	fmt.Println("prune:", log.Prune(ctx, cp.Seq))
	fmt.Println("verify what remains:", log.Verify(ctx, audit.WithCheckpoints(pub, sink.kept...)))
	// Output:
	// archive verifies through event 3 <nil>
	// prune: <nil>
	// verify what remains: <nil>
}

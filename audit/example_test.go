package audit_test

import (
	"context"
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

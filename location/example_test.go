package location_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"gorm.io/gorm"

	"github.com/civicstack/townhall/audit"
	"github.com/civicstack/townhall/internal/dbx"
	"github.com/civicstack/townhall/location"
)

func ExampleStore() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "townhall-example")
	defer os.RemoveAll(dir)
	db, err := dbx.OpenSQLite(filepath.Join(dir, "townhall.db"))
	if err != nil {
		fmt.Println(err)
		return
	}
	err = dbx.Migrate(ctx, db, func(tx *gorm.DB) error {
		if err := audit.Migrate(tx); err != nil {
			return err
		}
		return location.Migrate(tx)
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	log := audit.New(db)
	defer log.Close()

	tree := location.NewTree()
	store, err := location.NewStore(db, log, location.WithOnChange(func(c location.Change) { _ = tree.Apply(c) }))
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, l := range []location.Location{
		{ID: "north", Name: "North", Level: "region"},
		{ID: "lakeside", Name: "Lakeside", Level: "district", ParentID: "north"},
		{ID: "harbour", Name: "Harbour Town", Level: "municipality", ParentID: "lakeside"},
		{ID: "pier", Name: "Pier", Level: "village", ParentID: "harbour"},
	} {
		if _, err := store.Create(ctx, l); err != nil {
			fmt.Println(err)
			return
		}
	}
	anc, _ := store.Ancestors(ctx, "pier")
	for _, a := range anc {
		fmt.Println(a.ID)
	}
	m, _ := store.MunicipalityOf(ctx, "pier")
	fmt.Println("municipality:", m.Name)
	fmt.Println("pier within north:", tree.IsWithin("pier", "north"))
	fmt.Println(store.Move(ctx, "lakeside", "pier"))
	// Output:
	// harbour
	// lakeside
	// north
	// municipality: Harbour Town
	// pier within north: true
	// move "lakeside": location: move under own subtree: "pier" lies in the subtree of "lakeside"
}

func ExampleTree_IsWithin() {
	tree := location.NewTree()
	_ = tree.Add(location.Location{ID: "r", Level: "region"})
	_ = tree.Add(location.Location{ID: "m", Level: "municipality", ParentID: "r"})
	_ = tree.Add(location.Location{ID: "v", Level: "village", ParentID: "m"})
	fmt.Println(tree.IsWithin("v", "r"), tree.IsWithin("r", "v"), tree.IsWithin("m", "m"))
	_ = tree.Move("v", "r")
	fmt.Println(tree.IsWithin("v", "m"))
	// Output:
	// true false true
	// false
}

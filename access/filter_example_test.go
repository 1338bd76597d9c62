package access_test

import (
	"context"
	"fmt"

	"github.com/civicstack/townhall/access"
	"github.com/civicstack/townhall/location"
)

func ExampleChecker_Filter() {
	p, done := examplePlatform()
	defer done()
	ctx := context.Background()
	// The host's own table of records, in the same database.
	type Occurrence struct {
		ID         int
		Title      string
		LocationID *string
		Category   *string
	}
	db := p.DB()
	if err := db.AutoMigrate(&Occurrence{}); err != nil {
		fmt.Println(err)
		return
	}
	_, err := p.Locations.Create(ctx, location.Location{ID: "hillside", Level: "municipality", ParentID: "lakes"})
	if err != nil {
		fmt.Println(err)
		return
	}
	at := func(s string) *string { return &s }
	db.Create([]Occurrence{
		{Title: "pothole", LocationID: at("riverton")},
		{Title: "landslide", LocationID: at("hillside")},
		{Title: "anonymous tip"},
	})

	// olga is staff in Riverton: she may update Riverton's occurrences.
	f, err := p.Checker.Filter(ctx, access.Subject{UserID: "olga"}, "occurrences", "update")
	if err != nil {
		fmt.Println(err)
		return
	}
	var titles []string
	err = db.Model(&Occurrence{}).Scopes(f.Scope(access.Columns{Location: "location_id", Category: "category"})).
		Order("id").Pluck("title", &titles).Error
	fmt.Println(titles, err)
	// Output: [pothole] <nil>
}

func ExampleChecker_LocationFilter() {
	p, done := examplePlatform()
	defer done()
	f, err := p.Checker.LocationFilter(context.Background(), access.Subject{UserID: "olga"}, "occurrences", "update")
	fmt.Println(f.Roots(), f.Contains("riverton"), f.Contains("lakes"), f.Contains(""), err)
	// Output: [riverton] true false false <nil>
}

package access

import (
	"context"

	"github.com/civicstack/townhall/internal/snapshot"
)

// DropLookupIndex forgets Subjects' index, as a write does. Tests only.
func DropLookupIndex(c *Checker) { c.lookup.Store(nil) }

// SubjectsByScan is Subjects without the index: every user decided. The
// benchmarks' baseline. Tests only.
func SubjectsByScan(ctx context.Context, c *Checker, module, action, locationID string) ([]string, error) {
	snap := c.snapshot()
	req := Request{Module: module, Action: action, Resource: &Resource{LocationID: locationID}}
	var out []string
	var err error
	snap.Users.Each(func(id string, _ *snapshot.UserState) bool {
		var d Decision
		if d, err = c.decide(snap, &Subject{UserID: id}, &req); err != nil {
			return false
		}
		if d.Allowed {
			out = append(out, id)
		}
		return true
	})
	return out, err
}

// RepublishUser publishes a snapshot in which user id's chunk is copied,
// as every write to a user does, without touching the database. Tests
// only.
func RepublishUser(c *Checker, id string) error {
	return c.publish(func(next *snapshot.Snapshot) error {
		u, _ := next.Users.Get(id)
		next.Users = next.Users.With(map[string]*snapshot.UserState{id: u})
		return nil
	})
}

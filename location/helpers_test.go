package location_test

import (
	"context"
	"fmt"
	"sort"
	"testing"

	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/civicstack/townhall/audit"
	"github.com/civicstack/townhall/internal/dbtest"
	"github.com/civicstack/townhall/internal/dbx"
	"github.com/civicstack/townhall/location"
)

// env is a migrated fresh database with an audit log.
type env struct {
	db  *gorm.DB
	log *audit.Log
}

func newEnv(t testing.TB) env {
	t.Helper()
	db := dbtest.New(t)
	require.NoError(t, dbx.Migrate(context.Background(), db, func(tx *gorm.DB) error {
		if err := audit.Migrate(tx); err != nil {
			return err
		}
		return location.Migrate(tx)
	}))
	log := audit.New(db)
	t.Cleanup(func() { _ = log.Close() })
	return env{db: db, log: log}
}

func (e env) store(t testing.TB, opts ...location.Option) *location.Store {
	t.Helper()
	s, err := location.NewStore(e.db, e.log, opts...)
	require.NoError(t, err)
	return s
}

func newStore(t testing.TB, opts ...location.Option) (*location.Store, env) {
	t.Helper()
	e := newEnv(t)
	return e.store(t, opts...), e
}

// mustCreate creates locations given as "id level parent" triples.
func mustCreate(t testing.TB, s *location.Store, locs ...location.Location) {
	t.Helper()
	for _, l := range locs {
		_, err := s.Create(context.Background(), l)
		require.NoError(t, err, "create %s", l.ID)
	}
}

func loc(id, level, parent string) location.Location {
	return location.Location{ID: id, Name: "name of " + id, Level: level, ParentID: parent}
}

func ids(locs []location.Location) []string {
	out := make([]string, len(locs))
	for i, l := range locs {
		out[i] = l.ID
	}
	return out
}

// state is everything the tree tables hold, for "nothing changed" checks.
type state struct {
	Locations []string
	Paths     []string
	Events    int
}

func dump(t testing.TB, e env) state {
	t.Helper()
	var st state
	var locs []struct {
		ID, Name, Level string
		ParentID        *string
		Depth           int
		Deleted         bool
	}
	require.NoError(t, e.db.Raw("SELECT id, name, level, parent_id, depth, deleted_at IS NOT NULL AS deleted FROM "+
		location.LocationsTable+" ORDER BY id").Scan(&locs).Error)
	for _, l := range locs {
		p := "-"
		if l.ParentID != nil {
			p = *l.ParentID
		}
		st.Locations = append(st.Locations, fmt.Sprintf("%s|%s|%s|%s|%d|%v", l.ID, l.Name, l.Level, p, l.Depth, l.Deleted))
	}
	for _, p := range paths(t, e) {
		st.Paths = append(st.Paths, fmt.Sprintf("%s>%s:%d", p.AncestorID, p.DescendantID, p.Depth))
	}
	sort.Strings(st.Paths)
	var n int64
	require.NoError(t, e.db.Raw("SELECT COUNT(*) FROM townhall_audit_events").Scan(&n).Error)
	st.Events = int(n)
	return st
}

type path struct {
	AncestorID, DescendantID string
	Depth                    int
}

func paths(t testing.TB, e env) []path {
	t.Helper()
	var ps []path
	require.NoError(t, e.db.Raw("SELECT ancestor_id, descendant_id, depth FROM "+location.PathsTable).Scan(&ps).Error)
	return ps
}

func events(t testing.TB, e env, typ, locationID string) []audit.Event {
	t.Helper()
	evs, err := e.log.Query(context.Background(), audit.Query{Type: typ, LocationID: locationID, Limit: audit.MaxLimit})
	require.NoError(t, err)
	return evs
}

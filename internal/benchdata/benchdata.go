// Package benchdata writes large fixtures straight into townhall's tables
// with bulk SQL (not through Admin), for benchmarks of loading and
// deciding at scale.
//
// The shape: one region "R", Districts districts "dNN", each with
// MunicipalitiesPerDistrict municipalities "mNNNN"; Users users "uNNNNNN",
// user i having ProfilesPerUser approved, active profiles (every 20th
// unapproved) at municipalities i, i+1, ... (mod the number of
// municipalities), and GrantsPerUser grants cycling over the roles admin,
// manager, operator, viewer at those municipalities and then at their
// districts (where no profile anchors them: they count for nothing).
package benchdata

import (
	"context"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/civicstack/townhall/internal/policy"
	"github.com/civicstack/townhall/location"
	"github.com/civicstack/townhall/users"
)

// Spec sizes a fixture.
type Spec struct {
	Districts, MunicipalitiesPerDistrict  int
	Users, ProfilesPerUser, GrantsPerUser int
}

// Municipalities returns the number of municipalities of s.
func (s Spec) Municipalities() int { return s.Districts * s.MunicipalitiesPerDistrict }

// District returns the ID of district d.
func District(d int) string { return fmt.Sprintf("d%02d", d) }

// Municipality returns the ID of municipality m.
func Municipality(m int) string { return fmt.Sprintf("m%04d", m) }

// User returns the ID of user i.
func User(i int) string { return fmt.Sprintf("u%06d", i) }

// Roles are the roles grants cycle over.
var Roles = []string{"admin", "manager", "operator", "viewer"}

// UserMunicipality returns the index of the k-th municipality where user i
// has a profile.
func (s Spec) UserMunicipality(i, k int) int { return (i + k*7919) % s.Municipalities() }

// Populate writes the fixture into db, whose tables townhall.Open has
// created. It writes no audit events: the rows appear as if imported.
func Populate(ctx context.Context, db *gorm.DB, s Spec) error {
	db = db.WithContext(ctx)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	nm := s.Municipalities()
	var locs, paths [][]any
	locs = append(locs, []any{"R", "Region", "region", nil, 0, now, now})
	paths = append(paths, []any{"R", "R", 0})
	for d := range s.Districts {
		id := District(d)
		locs = append(locs, []any{id, id, "district", "R", 1, now, now})
		paths = append(paths, []any{id, id, 0}, []any{"R", id, 1})
	}
	for m := range nm {
		id, parent := Municipality(m), District(m/s.MunicipalitiesPerDistrict)
		locs = append(locs, []any{id, id, "municipality", parent, 2, now, now})
		paths = append(paths, []any{id, id, 0}, []any{parent, id, 1}, []any{"R", id, 2})
	}
	if err := Insert(db, location.LocationsTable, []string{"id", "name", "level", "parent_id", "depth", "created_at", "updated_at"}, locs); err != nil {
		return err
	}
	if err := Insert(db, location.PathsTable, []string{"ancestor_id", "descendant_id", "depth"}, paths); err != nil {
		return err
	}
	userCols := []string{"id", "username", "username_key", "email", "first_name", "last_name", "kind",
		"is_active", "is_staff", "is_super_admin", "password_hash", "failed_logins", "created_at", "updated_at"}
	profileCols := []string{"id", "user_id", "location_id", "live_key", "department_id", "allowed_categories",
		"is_approved", "is_active", "created_at", "updated_at"}
	const chunk = 10000
	for start := 0; start < s.Users; start += chunk {
		var us, ps [][]any
		var gs []policy.Grant
		for i := start; i < min(start+chunk, s.Users); i++ {
			id := User(i)
			us = append(us, []any{id, id, id, "", "", "", string(users.Interactive), true, true, false, "", 0, now, now})
			var places []string
			for k := range s.ProfilesPerUser {
				m := Municipality(s.UserMunicipality(i, k))
				places = append(places, m)
				ps = append(ps, []any{fmt.Sprintf("p%06d_%d", i, k), id, m, "", "", "", i%20 != 0, true, now, now})
			}
			for k := range s.ProfilesPerUser {
				places = append(places, District(s.UserMunicipality(i, k)/s.MunicipalitiesPerDistrict))
			}
			seen := map[string]bool{}
			for g := 0; len(seen) < s.GrantsPerUser && g < len(places)*len(Roles); g++ {
				role, place := Roles[(i+g)%len(Roles)], places[g/len(Roles)]
				key := role + "@" + place
				if seen[key] {
					continue
				}
				seen[key] = true
				gs = append(gs, policy.Grant{UserID: id, Role: role, Domain: place})
			}
		}
		if err := Insert(db, users.UsersTable, userCols, us); err != nil {
			return err
		}
		if err := Insert(db, users.ProfilesTable, profileCols, ps); err != nil {
			return err
		}
		table, cols, rows := policy.BulkRows(gs)
		if err := Insert(db, table, cols, rows); err != nil {
			return err
		}
	}
	return nil
}

// Insert writes rows with multi-row INSERTs, keeping each statement under
// the databases' bound-parameter limits.
func Insert(db *gorm.DB, table string, cols []string, rows [][]any) error {
	per := max(1, 900/len(cols)) // the pure-Go SQLite driver binds in time quadratic in the parameter count
	one := "(" + strings.TrimSuffix(strings.Repeat("?,", len(cols)), ",") + ")"
	for start := 0; start < len(rows); start += per {
		batch := rows[start:min(start+per, len(rows))]
		args := make([]any, 0, len(batch)*len(cols))
		for _, r := range batch {
			args = append(args, r...)
		}
		sql := "INSERT INTO " + table + " (" + strings.Join(cols, ", ") + ") VALUES " +
			strings.TrimSuffix(strings.Repeat(one+",", len(batch)), ",")
		if err := db.Exec(sql, args...).Error; err != nil {
			return fmt.Errorf("insert into %s: %w", table, err)
		}
	}
	return nil
}

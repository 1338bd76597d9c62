package snapshot

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"gorm.io/gorm"

	"github.com/civicstack/townhall/internal/dbx"
	"github.com/civicstack/townhall/internal/policy"
	"github.com/civicstack/townhall/location"
	"github.com/civicstack/townhall/users"
)

// LoadSnapshot reads every row a decision needs with plain SQL scans. Users
// keep the dense indexes they have in prev (nil at the first load), so
// that handles stay valid across a reload.
func LoadSnapshot(ctx context.Context, db *gorm.DB, reg *Compiled, prev *UserTable) (*Snapshot, error) {
	db = db.WithContext(ctx)
	tree, err := location.LoadTree(ctx, db)
	if err != nil {
		return nil, fmt.Errorf("load tree: %w", err)
	}
	s := &Snapshot{
		Reg:         reg,
		Users:       newUserTable(),
		Departments: map[string]CategorySet{},
		Disabled:    map[string]map[string]struct{}{},
		ApprovalOff: map[string]struct{}{},
	}
	s.setTree(tree)
	if prev != nil && prev.Next > s.Users.Next {
		s.Users.Next = prev.Next // indexes of users gone since are not reused
	}
	if err := scanUsers(ctx, db, "", func(id string, u *UserState) { s.Users.put(id, u, prev) }); err != nil {
		return nil, err
	}
	if err := scanProfiles(ctx, db, s.Tree, "", func(userID []byte, r profileRef, unknown string) {
		if u, ok := s.Users.Get(string(userID)); ok && !u.Deleted {
			u.addProfile(r, unknown)
		}
	}); err != nil {
		return nil, err
	}
	// Grants usually come clustered by user: remember the last one.
	var lastID []byte
	var last *UserState
	if err := scanGrants(ctx, db, reg, s.Tree, "", func(userID []byte, g Grant, unknown string) {
		if last == nil || !bytes.Equal(userID, lastID) {
			last = nil
			if u, ok := s.Users.Get(string(userID)); ok && !u.Deleted {
				last, lastID = u, append(lastID[:0], userID...)
			}
		}
		if last != nil {
			last.addGrant(g, unknown)
		}
	}); err != nil {
		return nil, err
	}
	// Effective categories, built with the users, read the departments.
	if err := loadDepartments(ctx, db, "", s.Departments); err != nil {
		return nil, err
	}
	s.Users.Each(func(id string, u *UserState) bool {
		s.BuildUser(u)
		if u.isPending() {
			if s.Users.pending == nil {
				s.Users.pending = map[string]struct{}{}
			}
			s.Users.pending[id] = struct{}{}
		}
		return true
	})
	var settings []ModuleSettingRow
	if err := db.Where("enabled = ?", false).Find(&settings).Error; err != nil {
		return nil, fmt.Errorf("load module settings: %w", err)
	}
	for _, r := range settings {
		set := s.Disabled[r.Module]
		if set == nil {
			set = map[string]struct{}{}
			s.Disabled[r.Module] = set
		}
		set[r.MunicipalityID] = struct{}{}
	}
	s.reindexDisabled()
	if s.Orgs, s.Links, err = loadAffiliations(ctx, db); err != nil {
		return nil, err
	}
	if s.Sessions, err = loadSessions(ctx, db); err != nil {
		return nil, err
	}
	var approvals []MunicipalitySettingRow
	if err := db.Where("approval_required = ?", false).Find(&approvals).Error; err != nil {
		return nil, fmt.Errorf("load municipality settings: %w", err)
	}
	for _, r := range approvals {
		s.ApprovalOff[r.MunicipalityID] = struct{}{}
	}
	return s, nil
}

// The loader's queries on db (scanWhere narrows them to one ID); text
// columns are named through dbx.RawColumns.
func userQuery(db *gorm.DB) string {
	return `SELECT ` + dbx.RawColumns(db, "id", "kind") +
		`, is_active, is_super_admin, CASE WHEN deleted_at IS NULL THEN 0 ELSE 1 END FROM ` + users.UsersTable
}

// profileQuery reads live profiles.
func profileQuery(db *gorm.DB) string {
	return `SELECT ` + dbx.RawColumns(db, "user_id", "location_id", "department_id", "allowed_categories") +
		`, is_approved, is_active FROM ` + users.ProfilesTable + ` WHERE deleted_at IS NULL`
}

// departmentQuery reads departments.
func departmentQuery(db *gorm.DB) string {
	return `SELECT ` + dbx.RawColumns(db, "id", "categories") + ` FROM ` + users.DepartmentsTable
}

// placeholder returns the bind parameter syntax of db for ScanRaw.
func placeholder(db *gorm.DB) string {
	if dbx.DialectOf(db) == dbx.Postgres {
		return "$1"
	}
	return "?"
}

// scanWhere runs query, narrowed by "column = id" when id is not empty.
func scanWhere(ctx context.Context, db *gorm.DB, query, column, id string, fn func(cols [][]byte) error) error {
	var args []any
	if id != "" {
		joiner := " WHERE "
		if strings.Contains(query, " WHERE ") {
			joiner = " AND "
		}
		query += joiner + column + " = " + placeholder(db)
		args = []any{id}
	}
	return dbx.ScanRaw(ctx, db, query, args, fn)
}

// scanUsers reads users (all, or one when id is set).
func scanUsers(ctx context.Context, db *gorm.DB, id string, fn func(id string, u *UserState)) error {
	err := scanWhere(ctx, db, userQuery(db), "id", id, func(c [][]byte) error {
		fn(string(c[0]), &UserState{
			Technical:  string(c[1]) == string(users.Technical),
			Active:     dbx.ParseBool(c[2]),
			SuperAdmin: dbx.ParseBool(c[3]),
			Deleted:    dbx.ParseBool(c[4]),
		})
		return nil
	})
	if err != nil {
		return fmt.Errorf("load users: %w", err)
	}
	return nil
}

// scanProfiles reads live profiles (all, or one user's when userID is
// set); fn gets the raw user ID, valid during the call only, and the
// profile's location ID when tree does not hold it (else "").
func scanProfiles(ctx context.Context, db *gorm.DB, tree *location.Tree, userID string, fn func(userID []byte, r profileRef, unknown string)) error {
	err := scanWhere(ctx, db, profileQuery(db), "user_id", userID, func(c [][]byte) error {
		allowed, err := decodeCategories(c[3])
		if err != nil {
			return err
		}
		r := profileRef{P: ProfileState{
			Approved: dbx.ParseBool(c[4]), Active: dbx.ParseBool(c[5]), Allowed: allowed,
		}}
		unknown := ""
		if i, ok := tree.Index(string(c[1])); ok {
			r.P.Loc = i
		} else {
			unknown = string(c[1])
		}
		if len(c[2]) > 0 {
			r.P.Department = DeptOf(string(c[2]))
		}
		fn(c[0], r, unknown)
		return nil
	})
	if err != nil {
		return fmt.Errorf("load profiles: %w", err)
	}
	return nil
}

// scanGrants reads grouping rows (all, or one user's), skipping rows that
// are not townhall grants or name roles the running registry does not
// declare (they grant nothing). fn gets the raw user ID, valid during the
// call only, and the grant's location ID when tree does not hold it (else
// ""). Grants hold tree indexes, so a million grants cost no string each.
func scanGrants(ctx context.Context, db *gorm.DB, reg *Compiled, tree *location.Tree, userID string, fn func(userID []byte, g Grant, unknown string)) error {
	err := policy.ScanGrants(ctx, db, userID, func(user, role, domain []byte) error {
		ri, known := reg.RoleIx[string(role)]
		if !known {
			return nil
		}
		g := Grant{Role: uint16(ri), Loc: platformLoc}
		unknown := ""
		if string(domain) != policy.PlatformDomain {
			if i, ok := tree.Index(string(domain)); ok {
				g.Loc = i
			} else {
				unknown = string(domain)
			}
		}
		fn(user, g, unknown)
		return nil
	})
	if err != nil {
		return fmt.Errorf("load grants: %w", err)
	}
	return nil
}

// loadDepartments reads departments (all, or one) into into.
func loadDepartments(ctx context.Context, db *gorm.DB, id string, into map[string]CategorySet) error {
	err := scanWhere(ctx, db, departmentQuery(db), "id", id, func(c [][]byte) error {
		set, err := decodeCategories(c[1])
		if err != nil {
			return err
		}
		into[string(c[0])] = set
		return nil
	})
	if err != nil {
		return fmt.Errorf("load departments: %w", err)
	}
	return nil
}

// decodeCategories decodes a department's stored categories (nil: none set).
func decodeCategories(raw []byte) (CategorySet, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	var cats []string
	if err := json.Unmarshal(raw, &cats); err != nil {
		return nil, fmt.Errorf("decode categories: %w", err)
	}
	return NewCategorySet(cats), nil
}

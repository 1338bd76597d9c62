package users

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/civicstack/townhall/audit"
	"github.com/civicstack/townhall/internal/dbx"
	"github.com/civicstack/townhall/location"
)

// Profile is a user's membership at a location, normally a municipality.
// Empty AllowedCategories means every category (see EffectiveCategories).
type Profile struct {
	ID                string
	UserID            string
	LocationID        string
	DepartmentID      string
	AllowedCategories []string
	IsApproved        bool
	IsActive          bool
	CreatedAt         time.Time
	UpdatedAt         time.Time
}

// ProfileUpdate names the fields ProfileStore.Update changes; nil fields
// stay. An empty DepartmentID removes the department; an empty category list
// means every category.
type ProfileUpdate struct {
	DepartmentID      *string
	AllowedCategories *[]string
}

// Locations is what ProfileStore needs of the location tree; location.Store
// satisfies it. Get returns location.ErrNotFound for an unknown or deleted
// location.
type Locations interface {
	Get(ctx context.Context, id string) (*location.Location, error)
}

// maxTreeDepth bounds walks up the location tree, so a corrupted tree (a
// cycle) cannot loop forever.
const maxTreeDepth = 256

// ProfileStore keeps profiles (memberships) and departments. Its writes are
// unguarded and audited with the subject in the context, or "system";
// access.Admin runs the same writes inside its own guarded, audited
// transactions. It is safe for concurrent use.
type ProfileStore struct {
	db   *gorm.DB
	log  *audit.Log
	locs Locations
	opt  options
}

// NewProfileStore returns a ProfileStore on db (migrated with Migrate) that
// audits to log and checks locations with locs.
func NewProfileStore(db *gorm.DB, log *audit.Log, locs Locations, opts ...Option) *ProfileStore {
	return &ProfileStore{db: db, log: log, locs: locs, opt: buildOptions(opts)}
}

// WithLocations returns a copy of the store that checks locations with
// locs: a reader bound to a transaction lets the in-transaction creation
// of profiles and departments (access.Admin's import) see locations
// created earlier in it.
func (s *ProfileStore) WithLocations(locs Locations) *ProfileStore {
	c := *s
	c.locs = locs
	return &c
}

// Create adds profile p, stored as given (the zero Profile is inactive and
// unapproved; Admin.AddMember is the guarded way that applies the approval
// rules). ID is optional. ErrNotFound for an unknown or deleted user or
// department, location.ErrNotFound for an unknown location, ErrInvalidInput
// for malformed fields or a department that does not belong to the
// profile's location or one of its ancestors, ErrDuplicate when the user
// already has a live profile there. Audited as TypeProfileCreated.
func (s *ProfileStore) Create(ctx context.Context, p Profile) (*Profile, error) {
	row, err := s.prepare(ctx, s.db, p)
	if err != nil {
		return nil, fmt.Errorf("create profile: %w", err)
	}
	err = dbx.Tx(ctx, s.db, func(tx *gorm.DB) error {
		if err := s.insert(tx, row); err != nil {
			return err
		}
		details := map[string]any{"profile_id": row.ID, "is_approved": row.IsApproved, "is_active": row.IsActive}
		if row.DepartmentID != "" {
			details["department_id"] = row.DepartmentID
		}
		return s.log.RecordTx(ctx, tx, audit.Event{
			Type:       audit.TypeProfileCreated,
			UserID:     row.UserID,
			LocationID: row.LocationID,
			Details:    details,
		})
	})
	if err != nil {
		return nil, fmt.Errorf("create profile: %w", err)
	}
	if err := s.opt.notify(ctx, Change{UserID: row.UserID}); err != nil {
		return nil, fmt.Errorf("create profile: %w", err)
	}
	return toProfile(row)
}

// createTx is Create inside the caller's transaction tx, without the audit
// event (the caller records its own; package txwrite's CreateProfile). The
// location checks go through Locations, not tx.
func (s *ProfileStore) createTx(ctx context.Context, tx *gorm.DB, p Profile) (*Profile, error) {
	if tx == nil {
		return nil, fmt.Errorf("create profile: %w: nil transaction", ErrInvalidInput)
	}
	tx = tx.WithContext(ctx)
	row, err := s.prepare(ctx, tx, p)
	if err != nil {
		return nil, fmt.Errorf("create profile: %w", err)
	}
	if err := s.insert(tx, row); err != nil {
		return nil, fmt.Errorf("create profile: %w", err)
	}
	return toProfile(row)
}

// prepare validates p, checks its location and department (reading
// departments through db) and builds its row.
func (s *ProfileStore) prepare(ctx context.Context, db *gorm.DB, p Profile) (*profileRow, error) {
	if p.ID == "" {
		p.ID = dbx.NewID()
	} else if err := validateID(p.ID, "profile id"); err != nil {
		return nil, err
	}
	if err := validateID(p.UserID, "user id"); err != nil {
		return nil, err
	}
	if err := validateID(p.LocationID, "location id"); err != nil {
		return nil, err
	}
	if p.DepartmentID != "" {
		if err := validateID(p.DepartmentID, "department id"); err != nil {
			return nil, err
		}
	}
	cats, err := normalizeCategories(p.AllowedCategories)
	if err != nil {
		return nil, err
	}
	loc, err := s.location(ctx, p.LocationID)
	if err != nil {
		return nil, err
	}
	if err := s.checkDepartment(ctx, db, p.DepartmentID, loc); err != nil {
		return nil, err
	}
	now := s.opt.nowUTC()
	return &profileRow{
		ID:                p.ID,
		UserID:            p.UserID,
		LocationID:        p.LocationID,
		DepartmentID:      p.DepartmentID,
		AllowedCategories: encodeCategories(cats),
		IsApproved:        p.IsApproved,
		IsActive:          p.IsActive,
		CreatedAt:         now,
		UpdatedAt:         now,
	}, nil
}

// insert writes row after checking, under a row lock, that its user is live
// (so a concurrent deletion cannot leave a profile behind).
func (s *ProfileStore) insert(tx *gorm.DB, row *profileRow) error {
	if _, err := lockUser(tx, row.UserID); err != nil {
		return fmt.Errorf("user %q: %w", row.UserID, err)
	}
	if err := tx.Create(row).Error; err != nil {
		if dbx.IsUniqueViolation(err) {
			return fmt.Errorf("%w: user %q already has a profile at %q, or the profile id is taken",
				ErrDuplicate, row.UserID, row.LocationID)
		}
		return err
	}
	return nil
}

func (s *ProfileStore) location(ctx context.Context, id string) (*location.Location, error) {
	if s.locs == nil {
		return nil, fmt.Errorf("%w: no location store configured", ErrInvalidInput)
	}
	loc, err := s.locs.Get(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("location %q: %w", id, err)
	}
	if loc == nil {
		return nil, fmt.Errorf("location %q: %w", id, location.ErrNotFound)
	}
	return loc, nil
}

// checkDepartment accepts an empty department ID, or a department of the
// profile's location or of one of its ancestors: a profile at a village may
// work in a department of its municipality; a profile above the
// municipality level has no municipality and so no department.
func (s *ProfileStore) checkDepartment(ctx context.Context, db *gorm.DB, deptID string, loc *location.Location) error {
	if deptID == "" {
		return nil
	}
	var d departmentRow
	if err := db.WithContext(ctx).Where("id = ?", deptID).Take(&d).Error; err != nil {
		return fmt.Errorf("department %q: %w", deptID, notFound(err))
	}
	for depth := 0; depth < maxTreeDepth; depth++ {
		if loc.ID == d.MunicipalityID {
			return nil
		}
		if loc.ParentID == "" {
			break
		}
		var err error
		if loc, err = s.location(ctx, loc.ParentID); err != nil {
			return err
		}
	}
	return fmt.Errorf("%w: department %q belongs to municipality %q, which does not contain the profile's location",
		ErrInvalidInput, deptID, d.MunicipalityID)
}

// Get returns the live profile of userID at locationID; ErrNotFound when
// there is none.
func (s *ProfileStore) Get(ctx context.Context, userID, locationID string) (*Profile, error) {
	return s.GetTx(ctx, s.db, userID, locationID)
}

// GetTx is Get inside the caller's transaction tx.
func (s *ProfileStore) GetTx(ctx context.Context, tx *gorm.DB, userID, locationID string) (*Profile, error) {
	if tx == nil {
		return nil, fmt.Errorf("get profile: %w: nil transaction", ErrInvalidInput)
	}
	row, err := liveProfile(tx.WithContext(ctx), userID, locationID, false)
	if err != nil {
		return nil, fmt.Errorf("get profile: %w", err)
	}
	return toProfile(row)
}

// liveProfile reads the live profile of userID at locationID, locking it
// when lock is set.
func liveProfile(tx *gorm.DB, userID, locationID string, lock bool) (*profileRow, error) {
	if err := validateID(userID, "user id"); err != nil {
		return nil, err
	}
	if err := validateID(locationID, "location id"); err != nil {
		return nil, err
	}
	q := tx
	if lock {
		q = forUpdate(tx)
	}
	var row profileRow
	if err := q.Where("user_id = ? AND location_id = ? AND live_key = ?", userID, locationID, "").Take(&row).Error; err != nil {
		return nil, fmt.Errorf("profile of %q at %q: %w", userID, locationID, notFound(err))
	}
	return &row, nil
}

// ListForUser returns the live profiles of userID ordered by location ID; an
// empty list for an unknown or deleted user.
func (s *ProfileStore) ListForUser(ctx context.Context, userID string) ([]Profile, error) {
	if err := validateID(userID, "user id"); err != nil {
		return nil, fmt.Errorf("list profiles: %w", err)
	}
	db := s.db.WithContext(ctx)
	live, err := liveUser(db, userID)
	if err != nil {
		return nil, fmt.Errorf("list profiles: %w", err)
	}
	var rows []profileRow
	if live {
		if err := db.Where("user_id = ?", userID).Order("location_id, id").Find(&rows).Error; err != nil {
			return nil, fmt.Errorf("list profiles: %w", err)
		}
	}
	out := make([]Profile, 0, len(rows))
	for i := range rows {
		p, err := toProfile(&rows[i])
		if err != nil {
			return nil, fmt.Errorf("list profiles: %w", err)
		}
		out = append(out, *p)
	}
	return out, nil
}

// Update changes the department and allowed categories of the live profile
// of userID at locationID. With no field set it returns the profile
// unchanged and writes nothing. Audited as TypeProfileUpdated, naming the
// changed fields.
func (s *ProfileStore) Update(ctx context.Context, userID, locationID string, u ProfileUpdate) (*Profile, error) {
	if err := validateID(userID, "user id"); err != nil {
		return nil, fmt.Errorf("update profile: %w", err)
	}
	if err := validateID(locationID, "location id"); err != nil {
		return nil, fmt.Errorf("update profile: %w", err)
	}
	set := map[string]any{}
	var fields []string
	if u.DepartmentID != nil {
		if id := *u.DepartmentID; id != "" {
			if err := validateID(id, "department id"); err != nil {
				return nil, fmt.Errorf("update profile: %w", err)
			}
			loc, err := s.location(ctx, locationID)
			if err != nil {
				return nil, fmt.Errorf("update profile: %w", err)
			}
			if err := s.checkDepartment(ctx, s.db, id, loc); err != nil {
				return nil, fmt.Errorf("update profile: %w", err)
			}
		}
		set["department_id"] = *u.DepartmentID
		fields = append(fields, "department_id")
	}
	if u.AllowedCategories != nil {
		cats, err := normalizeCategories(*u.AllowedCategories)
		if err != nil {
			return nil, fmt.Errorf("update profile: %w", err)
		}
		set["allowed_categories"] = encodeCategories(cats)
		fields = append(fields, "allowed_categories")
	}
	if len(set) == 0 {
		return s.Get(ctx, userID, locationID)
	}
	set["updated_at"] = s.opt.nowUTC()
	var out *Profile
	err := dbx.Tx(ctx, s.db, func(tx *gorm.DB) error {
		row, err := liveProfile(tx, userID, locationID, true)
		if err != nil {
			return err
		}
		if err := tx.Model(&profileRow{}).Where("id = ?", row.ID).Updates(set).Error; err != nil {
			return err
		}
		if err := s.log.RecordTx(ctx, tx, audit.Event{
			Type:       audit.TypeProfileUpdated,
			UserID:     userID,
			LocationID: locationID,
			Details:    map[string]any{"profile_id": row.ID, "fields": fields},
		}); err != nil {
			return err
		}
		out, err = s.GetTx(ctx, tx, userID, locationID)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("update profile: %w", err)
	}
	if err := s.opt.notify(ctx, Change{UserID: userID}); err != nil {
		return nil, fmt.Errorf("update profile: %w", err)
	}
	return out, nil
}

// setTx sets the columns set of the live profile of userID at locationID
// inside the caller's transaction, without audit (the caller records it).
// Setting a value the profile already has is not an error. ErrNotFound when
// there is no such profile. Only access.Admin changes approval and
// activity (package txwrite).
func (s *ProfileStore) setTx(ctx context.Context, tx *gorm.DB, userID, locationID string, set map[string]any, op string) error {
	if tx == nil {
		return fmt.Errorf("%s: %w: nil transaction", op, ErrInvalidInput)
	}
	tx = tx.WithContext(ctx)
	row, err := liveProfile(tx, userID, locationID, true)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	set["updated_at"] = s.opt.nowUTC()
	if err := tx.Model(&profileRow{}).Where("id = ?", row.ID).Updates(set).Error; err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return nil
}

// deleteForUserTx soft-deletes every live profile of userID inside the
// caller's transaction (the profile part of Admin.DeleteUser). A user with
// no profiles is not an error.
func (s *ProfileStore) deleteForUserTx(ctx context.Context, tx *gorm.DB, userID string) error {
	tx, err := userTx(ctx, tx, userID)
	if err != nil {
		return fmt.Errorf("delete profiles: %w", err)
	}
	if err := s.softDelete(tx, "user_id = ?", userID); err != nil {
		return fmt.Errorf("delete profiles: %w", err)
	}
	return nil
}

// softDelete soft-deletes the live profiles matching the condition: the
// live key takes the profile's ID, freeing (user, location) for a new one.
func (s *ProfileStore) softDelete(tx *gorm.DB, cond string, args ...any) error {
	now := s.opt.nowUTC()
	return tx.Model(&profileRow{}).Where(cond, args...).Updates(map[string]any{
		"live_key":   gorm.Expr("id"),
		"deleted_at": now,
		"updated_at": now,
	}).Error
}

func toProfile(r *profileRow) (*Profile, error) {
	cats, err := decodeCategories(r.AllowedCategories)
	if err != nil {
		return nil, fmt.Errorf("profile %q: %w", r.ID, err)
	}
	return &Profile{
		ID:                r.ID,
		UserID:            r.UserID,
		LocationID:        r.LocationID,
		DepartmentID:      r.DepartmentID,
		AllowedCategories: cats,
		IsApproved:        r.IsApproved,
		IsActive:          r.IsActive,
		CreatedAt:         r.CreatedAt.UTC(),
		UpdatedAt:         r.UpdatedAt.UTC(),
	}, nil
}

package users

import (
	"context"
	"fmt"

	"gorm.io/gorm"

	"github.com/civicstack/townhall/audit"
	"github.com/civicstack/townhall/internal/dbx"
	"github.com/civicstack/townhall/location"
)

// Department belongs to a municipality and may list the categories it
// handles (empty: every category).
type Department struct {
	ID             string
	MunicipalityID string
	Name           string
	Categories     []string
}

// MaxDepartmentNameRunes is the longest department name.
const MaxDepartmentNameRunes = 150

// CreateDepartment adds department d. ID is optional; MunicipalityID must
// name a location of the municipality level (location.ErrNotFound when
// unknown; ErrInvalidInput with location.ErrInvalidLevel for another level);
// Name is required; Categories are validated like profile categories and
// stored sorted, without duplicates. ErrDuplicate for a taken ID. Audited as
// TypeDepartmentCreated at the municipality.
func (s *ProfileStore) CreateDepartment(ctx context.Context, d Department) (*Department, error) {
	var out *Department
	err := dbx.Tx(ctx, s.db, func(tx *gorm.DB) error {
		var err error
		if out, err = s.createDepartmentTx(ctx, tx, d); err != nil {
			return err
		}
		return s.log.RecordTx(ctx, tx, audit.Event{
			Type:       audit.TypeDepartmentCreated,
			LocationID: out.MunicipalityID,
			Details:    map[string]any{"department_id": out.ID},
		})
	})
	if err != nil {
		return nil, err
	}
	if err := s.opt.notify(ctx, Change{DepartmentID: out.ID}); err != nil {
		return nil, fmt.Errorf("create department: %w", err)
	}
	return out, nil
}

// createDepartmentTx is CreateDepartment inside the caller's transaction
// tx, without the audit event (the caller records its own) and without
// WithOnChange's callback (package txwrite's CreateDepartment). The
// municipality check goes through Locations.
func (s *ProfileStore) createDepartmentTx(ctx context.Context, tx *gorm.DB, d Department) (*Department, error) {
	if tx == nil {
		return nil, fmt.Errorf("create department: %w: nil transaction", ErrInvalidInput)
	}
	if d.ID == "" {
		d.ID = dbx.NewID()
	} else if err := validateID(d.ID, "department id"); err != nil {
		return nil, fmt.Errorf("create department: %w", err)
	}
	if err := validateID(d.MunicipalityID, "municipality id"); err != nil {
		return nil, fmt.Errorf("create department: %w", err)
	}
	if err := validateLabel(d.Name, "department name", MaxDepartmentNameRunes); err != nil {
		return nil, fmt.Errorf("create department: %w", err)
	}
	cats, err := normalizeCategories(d.Categories)
	if err != nil {
		return nil, fmt.Errorf("create department: %w", err)
	}
	if _, err := s.municipality(ctx, d.MunicipalityID); err != nil {
		return nil, fmt.Errorf("create department: %w", err)
	}
	now := s.opt.nowUTC()
	row := departmentRow{
		ID:             d.ID,
		MunicipalityID: d.MunicipalityID,
		Name:           d.Name,
		Categories:     encodeCategories(cats),
		CreatedAt:      now,
		UpdatedAt:      now,
	}
	if err := tx.WithContext(ctx).Create(&row).Error; err != nil {
		if dbx.IsUniqueViolation(err) {
			return nil, fmt.Errorf("create department: %w: department id %q taken", ErrDuplicate, d.ID)
		}
		return nil, fmt.Errorf("create department: %w", err)
	}
	return toDepartment(&row)
}

// municipality returns location id, which must be of the municipality level.
func (s *ProfileStore) municipality(ctx context.Context, id string) (*location.Location, error) {
	loc, err := s.location(ctx, id)
	if err != nil {
		return nil, err
	}
	if loc.Level != location.Municipality {
		return nil, fmt.Errorf("%w: %w: location %q is a %s, not a %s",
			ErrInvalidInput, location.ErrInvalidLevel, id, loc.Level, location.Municipality)
	}
	return loc, nil
}

// GetDepartment returns the department with this ID; ErrNotFound when
// unknown.
func (s *ProfileStore) GetDepartment(ctx context.Context, id string) (*Department, error) {
	if err := validateID(id, "department id"); err != nil {
		return nil, fmt.Errorf("get department: %w", err)
	}
	var row departmentRow
	if err := s.db.WithContext(ctx).Where("id = ?", id).Take(&row).Error; err != nil {
		return nil, fmt.Errorf("get department %q: %w", id, notFound(err))
	}
	return toDepartment(&row)
}

// Departments lists the departments of a municipality by name; an empty list
// for an unknown municipality.
func (s *ProfileStore) Departments(ctx context.Context, municipalityID string) ([]Department, error) {
	if err := validateID(municipalityID, "municipality id"); err != nil {
		return nil, fmt.Errorf("list departments: %w", err)
	}
	var rows []departmentRow
	err := s.db.WithContext(ctx).Where("municipality_id = ?", municipalityID).Order("name, id").Find(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("list departments: %w", err)
	}
	out := make([]Department, 0, len(rows))
	for i := range rows {
		d, err := toDepartment(&rows[i])
		if err != nil {
			return nil, fmt.Errorf("list departments: %w", err)
		}
		out = append(out, *d)
	}
	return out, nil
}

func toDepartment(r *departmentRow) (*Department, error) {
	cats, err := decodeCategories(r.Categories)
	if err != nil {
		return nil, fmt.Errorf("department %q: %w", r.ID, err)
	}
	return &Department{ID: r.ID, MunicipalityID: r.MunicipalityID, Name: r.Name, Categories: cats}, nil
}

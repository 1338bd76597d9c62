package affiliation

import (
	"context"
	"fmt"
	"slices"

	"gorm.io/gorm"

	"github.com/civicstack/townhall/audit"
	"github.com/civicstack/townhall/internal/dbx"
	"github.com/civicstack/townhall/location"
)

// Organisation is an external partner (health facility, policy holder, ...)
// at a location. Kind is free text. Services are the modules active for
// it: module names, sorted and without duplicates; never nil on output.
type Organisation struct {
	ID         string
	Name       string
	Kind       string
	LocationID string
	Services   []string
}

// CreateOrganisation adds o and returns it as stored. An empty ID means
// "generate one"; an ID in use, or once used by a deleted organisation, is
// ErrDuplicate. Name (1-200 characters) and Kind (1-64 characters) are
// required; Services are de-duplicated and sorted, each 1-64 characters of
// A-Z a-z 0-9 _ - (ErrInvalidInput otherwise). LocationID must name a live
// location (ErrNotFound, also matching location.ErrNotFound). Audited as
// organisation_created.
func (s *Store) CreateOrganisation(ctx context.Context, o Organisation) (*Organisation, error) {
	row, services, err := s.newOrganisationRow(o)
	if err != nil {
		return nil, fmt.Errorf("create organisation: %w", err)
	}
	err = s.write(ctx, func(tx *gorm.DB) ([]audit.Event, error) {
		if err := insertOrganisation(tx, row); err != nil {
			return nil, err
		}
		return []audit.Event{{
			Type:       audit.TypeOrganisationCreated,
			LocationID: row.LocationID,
			Details:    map[string]any{"organisation_id": row.ID, "services": services},
		}}, nil
	})
	if err != nil {
		return nil, fmt.Errorf("create organisation %q: %w", row.ID, err)
	}
	return toOrganisation(row)
}

// createOrganisationTx is CreateOrganisation inside the caller's
// transaction tx, without the audit event (the caller records its own) and
// without WithOnChange's callback (package txwrite's CreateOrganisation).
func (s *Store) createOrganisationTx(ctx context.Context, tx *gorm.DB, o Organisation) (*Organisation, error) {
	row, _, err := s.newOrganisationRow(o)
	if err != nil {
		return nil, fmt.Errorf("create organisation: %w", err)
	}
	if tx, err = s.inTx(ctx, tx); err != nil {
		return nil, fmt.Errorf("create organisation: %w", err)
	}
	if err := insertOrganisation(tx, row); err != nil {
		return nil, fmt.Errorf("create organisation %q: %w", row.ID, err)
	}
	return toOrganisation(row)
}

func (s *Store) newOrganisationRow(o Organisation) (*organisationRow, []string, error) {
	if o.ID == "" {
		o.ID = dbx.NewID()
	}
	if err := checkID("organisation id", o.ID); err != nil {
		return nil, nil, err
	}
	if err := checkText("name", o.Name, MaxNameLen); err != nil {
		return nil, nil, err
	}
	if err := checkText("kind", o.Kind, MaxKindLen); err != nil {
		return nil, nil, err
	}
	if err := checkID("location id", o.LocationID); err != nil {
		return nil, nil, err
	}
	services, err := normaliseServices(o.Services)
	if err != nil {
		return nil, nil, err
	}
	if s == nil || s.now == nil {
		return nil, nil, fmt.Errorf("%w: store not created with NewStore", ErrInvalidInput)
	}
	now := s.nowUTC()
	return &organisationRow{
		ID:         o.ID,
		Name:       o.Name,
		Kind:       o.Kind,
		LocationID: o.LocationID,
		Services:   encodeServices(services),
		CreatedAt:  now,
		UpdatedAt:  now,
	}, services, nil
}

func insertOrganisation(tx *gorm.DB, row *organisationRow) error {
	// A share lock on the location row keeps a concurrent location delete
	// from slipping in between this check and the commit.
	var locs []string
	err := tx.Raw("SELECT id FROM "+location.LocationsTable+" WHERE id = ? AND deleted_at IS NULL"+dbx.SharedLock(tx), row.LocationID).
		Scan(&locs).Error
	if err != nil {
		return fmt.Errorf("read location: %w", err)
	}
	if len(locs) == 0 {
		return fmt.Errorf("location %q: %w: %w", row.LocationID, ErrNotFound, location.ErrNotFound)
	}
	var taken int64
	if err := tx.Model(&organisationRow{}).Where("id = ?", row.ID).Count(&taken).Error; err != nil {
		return fmt.Errorf("read organisation: %w", err)
	}
	if taken > 0 {
		return fmt.Errorf("%w: organisation id %q is taken", ErrDuplicate, row.ID)
	}
	if err := tx.Create(row).Error; err != nil {
		if dbx.IsUniqueViolation(err) {
			return fmt.Errorf("%w: organisation id %q is taken", ErrDuplicate, row.ID)
		}
		return fmt.Errorf("insert organisation: %w", err)
	}
	return nil
}

// GetOrganisation returns the live organisation id: ErrNotFound when it is
// unknown or deleted, ErrInvalidInput when id is malformed.
func (s *Store) GetOrganisation(ctx context.Context, id string) (*Organisation, error) {
	db, err := s.readerFor(ctx, "get organisation", "organisation id", id)
	if err != nil {
		return nil, err
	}
	row, err := readOrganisation(db, id, "")
	if err != nil {
		return nil, fmt.Errorf("get organisation %q: %w", id, err)
	}
	return toOrganisation(row)
}

// UpdateServices replaces the services of live organisation id (rules as
// in CreateOrganisation; an empty list leaves none). ErrNotFound for an
// unknown or deleted organisation. Audited as organisation_updated
// (TypeOrganisationUpdated); a call that changes nothing writes nothing.
func (s *Store) UpdateServices(ctx context.Context, id string, services []string) error {
	if err := checkID("organisation id", id); err != nil {
		return fmt.Errorf("update services: %w", err)
	}
	norm, err := normaliseServices(services)
	if err != nil {
		return fmt.Errorf("update services of %q: %w", id, err)
	}
	err = s.write(ctx, func(tx *gorm.DB) ([]audit.Event, error) {
		row, err := readOrganisation(tx, id, exclusive(tx))
		if err != nil {
			return nil, err
		}
		old, err := decodeServices(row.Services)
		if err != nil {
			return nil, err
		}
		if slices.Equal(old, norm) {
			return nil, nil
		}
		err = tx.Model(&organisationRow{}).Where("id = ?", id).Updates(map[string]any{
			"services":   encodeServices(norm),
			"updated_at": s.nowUTC(),
		}).Error
		if err != nil {
			return nil, fmt.Errorf("update organisation: %w", err)
		}
		return []audit.Event{{
			Type:       TypeOrganisationUpdated,
			LocationID: row.LocationID,
			Details:    map[string]any{"organisation_id": id, "services": norm},
		}}, nil
	})
	if err != nil {
		return fmt.Errorf("update services of %q: %w", id, err)
	}
	return nil
}

// readOrganisation reads the live organisation row id; lock is appended to
// the query (a locking clause inside writes).
func readOrganisation(db *gorm.DB, id, lock string) (*organisationRow, error) {
	var rows []organisationRow
	err := db.Raw("SELECT id, name, kind, location_id, services FROM "+OrganisationsTable+
		" WHERE id = ? AND deleted_at IS NULL"+lock, id).Scan(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("read organisation: %w", err)
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("organisation %q: %w", id, ErrNotFound)
	}
	return &rows[0], nil
}

func toOrganisation(r *organisationRow) (*Organisation, error) {
	services, err := decodeServices(r.Services)
	if err != nil {
		return nil, err
	}
	return &Organisation{ID: r.ID, Name: r.Name, Kind: r.Kind, LocationID: r.LocationID, Services: services}, nil
}

// LoadOrganisations returns every organisation that is not deleted,
// ordered by ID: the checker's snapshot loader reads them through db (any
// *gorm.DB on townhall's database, a transaction included).
func LoadOrganisations(ctx context.Context, db *gorm.DB) ([]Organisation, error) {
	if ctx == nil || db == nil {
		return nil, fmt.Errorf("load organisations: %w: nil context or database", ErrInvalidInput)
	}
	var rows []organisationRow
	err := db.WithContext(ctx).Raw("SELECT id, name, kind, location_id, services FROM " + OrganisationsTable +
		" WHERE deleted_at IS NULL ORDER BY id").Scan(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("load organisations: %w", err)
	}
	return toOrganisations(rows)
}

func toOrganisations(rows []organisationRow) ([]Organisation, error) {
	out := make([]Organisation, 0, len(rows))
	for i := range rows {
		o, err := toOrganisation(&rows[i])
		if err != nil {
			return nil, err
		}
		out = append(out, *o)
	}
	return out, nil
}

package affiliation

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"gorm.io/gorm"

	"github.com/civicstack/townhall/audit"
	"github.com/civicstack/townhall/internal/dbx"
	"github.com/civicstack/townhall/users"
)

// Link affiliates a user with an organisation during the window
// [ValidFrom, ValidTo); a nil bound leaves that side open. A link is live
// when it is not deleted and the store's clock lies inside its window.
type Link struct {
	UserID         string
	OrganisationID string
	ValidFrom      *time.Time
	ValidTo        *time.Time
}

// liveAt reports whether now lies inside l's window.
func (l *Link) liveAt(now time.Time) bool {
	return (l.ValidFrom == nil || !l.ValidFrom.After(now)) && (l.ValidTo == nil || l.ValidTo.After(now))
}

// Member is a user with a live link to an organisation, with the user's
// names and email and the link's window.
type Member struct {
	UserID    string
	Username  string
	Email     string
	FirstName string
	LastName  string
	ValidFrom *time.Time
	ValidTo   *time.Time
}

// Link affiliates l.UserID with l.OrganisationID for l's window. The user
// must exist and not be deleted (ErrNotFound, also matching
// users.ErrNotFound); the organisation likewise (ErrNotFound). ValidTo
// must be after ValidFrom when both are set, and both must lie within the
// years 1000-9999 (ErrInvalidInput); times are kept in UTC at microsecond
// precision. A window that lies wholly in the past is accepted: it records
// history. A user may have several links to one organisation, but their
// windows never overlap: a window that overlaps a non-deleted link of the
// same pair is ErrDuplicate (to change a window, Unlink and Link again).
// Audited as link.
func (s *Store) Link(ctx context.Context, l Link) error {
	err := s.write(ctx, func(tx *gorm.DB) ([]audit.Event, error) {
		org, stored, err := s.linkTx(ctx, tx, l)
		if err != nil {
			return nil, err
		}
		details := map[string]any{"organisation_id": stored.OrganisationID}
		if stored.ValidFrom != nil {
			details["valid_from"] = stored.ValidFrom.Format(time.RFC3339Nano)
		}
		if stored.ValidTo != nil {
			details["valid_to"] = stored.ValidTo.Format(time.RFC3339Nano)
		}
		return []audit.Event{{Type: audit.TypeLink, UserID: stored.UserID, LocationID: org.LocationID, Details: details}}, nil
	})
	if err != nil {
		return fmt.Errorf("link user %q to organisation %q: %w", l.UserID, l.OrganisationID, err)
	}
	return nil
}

func (s *Store) linkTx(ctx context.Context, tx *gorm.DB, l Link) (*organisationRow, Link, error) {
	l, err := normaliseLink(l)
	if err != nil {
		return nil, l, err
	}
	if tx, err = s.inTx(ctx, tx); err != nil {
		return nil, l, err
	}
	// The organisation row is locked first (DeleteOrganisation takes the
	// same order: organisation, then users), which serialises the links of
	// one organisation: the overlap check below cannot race.
	org, err := readOrganisation(tx, l.OrganisationID, exclusive(tx))
	if err != nil {
		return nil, l, err
	}
	if err := checkUser(tx, l.UserID); err != nil {
		return nil, l, err
	}
	var existing []Link
	err = tx.Raw("SELECT valid_from, valid_to FROM "+LinksTable+
		" WHERE user_id = ? AND organisation_id = ? AND deleted_at IS NULL"+dbx.SharedLock(tx), l.UserID, l.OrganisationID).
		Scan(&existing).Error
	if err != nil {
		return nil, l, fmt.Errorf("read links: %w", err)
	}
	for _, e := range existing {
		if overlaps(&l, &e) {
			return nil, l, fmt.Errorf("%w: window overlaps the link %s", ErrDuplicate, windowString(&e))
		}
	}
	now := s.nowUTC()
	row := linkRow{
		ID:             dbx.NewID(),
		UserID:         l.UserID,
		OrganisationID: l.OrganisationID,
		ValidFrom:      l.ValidFrom,
		ValidTo:        l.ValidTo,
		CreatedAt:      now,
		UpdatedAt:      now,
	}
	if err := tx.Create(&row).Error; err != nil {
		return nil, l, fmt.Errorf("insert link: %w", err)
	}
	return org, l, nil
}

// checkUser reports ErrNotFound (and users.ErrNotFound) unless user id
// exists and is not deleted. The share lock keeps a concurrent user
// deletion from slipping in before the commit.
func checkUser(tx *gorm.DB, id string) error {
	var ids []string
	err := tx.Raw("SELECT id FROM "+users.UsersTable+" WHERE id = ? AND deleted_at IS NULL"+dbx.SharedLock(tx), id).Scan(&ids).Error
	if err != nil {
		return fmt.Errorf("read user: %w", err)
	}
	if len(ids) == 0 {
		return fmt.Errorf("user %q: %w: %w", id, ErrNotFound, users.ErrNotFound)
	}
	return nil
}

// overlaps reports whether the windows of a and b share an instant:
// [af, at) and [bf, bt) overlap when af < bt and bf < at, a nil bound
// being unbounded.
func overlaps(a, b *Link) bool {
	return before(a.ValidFrom, b.ValidTo) && before(b.ValidFrom, a.ValidTo)
}

func before(from, to *time.Time) bool {
	return from == nil || to == nil || from.Before(*to)
}

func windowString(l *Link) string {
	bound := func(t *time.Time, open string) string {
		if t == nil {
			return open
		}
		return t.UTC().Format(time.RFC3339Nano)
	}
	return "[" + bound(l.ValidFrom, "-inf") + ", " + bound(l.ValidTo, "+inf") + ")"
}

// Unlink ends the affiliation of a user with an organisation: it
// soft-deletes the pair's links that are live or have not started yet (a
// deleted link is never live again), and keeps links whose window has
// already passed, as history. ErrNotFound when the pair has no such link
// (the organisation unknown or deleted included). Audited as unlink.
func (s *Store) Unlink(ctx context.Context, userID, organisationID string) error {
	err := s.write(ctx, func(tx *gorm.DB) ([]audit.Event, error) {
		org, n, err := s.unlinkTx(ctx, tx, userID, organisationID)
		if err != nil {
			return nil, err
		}
		return []audit.Event{{
			Type:       audit.TypeUnlink,
			UserID:     userID,
			LocationID: org.LocationID,
			Details:    map[string]any{"organisation_id": organisationID, "links_ended": n},
		}}, nil
	})
	if err != nil {
		return fmt.Errorf("unlink user %q from organisation %q: %w", userID, organisationID, err)
	}
	return nil
}

func (s *Store) unlinkTx(ctx context.Context, tx *gorm.DB, userID, organisationID string) (*organisationRow, int, error) {
	if err := checkID("user id", userID); err != nil {
		return nil, 0, err
	}
	if err := checkID("organisation id", organisationID); err != nil {
		return nil, 0, err
	}
	tx, err := s.inTx(ctx, tx)
	if err != nil {
		return nil, 0, err
	}
	org, err := readOrganisation(tx, organisationID, exclusive(tx))
	if err != nil {
		return nil, 0, err
	}
	now := s.nowUTC()
	var ids []string
	err = tx.Raw("SELECT id FROM "+LinksTable+" WHERE user_id = ? AND organisation_id = ? AND deleted_at IS NULL"+
		" AND (valid_to IS NULL OR valid_to > ?)"+exclusive(tx), userID, organisationID, now).Scan(&ids).Error
	if err != nil {
		return nil, 0, fmt.Errorf("read links: %w", err)
	}
	if len(ids) == 0 {
		return nil, 0, fmt.Errorf("no live or upcoming link: %w", ErrNotFound)
	}
	err = tx.Model(&linkRow{}).Where("id IN ?", ids).Updates(map[string]any{"deleted_at": now, "updated_at": now}).Error
	if err != nil {
		return nil, 0, fmt.Errorf("delete links: %w", err)
	}
	return org, len(ids), nil
}

// Members returns the users with a live link to organisation
// organisationID, ordered by user ID, skipping deleted users. An unknown or
// deleted organisation has no members (an empty list, not an error).
func (s *Store) Members(ctx context.Context, organisationID string) ([]Member, error) {
	db, err := s.readerFor(ctx, "members of organisation", "organisation id", organisationID)
	if err != nil {
		return nil, err
	}
	now := s.nowUTC()
	var out []Member
	err = db.Raw("SELECT l.user_id, u.username, u.email, u.first_name, u.last_name, l.valid_from, l.valid_to"+
		" FROM "+LinksTable+" l"+
		" JOIN "+users.UsersTable+" u ON u.id = l.user_id"+
		" JOIN "+OrganisationsTable+" o ON o.id = l.organisation_id"+
		" WHERE l.organisation_id = ? AND l.deleted_at IS NULL AND u.deleted_at IS NULL AND o.deleted_at IS NULL AND "+liveWindow+
		" ORDER BY l.user_id", organisationID, now, now).Scan(&out).Error
	if err != nil {
		return nil, fmt.Errorf("members of organisation %q: %w", organisationID, err)
	}
	if out == nil {
		out = []Member{}
	}
	for i := range out {
		out[i].ValidFrom, out[i].ValidTo = utc(out[i].ValidFrom), utc(out[i].ValidTo)
	}
	return out, nil
}

// OrganisationsOf returns the live organisations with which user userID
// has a live link, ordered by ID. An unknown or deleted user has none (an
// empty list, not an error).
func (s *Store) OrganisationsOf(ctx context.Context, userID string) ([]Organisation, error) {
	db, err := s.readerFor(ctx, "organisations of user", "user id", userID)
	if err != nil {
		return nil, err
	}
	now := s.nowUTC()
	var rows []organisationRow
	err = db.Raw("SELECT o.id, o.name, o.kind, o.location_id, o.services FROM "+OrganisationsTable+" o"+
		" WHERE o.deleted_at IS NULL AND o.id IN (SELECT l.organisation_id FROM "+LinksTable+" l"+
		" JOIN "+users.UsersTable+" u ON u.id = l.user_id"+
		" WHERE l.user_id = ? AND l.deleted_at IS NULL AND u.deleted_at IS NULL AND "+liveWindow+")"+
		" ORDER BY o.id", userID, now, now).Scan(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("organisations of user %q: %w", userID, err)
	}
	return toOrganisations(rows)
}

// Links returns every link of user userID that is not deleted, past and
// upcoming windows included (its affiliation history), ordered by
// organisation ID then start (an open start first). Links to deleted
// organisations are not listed. An unknown or deleted user has none (an
// empty list, not an error).
func (s *Store) Links(ctx context.Context, userID string) ([]Link, error) {
	db, err := s.readerFor(ctx, "links of user", "user id", userID)
	if err != nil {
		return nil, err
	}
	var out []Link
	err = db.Raw("SELECT l.user_id, l.organisation_id, l.valid_from, l.valid_to FROM "+LinksTable+" l"+
		" JOIN "+users.UsersTable+" u ON u.id = l.user_id"+
		" JOIN "+OrganisationsTable+" o ON o.id = l.organisation_id"+
		" WHERE l.user_id = ? AND l.deleted_at IS NULL AND u.deleted_at IS NULL AND o.deleted_at IS NULL", userID).
		Scan(&out).Error
	if err != nil {
		return nil, fmt.Errorf("links of user %q: %w", userID, err)
	}
	return sortLinks(out), nil
}

// LoadLinks returns every link that is not deleted, windows included (the
// caller decides liveness with its own clock), ordered by user ID,
// organisation ID and start: the checker's snapshot loader reads them
// through db (any *gorm.DB on townhall's database, a transaction included).
func LoadLinks(ctx context.Context, db *gorm.DB) ([]Link, error) {
	if ctx == nil || db == nil {
		return nil, fmt.Errorf("load links: %w: nil context or database", ErrInvalidInput)
	}
	var out []Link
	err := db.WithContext(ctx).Raw("SELECT user_id, organisation_id, valid_from, valid_to FROM " + LinksTable +
		" WHERE deleted_at IS NULL").Scan(&out).Error
	if err != nil {
		return nil, fmt.Errorf("load links: %w", err)
	}
	return sortLinks(out), nil
}

// sortLinks normalises times to UTC and orders links by user, organisation
// and start, in Go: databases disagree on where NULLs sort.
func sortLinks(links []Link) []Link {
	if links == nil {
		return []Link{}
	}
	for i := range links {
		links[i].ValidFrom, links[i].ValidTo = utc(links[i].ValidFrom), utc(links[i].ValidTo)
	}
	slices.SortFunc(links, func(a, b Link) int {
		if c := cmp.Compare(a.UserID, b.UserID); c != 0 {
			return c
		}
		if c := cmp.Compare(a.OrganisationID, b.OrganisationID); c != 0 {
			return c
		}
		switch {
		case a.ValidFrom == nil && b.ValidFrom == nil:
			return 0
		case a.ValidFrom == nil:
			return -1
		case b.ValidFrom == nil:
			return 1
		}
		return a.ValidFrom.Compare(*b.ValidFrom)
	})
	return links
}

func utc(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

package location

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/civicstack/townhall/audit"
	"github.com/civicstack/townhall/internal/dbx"
)

// Create adds l to the tree and returns it as stored. An empty ID means
// "generate one". The parent, when given, must be live (ErrNotFound) and of
// a shallower level than l (ErrInvalidLevel); levels may be skipped and a
// top-level location may be of any level. An ID in use, or once used by a
// deleted location, is ErrDuplicate; a malformed ID or name is
// ErrInvalidInput.
func (s *Store) Create(ctx context.Context, l Location) (*Location, error) {
	if ctx == nil {
		return nil, fmt.Errorf("%w: nil context", ErrInvalidInput)
	}
	c, err := s.write(ctx, func(tx *gorm.DB) (Change, *audit.Event, error) {
		created, err := s.createTx(ctx, tx, l)
		if err != nil {
			return Change{}, nil, err
		}
		return Change{Kind: ChangeCreated, Location: *created}, &audit.Event{
			Type:       audit.TypeLocationCreated,
			LocationID: created.ID,
			Details:    map[string]any{"level": created.Level, "parent_id": created.ParentID},
		}, nil
	})
	if err != nil {
		return nil, err
	}
	return &c.Location, nil
}

// createTx is Create inside the caller's transaction tx, without an audit
// event (the caller records one) and without WithOnChange's callback
// (package txwrite's CreateLocation).
func (s *Store) createTx(ctx context.Context, tx *gorm.DB, l Location) (*Location, error) {
	if ctx == nil || tx == nil {
		return nil, fmt.Errorf("%w: nil context or transaction", ErrInvalidInput)
	}
	if l.ID == "" {
		l.ID = dbx.NewID()
	}
	if err := checkID("location id", l.ID); err != nil {
		return nil, fmt.Errorf("create: %w", err)
	}
	if l.ParentID != "" {
		if err := checkID("parent id", l.ParentID); err != nil {
			return nil, fmt.Errorf("create %q: %w", l.ID, err)
		}
	}
	if !validName(l.Name) {
		return nil, fmt.Errorf("create %q: %w: name must be at most %d characters of valid UTF-8 without control characters",
			l.ID, ErrInvalidInput, MaxNameLen)
	}
	rank, ok := s.rank[l.Level]
	if !ok {
		return nil, fmt.Errorf("create %q: %w: unknown level %q", l.ID, ErrInvalidLevel, l.Level)
	}

	tx = tx.WithContext(ctx)
	if err := lockTree(tx); err != nil {
		return nil, err
	}
	lock := lockingRead(tx)
	depth := 0
	if l.ParentID != "" {
		parent, err := getLive(tx, l.ParentID, lock)
		if err != nil {
			return nil, fmt.Errorf("create %q: parent %q: %w", l.ID, l.ParentID, err)
		}
		if pr, ok := s.rank[parent.Level]; !ok || pr >= rank {
			return nil, fmt.Errorf("create %q: %w: level %q is not below parent %q of level %q",
				l.ID, ErrInvalidLevel, l.Level, parent.ID, parent.Level)
		}
		depth = parent.Depth + 1
	}
	var n int64
	if err := tx.Raw("SELECT COUNT(*) FROM "+LocationsTable+" WHERE id = ?"+lock, l.ID).Scan(&n).Error; err != nil {
		return nil, fmt.Errorf("location: create %q: %w", l.ID, err)
	}
	if n > 0 {
		return nil, fmt.Errorf("create %q: %w", l.ID, ErrDuplicate)
	}

	now := s.stamp()
	row := locationRow{ID: l.ID, Name: l.Name, Level: l.Level, Depth: depth, CreatedAt: now, UpdatedAt: now}
	if l.ParentID != "" {
		row.ParentID = &l.ParentID
	}
	if err := tx.Create(&row).Error; err != nil {
		if dbx.IsUniqueViolation(err) {
			return nil, fmt.Errorf("create %q: %w", l.ID, ErrDuplicate)
		}
		return nil, fmt.Errorf("location: create %q: %w", l.ID, err)
	}
	if err := tx.Create(&pathRow{AncestorID: l.ID, DescendantID: l.ID}).Error; err != nil {
		return nil, fmt.Errorf("location: create %q: paths: %w", l.ID, err)
	}
	if l.ParentID != "" {
		err := tx.Exec("INSERT INTO "+PathsTable+" (ancestor_id, descendant_id, depth) SELECT ancestor_id, ?, depth + 1 FROM "+
			PathsTable+" WHERE descendant_id = ?", l.ID, l.ParentID).Error
		if err != nil {
			return nil, fmt.Errorf("location: create %q: paths: %w", l.ID, err)
		}
	}
	out := row.location()
	return &out, nil
}

// Move makes newParentID the parent of id ("" makes id top-level), taking
// id's whole subtree along. The new parent must be live (ErrNotFound) and
// outside id's subtree (ErrCycle), and every location of the moved subtree
// must keep a level below its parent's (ErrInvalidLevel). Moving to the
// current parent changes no location and records no audit event (it still
// counts as a tree write for TreeVersion). A refused move changes nothing.
func (s *Store) Move(ctx context.Context, id, newParentID string) error {
	if ctx == nil {
		return fmt.Errorf("%w: nil context", ErrInvalidInput)
	}
	_, err := s.write(ctx, func(tx *gorm.DB) (Change, *audit.Event, error) {
		moved, from, changed, err := s.move(ctx, tx, id, newParentID)
		if err != nil {
			return Change{}, nil, err
		}
		c := Change{Kind: ChangeMoved, Location: moved}
		if !changed {
			return c, nil, nil
		}
		return c, &audit.Event{
			Type:       audit.TypeLocationMoved,
			LocationID: id,
			Details:    map[string]any{"from": from, "to": newParentID},
		}, nil
	})
	return err
}

// move returns the moved location (with its new parent), its former parent
// and whether anything changed.
func (s *Store) move(ctx context.Context, tx *gorm.DB, id, newParentID string) (Location, string, bool, error) {
	fail := func(err error) (Location, string, bool, error) {
		return Location{}, "", false, fmt.Errorf("move %q: %w", id, err)
	}
	if ctx == nil || tx == nil {
		return fail(fmt.Errorf("%w: nil context or transaction", ErrInvalidInput))
	}
	if err := checkID("location id", id); err != nil {
		return fail(err)
	}
	if newParentID != "" {
		if err := checkID("new parent id", newParentID); err != nil {
			return fail(err)
		}
	}
	if newParentID == id {
		return fail(fmt.Errorf("%w: %q cannot be its own parent", ErrCycle, id))
	}

	tx = tx.WithContext(ctx)
	if err := lockTree(tx); err != nil {
		return fail(err)
	}
	lock := lockingRead(tx)
	node, err := getLive(tx, id, lock)
	if err != nil {
		return fail(err)
	}
	loc := node.location()
	from := loc.ParentID
	if from == newParentID {
		return loc, from, false, nil
	}

	newDepth := 0
	parentRank := -1
	if newParentID != "" {
		parent, err := getLive(tx, newParentID, lock)
		if err != nil {
			return fail(fmt.Errorf("new parent %q: %w", newParentID, err))
		}
		var inside int64
		err = tx.Raw("SELECT COUNT(*) FROM "+PathsTable+" WHERE ancestor_id = ? AND descendant_id = ?"+lock, id, newParentID).
			Scan(&inside).Error
		if err != nil {
			return fail(err)
		}
		if inside > 0 {
			return fail(fmt.Errorf("%w: %q lies in the subtree of %q", ErrCycle, newParentID, id))
		}
		r, ok := s.rank[parent.Level]
		if !ok {
			return fail(fmt.Errorf("%w: new parent %q has unknown level %q", ErrInvalidLevel, newParentID, parent.Level))
		}
		parentRank, newDepth = r, parent.Depth+1
	}
	if err := s.checkSubtreeLevels(tx, id, parentRank, lock); err != nil {
		return fail(err)
	}

	if err := s.rewritePaths(tx, id, newParentID, lock); err != nil {
		return fail(err)
	}
	if delta := newDepth - node.Depth; delta != 0 {
		err := tx.Exec("UPDATE "+LocationsTable+" SET depth = depth + ? WHERE id IN (SELECT descendant_id FROM "+
			PathsTable+" WHERE ancestor_id = ?)", delta, id).Error
		if err != nil {
			return fail(err)
		}
	}
	var parentCol any
	if newParentID != "" {
		parentCol = newParentID
	}
	err = tx.Exec("UPDATE "+LocationsTable+" SET parent_id = ?, updated_at = ? WHERE id = ?", parentCol, s.stamp(), id).Error
	if err != nil {
		return fail(err)
	}
	loc.ParentID = newParentID
	return loc, from, true, nil
}

// checkSubtreeLevels verifies, against the configured levels, that every
// location in the subtree of id is below its parent, and that all of them
// are below the level of rank parentRank (-1: no parent). It reads the
// distinct (level, parent level) pairs, so its answer is small whatever
// the subtree's size.
func (s *Store) checkSubtreeLevels(tx *gorm.DB, id string, parentRank int, lock string) error {
	var pairs []struct {
		Level       string
		ParentLevel *string
	}
	err := tx.Raw("SELECT DISTINCT c.level AS level, par.level AS parent_level FROM "+PathsTable+" p JOIN "+LocationsTable+
		" c ON c.id = p.descendant_id LEFT JOIN "+LocationsTable+" par ON par.id = c.parent_id AND p.depth > 0"+
		" WHERE p.ancestor_id = ?"+lock, id).Scan(&pairs).Error
	if err != nil {
		return fmt.Errorf("location: check levels: %w", err)
	}
	for _, pr := range pairs {
		r, ok := s.rank[pr.Level]
		if !ok {
			return fmt.Errorf("%w: subtree holds unknown level %q", ErrInvalidLevel, pr.Level)
		}
		if r <= parentRank {
			return fmt.Errorf("%w: subtree holds level %q, not below the new parent's level %q",
				ErrInvalidLevel, pr.Level, s.levels[parentRank])
		}
		if pr.ParentLevel != nil {
			if p, ok := s.rank[*pr.ParentLevel]; !ok || p >= r {
				return fmt.Errorf("%w: subtree holds level %q under level %q", ErrInvalidLevel, pr.Level, *pr.ParentLevel)
			}
		}
	}
	return nil
}

// rewritePaths detaches the subtree of id from its old ancestors and
// attaches it under newParentID: O(subtree × depth) rows, two statements.
func (s *Store) rewritePaths(tx *gorm.DB, id, newParentID, lock string) error {
	var oldAncestors []string
	err := tx.Raw("SELECT ancestor_id FROM "+PathsTable+" WHERE descendant_id = ? AND depth > 0"+lock, id).
		Scan(&oldAncestors).Error
	if err != nil {
		return fmt.Errorf("location: read paths: %w", err)
	}
	if len(oldAncestors) > 0 {
		var q string
		if dbx.DialectOf(tx) == dbx.MySQL {
			// MySQL refuses a subquery on the table being deleted from.
			q = "DELETE p FROM " + PathsTable + " p JOIN " + PathsTable + " s ON s.descendant_id = p.descendant_id" +
				" WHERE s.ancestor_id = ? AND p.ancestor_id IN ?"
		} else {
			q = "DELETE FROM " + PathsTable + " WHERE descendant_id IN (SELECT descendant_id FROM " + PathsTable +
				" WHERE ancestor_id = ?) AND ancestor_id IN ?"
		}
		if err := tx.Exec(q, id, oldAncestors).Error; err != nil {
			return fmt.Errorf("location: detach subtree: %w", err)
		}
	}
	if newParentID != "" {
		err := tx.Exec("INSERT INTO "+PathsTable+" (ancestor_id, descendant_id, depth)"+
			" SELECT a.ancestor_id, d.descendant_id, a.depth + d.depth + 1 FROM "+PathsTable+" a, "+PathsTable+" d"+
			" WHERE a.descendant_id = ? AND d.ancestor_id = ?", newParentID, id).Error
		if err != nil {
			return fmt.Errorf("location: attach subtree: %w", err)
		}
	}
	return nil
}

// Delete soft-deletes id and its whole subtree (ErrNotFound when id is
// unknown or already deleted). Deleted locations disappear from every read
// and from the closure table; their rows stay, so their IDs are never
// reused. Delete is unguarded: access.Admin.DeleteLocation is the guarded
// form that also ends the grants, profiles and organisations held there.
func (s *Store) Delete(ctx context.Context, id string) error {
	if ctx == nil {
		return fmt.Errorf("%w: nil context", ErrInvalidInput)
	}
	_, err := s.write(ctx, func(tx *gorm.DB) (Change, *audit.Event, error) {
		deleted, err := s.deleteTx(ctx, tx, id)
		if err != nil {
			return Change{}, nil, err
		}
		return Change{Kind: ChangeDeleted, Location: Location{ID: id}, Deleted: deleted}, &audit.Event{
			Type:       audit.TypeLocationDeleted,
			LocationID: id,
			Details:    map[string]any{"count": len(deleted)},
		}, nil
	})
	return err
}

// deleteTx is Delete inside the caller's transaction tx, without an audit
// event (the caller records one) and without WithOnChange's callback
// (package txwrite's DeleteLocation). It returns the IDs of the deleted
// locations, id first, then by depth and ID.
func (s *Store) deleteTx(ctx context.Context, tx *gorm.DB, id string) (deleted []string, err error) {
	if ctx == nil || tx == nil {
		return nil, fmt.Errorf("delete %q: %w: nil context or transaction", id, ErrInvalidInput)
	}
	if err := checkID("location id", id); err != nil {
		return nil, fmt.Errorf("delete: %w", err)
	}
	tx = tx.WithContext(ctx)
	if err := lockTree(tx); err != nil {
		return nil, err
	}
	lock := lockingRead(tx)
	if _, err := getLive(tx, id, lock); err != nil {
		return nil, fmt.Errorf("delete %q: %w", id, err)
	}
	err = tx.Raw("SELECT descendant_id FROM "+PathsTable+" WHERE ancestor_id = ? ORDER BY depth, descendant_id"+lock, id).
		Scan(&deleted).Error
	if err != nil {
		return nil, fmt.Errorf("location: delete %q: %w", id, err)
	}
	now := s.stamp()
	err = tx.Exec("UPDATE "+LocationsTable+" SET deleted_at = ?, updated_at = ? WHERE deleted_at IS NULL AND id IN"+
		" (SELECT descendant_id FROM "+PathsTable+" WHERE ancestor_id = ?)", now, now, id).Error
	if err != nil {
		return nil, fmt.Errorf("location: delete %q: %w", id, err)
	}
	var q string
	if dbx.DialectOf(tx) == dbx.MySQL {
		q = "DELETE p FROM " + PathsTable + " p JOIN " + PathsTable + " s ON s.descendant_id = p.descendant_id WHERE s.ancestor_id = ?"
	} else {
		q = "DELETE FROM " + PathsTable + " WHERE descendant_id IN (SELECT descendant_id FROM " + PathsTable + " WHERE ancestor_id = ?)"
	}
	if err := tx.Exec(q, id).Error; err != nil {
		return nil, fmt.Errorf("location: delete %q: paths: %w", id, err)
	}
	return deleted, nil
}

// write runs fn and the audit event it returns in one transaction, stamps
// the change with the tree version it produced, and after the commit passes
// it to WithOnChange's callback. Holding mu across both keeps the callbacks
// in commit order; tree writes are serialised by the tree lock anyway.
func (s *Store) write(ctx context.Context, fn func(tx *gorm.DB) (Change, *audit.Event, error)) (Change, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var c Change
	err := dbx.Tx(ctx, s.db, func(tx *gorm.DB) error {
		var (
			ev  *audit.Event
			err error
		)
		if c, ev, err = fn(tx); err != nil {
			return err
		}
		if c.Version, err = TreeVersion(ctx, tx); err != nil {
			return err
		}
		if ev == nil {
			return nil
		}
		if err := s.log.RecordTx(ctx, tx, *ev); err != nil {
			return fmt.Errorf("location: %s: audit: %w", c.Kind, err)
		}
		return nil
	})
	if err != nil {
		return Change{}, err
	}
	if s.onChange != nil {
		s.onChange(c)
	}
	return c, nil
}

// errTreeNotMigrated reports a missing tree lock row.
var errTreeNotMigrated = errors.New("location: tree row missing (run Migrate)")

// lockTree takes the tree write lock for the rest of tx (see treeRow) and
// moves the tree version forward.
func lockTree(tx *gorm.DB) error {
	res := tx.Exec("UPDATE "+treeTable+" SET version = version + 1 WHERE id = ?", treeRowID)
	if res.Error != nil {
		return fmt.Errorf("location: lock tree: %w", res.Error)
	}
	if res.RowsAffected != 1 {
		return errTreeNotMigrated
	}
	return nil
}

// TreeVersion returns the version of the tree in db: the number of tree
// writes committed so far (inside a transaction, its own writes included).
// Every write through Create, Move, Delete or their in-transaction forms
// (package txwrite), refused ones excepted, moves it forward by one. A
// caller of those forms reads it in its transaction to stamp the Change it
// applies to a Tree.
func TreeVersion(ctx context.Context, db *gorm.DB) (int64, error) {
	if ctx == nil || db == nil {
		return 0, fmt.Errorf("location: tree version: %w: nil context or database", ErrInvalidInput)
	}
	var v []int64
	err := db.WithContext(ctx).Raw("SELECT version FROM "+treeTable+" WHERE id = ?", treeRowID).Scan(&v).Error
	if err != nil {
		return 0, fmt.Errorf("location: tree version: %w", err)
	}
	if len(v) == 0 {
		return 0, errTreeNotMigrated
	}
	return v[0], nil
}

func (s *Store) stamp() time.Time {
	return s.now().UTC().Truncate(time.Microsecond)
}

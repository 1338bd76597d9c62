package access

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"gorm.io/gorm"

	"github.com/civicstack/townhall/audit"
	"github.com/civicstack/townhall/internal/notify"
	"github.com/civicstack/townhall/internal/policy"
	"github.com/civicstack/townhall/location"
	"github.com/civicstack/townhall/users"
)

// Checker answers access questions from an in-memory snapshot of users,
// profiles, grants, departments, module settings and the location tree.
// Checks never touch the database; every write made through townhall
// updates the snapshot before the write call returns. A Checker is safe for
// concurrent use.
type Checker struct {
	db           *gorm.DB
	audit        *audit.Log
	now          func() time.Time
	auditAllowed bool

	mu   sync.RWMutex // guards snap
	snap snapshot

	refreshMu sync.Mutex // serialises refreshes so the last one reads the latest commit

	rep      syncState        // catching up with other processes (sync.go)
	listener *notify.Listener // PostgreSQL LISTEN, when enabled
}

// CheckerConfig configures NewChecker.
type CheckerConfig struct {
	Registry *Registry        // default DefaultRegistry()
	Audit    *audit.Log       // required: denied decisions are recorded here
	Clock    func() time.Time // default time.Now
	// AuditAllowed also records allowed decisions (off by default: they are
	// the bulk of traffic).
	AuditAllowed bool
	// SyncInterval is how often the checker polls the database revision for
	// changes made by other processes (default DefaultSyncInterval; negative
	// disables the background loop: call Sync yourself).
	SyncInterval time.Duration
	// NotifyChannel, on PostgreSQL, is the LISTEN channel that wakes the
	// checker as soon as another process commits a change (see
	// internal/notify; townhall.Open sets it unless polling is chosen).
	NotifyChannel string
}

// NewChecker compiles the registry, writes its policy rows when they differ
// from the stored ones, and loads the snapshot from db. townhall.Open calls
// it; the tables must be migrated.
func NewChecker(ctx context.Context, db *gorm.DB, cfg CheckerConfig) (*Checker, error) {
	if db == nil || cfg.Audit == nil {
		return nil, fmt.Errorf("%w: nil database or audit log", ErrInvalidInput)
	}
	if cfg.Registry == nil {
		cfg.Registry = DefaultRegistry()
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	reg, err := cfg.Registry.compile()
	if err != nil {
		return nil, err
	}
	c := &Checker{db: db, audit: cfg.Audit, now: cfg.Clock, auditAllowed: cfg.AuditAllowed}
	if err := syncPolicy(ctx, db, cfg.Audit, reg); err != nil {
		return nil, err
	}
	// The revision is read before the rows: changes committed in between
	// are applied again by the first sync, which is harmless.
	rev, err := cfg.Audit.Head(ctx)
	if err != nil {
		return nil, err
	}
	snap, err := loadSnapshot(ctx, db, reg)
	if err != nil {
		return nil, err
	}
	c.snap = *snap
	c.rep.rev.Store(rev)
	if cfg.SyncInterval >= 0 {
		if cfg.SyncInterval == 0 {
			cfg.SyncInterval = DefaultSyncInterval
		}
		c.startSync(cfg.SyncInterval)
	}
	if cfg.NotifyChannel != "" {
		if c.listener, err = notify.Listen(db, cfg.NotifyChannel, c.Wake); err != nil {
			c.stopSync()
			return nil, err
		}
	}
	return c, nil
}

// Close stops the checker's background work (polling, listening). It is
// idempotent.
func (c *Checker) Close() error {
	if c.listener != nil {
		c.listener.Close()
	}
	c.stopSync()
	return nil
}

// loadSnapshot reads every row a decision needs with plain SQL scans.
func loadSnapshot(ctx context.Context, db *gorm.DB, reg *compiled) (*snapshot, error) {
	db = db.WithContext(ctx)
	tree, err := location.LoadTree(ctx, db)
	if err != nil {
		return nil, fmt.Errorf("load tree: %w", err)
	}
	s := &snapshot{
		reg: reg, tree: tree,
		users:       map[string]*userState{},
		departments: map[string]categorySet{},
		disabled:    map[string]map[string]struct{}{},
		approvalOff: map[string]struct{}{},
	}
	rows, err := db.Raw(userQuery).Rows()
	if err != nil {
		return nil, fmt.Errorf("load users: %w", err)
	}
	for rows.Next() {
		id, u, err := scanUser(rows)
		if err != nil {
			rows.Close()
			return nil, err
		}
		s.users[id] = u
	}
	if err := closeRows(rows); err != nil {
		return nil, err
	}
	if err := eachProfile(db.Raw(profileQuery), func(userID, loc string, p *profileState) {
		if u := s.users[userID]; u != nil && !u.deleted {
			u.profiles[loc] = p
		}
	}); err != nil {
		return nil, err
	}
	if err := eachGrant(db.Raw(grantQuery), reg, func(userID string, g grant) {
		if u := s.users[userID]; u != nil && !u.deleted {
			u.grants = append(u.grants, g)
		}
	}); err != nil {
		return nil, err
	}
	if err := loadDepartments(db.Raw(departmentQuery), s.departments); err != nil {
		return nil, err
	}
	var settings []moduleSettingRow
	if err := db.Where("enabled = ?", false).Find(&settings).Error; err != nil {
		return nil, fmt.Errorf("load module settings: %w", err)
	}
	for _, r := range settings {
		s.setModuleEnabled(r.MunicipalityID, r.Module, false)
	}
	if s.orgs, s.links, err = loadAffiliations(ctx, db); err != nil {
		return nil, err
	}
	if s.sessions, err = loadSessions(ctx, db); err != nil {
		return nil, err
	}
	var approvals []municipalitySettingRow
	if err := db.Where("approval_required = ?", false).Find(&approvals).Error; err != nil {
		return nil, fmt.Errorf("load municipality settings: %w", err)
	}
	for _, r := range approvals {
		s.approvalOff[r.MunicipalityID] = struct{}{}
	}
	return s, nil
}

const (
	userQuery = `SELECT id, kind, is_active, is_super_admin, CASE WHEN deleted_at IS NULL THEN 0 ELSE 1 END FROM ` +
		users.UsersTable
	profileQuery = `SELECT user_id, location_id, department_id, allowed_categories, is_approved, is_active FROM ` +
		users.ProfilesTable + ` WHERE deleted_at IS NULL`
	grantQuery      = `SELECT v0, v1, v2 FROM ` + policy.Table + ` WHERE ptype = 'g'`
	departmentQuery = `SELECT id, categories FROM ` + users.DepartmentsTable
)

type scanner interface{ Scan(dest ...any) error }

func scanUser(row scanner) (string, *userState, error) {
	var (
		id, kind           string
		active, superAdmin bool
		deleted            int
	)
	if err := row.Scan(&id, &kind, &active, &superAdmin, &deleted); err != nil {
		return "", nil, fmt.Errorf("scan user: %w", err)
	}
	return id, &userState{
		deleted: deleted != 0, active: active, superAdmin: superAdmin,
		technical: kind == string(users.Technical),
		profiles:  map[string]*profileState{},
	}, nil
}

func eachProfile(q *gorm.DB, fn func(userID, loc string, p *profileState)) error {
	rows, err := q.Rows()
	if err != nil {
		return fmt.Errorf("load profiles: %w", err)
	}
	for rows.Next() {
		var (
			userID, loc, dept string
			cats              *string
			approved, active  bool
		)
		if err := rows.Scan(&userID, &loc, &dept, &cats, &approved, &active); err != nil {
			rows.Close()
			return fmt.Errorf("scan profile: %w", err)
		}
		allowed, err := decodeCategories(cats)
		if err != nil {
			rows.Close()
			return err
		}
		fn(userID, loc, &profileState{approved: approved, active: active, department: dept, allowed: allowed})
	}
	return closeRows(rows)
}

// eachGrant scans grouping rows, skipping rows that are not townhall grants
// or name roles the running registry does not declare (they grant nothing).
func eachGrant(q *gorm.DB, reg *compiled, fn func(userID string, g grant)) error {
	rows, err := q.Rows()
	if err != nil {
		return fmt.Errorf("load grants: %w", err)
	}
	for rows.Next() {
		var sub, role, dom string
		if err := rows.Scan(&sub, &role, &dom); err != nil {
			rows.Close()
			return fmt.Errorf("scan grant: %w", err)
		}
		userID, okU := policy.UserFromKey(sub)
		roleName, okR := policy.RoleFromKey(role)
		ri, known := reg.role(roleName)
		if okU && okR && known {
			fn(userID, grant{role: ri, location: dom})
		}
	}
	return closeRows(rows)
}

func loadDepartments(q *gorm.DB, into map[string]categorySet) error {
	rows, err := q.Rows()
	if err != nil {
		return fmt.Errorf("load departments: %w", err)
	}
	for rows.Next() {
		var (
			id   string
			cats *string
		)
		if err := rows.Scan(&id, &cats); err != nil {
			rows.Close()
			return fmt.Errorf("scan department: %w", err)
		}
		set, err := decodeCategories(cats)
		if err != nil {
			rows.Close()
			return err
		}
		into[id] = set
	}
	return closeRows(rows)
}

func decodeCategories(raw *string) (categorySet, error) {
	if raw == nil || *raw == "" {
		return nil, nil
	}
	var cats []string
	if err := json.Unmarshal([]byte(*raw), &cats); err != nil {
		return nil, fmt.Errorf("decode categories: %w", err)
	}
	return newCategorySet(cats), nil
}

type rowsCloser interface {
	Err() error
	Close() error
}

func closeRows(rows rowsCloser) error {
	return errors.Join(rows.Err(), rows.Close())
}

func (s *snapshot) setModuleEnabled(municipality, module string, enabled bool) {
	set := s.disabled[module]
	if enabled {
		delete(set, municipality)
		if len(set) == 0 {
			delete(s.disabled, module)
		}
		return
	}
	if set == nil {
		set = map[string]struct{}{}
		s.disabled[module] = set
	}
	set[municipality] = struct{}{}
}

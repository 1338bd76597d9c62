package access

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
	"gorm.io/gorm"

	"github.com/civicstack/townhall/audit"
	"github.com/civicstack/townhall/internal/dbx"
	"github.com/civicstack/townhall/internal/notify"
	"github.com/civicstack/townhall/internal/policy"
	"github.com/civicstack/townhall/internal/telemetry"
	"github.com/civicstack/townhall/location"
	"github.com/civicstack/townhall/users"
)

// Checker answers access questions from an in-memory snapshot of users,
// profiles, grants, departments, module settings, the location tree,
// affiliations and impersonation sessions. Checks never touch the database
// and never wait for a writer: they read an immutable snapshot that writers
// replace copy-on-write. Every write made through townhall updates the
// snapshot before the write call returns. A Checker is safe for concurrent
// use.
type Checker struct {
	id           uint32 // names the handles this checker issues
	db           *gorm.DB
	audit        *audit.Log
	now          func() time.Time
	auditAllowed bool
	// stamp is the clock of decision events: now, or when the host kept
	// the default clock, the coarse clock.
	stamp  func() time.Time
	coarse *coarseClock

	snap      atomic.Pointer[snapshot]
	publishMu sync.Mutex // one writer at a time builds the next snapshot

	lookup atomic.Pointer[grantIndex] // Subjects' index of the current snapshot (lookup.go)

	rep      syncState        // catching up with other processes (sync.go)
	listener *notify.Listener // PostgreSQL LISTEN, when enabled
	obs      *observer        // logs, traces, metrics (telemetry.go)

	gates atomic.Pointer[gateCache] // CheckModule's per-snapshot lookups (gate.go)

	codes  *audit.DecisionQueue                 // decision events as codes (auditcode.go)
	epochs [epochSlots]atomic.Pointer[snapshot] // the latest snapshot of recent epochs, for decoding codes
}

// CheckerConfig configures NewChecker.
type CheckerConfig struct {
	Registry *Registry  // default DefaultRegistry()
	Audit    *audit.Log // required: denied decisions are recorded here
	// Clock is the time of sessions, link windows and decision events
	// (default time.Now; decision events then carry a clock read every
	// millisecond, so that checks do not read the time themselves).
	Clock func() time.Time
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
	// Logger, TracerProvider and MeterProvider receive the checker's (and
	// its Admin's) logs, spans and metrics. Defaults: discard, and the
	// global OpenTelemetry providers.
	Logger         *slog.Logger
	TracerProvider trace.TracerProvider
	MeterProvider  metric.MeterProvider
	// CheckSpans makes every Check a span (off by default: checks are the
	// bulk of traffic).
	CheckSpans bool
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
	defaultClock := cfg.Clock == nil
	if defaultClock {
		cfg.Clock = time.Now
	}
	reg, err := cfg.Registry.compile()
	if err != nil {
		return nil, err
	}
	obs, err := newObserver(telemetry.New(cfg.Logger, cfg.TracerProvider, cfg.MeterProvider), cfg.CheckSpans, cfg.Clock)
	if err != nil {
		return nil, fmt.Errorf("telemetry: %w", err)
	}
	c := &Checker{id: checkerIDs.Add(1), db: db, audit: cfg.Audit, now: cfg.Clock, stamp: cfg.Clock, auditAllowed: cfg.AuditAllowed, obs: obs}
	if err := syncPolicy(ctx, db, cfg.Audit, reg, obs.set.Logger); err != nil {
		return nil, err
	}
	// The revision is read before the rows: changes committed in between
	// are applied again by the first sync, which is harmless.
	rev, err := cfg.Audit.Head(ctx)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	snap, err := loadSnapshot(ctx, db, reg, nil)
	if err != nil {
		return nil, err
	}
	obs.loaded(ctx, start)
	c.codes = cfg.Audit.NewDecisionQueue(c.decodeDecision)
	c.storeSnapshot(snap)
	c.rep.rev.Store(rev)
	obs.synced(rev, nil, false)
	if defaultClock {
		c.coarse = startCoarseClock()
		c.stamp = c.coarse.now
	}
	if cfg.SyncInterval >= 0 {
		if cfg.SyncInterval == 0 {
			cfg.SyncInterval = DefaultSyncInterval
		}
		c.startSync(cfg.SyncInterval)
	}
	if cfg.NotifyChannel != "" {
		if c.listener, err = notify.Listen(db, cfg.NotifyChannel, c.Wake, obs.set.Logger); err != nil {
			c.Close()
			return nil, err
		}
	}
	if err := obs.observe(c); err != nil {
		c.Close()
		return nil, fmt.Errorf("telemetry: %w", err)
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
	if c.coarse != nil {
		c.coarse.close()
	}
	c.obs.close()
	return nil
}

// snapshot returns the current snapshot. It is immutable: read it freely.
func (c *Checker) snapshot() *snapshot { return c.snap.Load() }

// publish builds the next snapshot with edit, which receives a shallow
// copy of the current one and must replace (never mutate) what it changes,
// and makes it current. Writers are serialised; readers are not blocked.
func (c *Checker) publish(edit func(next *snapshot) error) error {
	c.publishMu.Lock()
	defer c.publishMu.Unlock()
	next := *c.snap.Load()
	if err := edit(&next); err != nil {
		return err
	}
	c.storeSnapshot(&next)
	return nil
}

// loadSnapshot reads every row a decision needs with plain SQL scans. Users
// keep the dense indexes they have in prev (nil at the first load), so
// that handles stay valid across a reload.
func loadSnapshot(ctx context.Context, db *gorm.DB, reg *compiled, prev *userTable) (*snapshot, error) {
	db = db.WithContext(ctx)
	tree, err := location.LoadTree(ctx, db)
	if err != nil {
		return nil, fmt.Errorf("load tree: %w", err)
	}
	s := &snapshot{
		reg:         reg,
		users:       newUserTable(),
		departments: map[string]categorySet{},
		disabled:    map[string]map[string]struct{}{},
		approvalOff: map[string]struct{}{},
	}
	s.setTree(tree)
	if prev != nil && prev.next > s.users.next {
		s.users.next = prev.next // indexes of users gone since are not reused
	}
	if err := scanUsers(ctx, db, "", func(id string, u *userState) { s.users.put(id, u, prev) }); err != nil {
		return nil, err
	}
	if err := scanProfiles(ctx, db, s.tree, "", func(userID []byte, r profileRef, unknown string) {
		if u, ok := s.users.get(string(userID)); ok && !u.deleted {
			u.addProfile(r, unknown)
		}
	}); err != nil {
		return nil, err
	}
	// Grants usually come clustered by user: remember the last one.
	var lastID []byte
	var last *userState
	if err := scanGrants(ctx, db, reg, s.tree, "", func(userID []byte, g grant, unknown string) {
		if last == nil || !bytes.Equal(userID, lastID) {
			last = nil
			if u, ok := s.users.get(string(userID)); ok && !u.deleted {
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
	if err := loadDepartments(ctx, db, "", s.departments); err != nil {
		return nil, err
	}
	s.users.each(func(id string, u *userState) bool {
		s.buildUser(u)
		if u.isPending() {
			if s.users.pending == nil {
				s.users.pending = map[string]struct{}{}
			}
			s.users.pending[id] = struct{}{}
		}
		return true
	})
	var settings []moduleSettingRow
	if err := db.Where("enabled = ?", false).Find(&settings).Error; err != nil {
		return nil, fmt.Errorf("load module settings: %w", err)
	}
	for _, r := range settings {
		set := s.disabled[r.Module]
		if set == nil {
			set = map[string]struct{}{}
			s.disabled[r.Module] = set
		}
		set[r.MunicipalityID] = struct{}{}
	}
	s.reindexDisabled()
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

// The loader's queries on db (scanWhere narrows them to one ID); text
// columns are named through dbx.RawColumns.
func userQuery(db *gorm.DB) string {
	return `SELECT ` + dbx.RawColumns(db, "id", "kind") +
		`, is_active, is_super_admin, CASE WHEN deleted_at IS NULL THEN 0 ELSE 1 END FROM ` + users.UsersTable
}

func profileQuery(db *gorm.DB) string {
	return `SELECT ` + dbx.RawColumns(db, "user_id", "location_id", "department_id", "allowed_categories") +
		`, is_approved, is_active FROM ` + users.ProfilesTable + ` WHERE deleted_at IS NULL`
}

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
func scanUsers(ctx context.Context, db *gorm.DB, id string, fn func(id string, u *userState)) error {
	err := scanWhere(ctx, db, userQuery(db), "id", id, func(c [][]byte) error {
		fn(string(c[0]), &userState{
			technical:  string(c[1]) == string(users.Technical),
			active:     dbx.ParseBool(c[2]),
			superAdmin: dbx.ParseBool(c[3]),
			deleted:    dbx.ParseBool(c[4]),
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
		r := profileRef{p: profileState{
			approved: dbx.ParseBool(c[4]), active: dbx.ParseBool(c[5]), allowed: allowed,
		}}
		unknown := ""
		if i, ok := tree.Index(string(c[1])); ok {
			r.p.loc = i
		} else {
			unknown = string(c[1])
		}
		if len(c[2]) > 0 {
			r.p.department = deptOf(string(c[2]))
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
func scanGrants(ctx context.Context, db *gorm.DB, reg *compiled, tree *location.Tree, userID string, fn func(userID []byte, g grant, unknown string)) error {
	err := policy.ScanGrants(ctx, db, userID, func(user, role, domain []byte) error {
		ri, known := reg.roleIx[string(role)]
		if !known {
			return nil
		}
		g := grant{role: uint16(ri), loc: platformLoc}
		unknown := ""
		if string(domain) != policy.PlatformDomain {
			if i, ok := tree.Index(string(domain)); ok {
				g.loc = i
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
func loadDepartments(ctx context.Context, db *gorm.DB, id string, into map[string]categorySet) error {
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

func decodeCategories(raw []byte) (categorySet, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	var cats []string
	if err := json.Unmarshal(raw, &cats); err != nil {
		return nil, fmt.Errorf("decode categories: %w", err)
	}
	return newCategorySet(cats), nil
}

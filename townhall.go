package townhall

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/civicstack/townhall/access"
	"github.com/civicstack/townhall/affiliation"
	"github.com/civicstack/townhall/audit"
	"github.com/civicstack/townhall/internal/dbx"
	"github.com/civicstack/townhall/internal/notify"
	"github.com/civicstack/townhall/internal/policy"
	"github.com/civicstack/townhall/internal/telemetry"
	"github.com/civicstack/townhall/location"
	"github.com/civicstack/townhall/users"
)

// ErrInvalidInput reports a nil database or an invalid option.
var ErrInvalidInput = errors.New("townhall: invalid input")

// Platform is an opened townhall: its stores, checker and admin, all on one
// database.
type Platform struct {
	Users        *users.Store        // users, credentials, API keys
	Profiles     *users.ProfileStore // profiles (memberships) and departments
	Locations    *location.Store
	Affiliations *affiliation.Store
	Audit        *audit.Log
	Checker      *access.Checker
	Admin        *access.Admin

	db      *gorm.DB
	closers []func() error
}

// DB returns the database handle the platform works on: the *gorm.DB given
// to Open or, for a SQLite file, the pool Open configured on it.
func (p *Platform) DB() *gorm.DB { return p.db }

// Option configures Open.
type Option func(*config)

type config struct {
	registry *access.Registry
	levels   []string
	now      func() time.Time
	clockSet bool // WithClock was given (the checker then stamps decisions with it)
	kdf      *users.KDFParams
	auditBuf int
	drain    time.Duration

	auditAllowed     bool
	maxImpersonation time.Duration
	syncInterval     time.Duration
	polling          bool

	auditExtra []audit.Option // options_audit.go
	auditKeyed bool
	obs        observeConfig // options_observe.go

	userOpts []users.Option // sign-in and recovery options (options_auth.go)
}

// WithRegistry sets the modules, actions and roles (default
// access.DefaultRegistry()).
func WithRegistry(r *access.Registry) Option { return func(c *config) { c.registry = r } }

// WithLevels sets the location levels, top first (default "region",
// "district", "municipality", "village"). "municipality" must be one of
// them: it is the tenant level.
func WithLevels(levels ...string) Option {
	return func(c *config) { c.levels = append([]string(nil), levels...) }
}

// WithClock sets the clock used for expiry, lockout, validity windows and
// audit times (default time.Now).
func WithClock(now func() time.Time) Option {
	return func(c *config) { c.now, c.clockSet = now, true }
}

// WithKDF sets the password hashing cost. Lower it only in tests.
func WithKDF(p users.KDFParams) Option { return func(c *config) { c.kdf = &p } }

// WithAuditBuffer sets the capacity of the asynchronous buffer for decision
// events (see audit.WithBuffer).
func WithAuditBuffer(n int) Option { return func(c *config) { c.auditBuf = n } }

// WithAuditDrainInterval sets how often queued decision events are written
// (see audit.WithDrainInterval; default 100 ms).
func WithAuditDrainInterval(d time.Duration) Option { return func(c *config) { c.drain = d } }

// WithAuditAllowed also records allowed decisions in the audit log (denied
// decisions always are).
func WithAuditAllowed() Option { return func(c *config) { c.auditAllowed = true } }

// WithMaxImpersonationTTL bounds impersonation sessions (default 8 hours).
func WithMaxImpersonationTTL(d time.Duration) Option {
	return func(c *config) { c.maxImpersonation = d }
}

// WithSyncInterval sets how often the platform polls the database for
// changes made by other processes (default 250 ms). On PostgreSQL,
// LISTEN/NOTIFY wakes it at once and polling is the safety net. A negative
// interval turns the background loop off: call Checker.Sync yourself.
func WithSyncInterval(d time.Duration) Option { return func(c *config) { c.syncInterval = d } }

// WithPolling turns PostgreSQL LISTEN/NOTIFY off, leaving polling only.
// Use it behind a transaction-mode connection pooler (PgBouncer in
// transaction mode), which cannot carry LISTEN.
func WithPolling() Option { return func(c *config) { c.polling = true } }

// OpenSQLite opens (creating if needed) the SQLite file at path configured
// for safe concurrent use: a busy timeout, immediate transactions and WAL.
func OpenSQLite(path string) (*gorm.DB, error) {
	db, err := dbx.OpenSQLite(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidInput, err)
	}
	return db, nil
}

// Open migrates db, loads the access snapshot and returns the platform.
// Migrations are idempotent and serialised across processes. On SQLite, a
// plain file path is reopened with OpenSQLite's settings for townhall's own
// use, so its concurrent writes never fail with SQLITE_BUSY.
func Open(ctx context.Context, db *gorm.DB, opts ...Option) (_ *Platform, err error) {
	if db == nil {
		return nil, fmt.Errorf("%w: nil *gorm.DB", ErrInvalidInput)
	}
	cfg := config{now: time.Now}
	for _, o := range opts {
		if o != nil {
			o(&cfg)
		}
	}
	if cfg.registry == nil {
		cfg.registry = access.DefaultRegistry()
	}
	if cfg.now == nil {
		return nil, fmt.Errorf("%w: nil clock", ErrInvalidInput)
	}
	ctx, span := telemetry.New(nil, cfg.obs.tracer, nil).Start(ctx, "townhall.Open")
	defer func() { telemetry.End(span, err) }()
	p := &Platform{}
	ok := false
	defer func() {
		if !ok {
			p.Close()
		}
	}()
	// Host models that embed audit.Stamp get CreatedBy/UpdatedBy from the
	// subject in the statement's context (SPEC §5). The plugin goes on the
	// host's own handle, the one its models use; it touches no other model.
	if err := useStampPlugin(db); err != nil {
		return nil, fmt.Errorf("townhall: %w", err)
	}
	if dbx.DialectOf(db) == dbx.SQLite {
		own, isNew, err := dbx.SafeSQLite(db)
		if err != nil {
			return nil, fmt.Errorf("townhall: %w", err)
		}
		if isNew {
			p.closers = append(p.closers, func() error {
				sqlDB, err := own.DB()
				if err != nil {
					return err
				}
				return sqlDB.Close()
			})
		}
		db = own
	}
	p.db = db
	if err := dbx.Migrate(ctx, db, func(tx *gorm.DB) error {
		for _, m := range []func(*gorm.DB) error{
			audit.Migrate, location.Migrate, users.Migrate, affiliation.Migrate, policy.Migrate, access.Migrate,
		} {
			if err := m(tx); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("townhall: migrate: %w", err)
	}

	auditOpts := []audit.Option{audit.WithClock(cfg.now), audit.WithLogger(cfg.obs.logger), audit.WithMeterProvider(cfg.obs.meter)}
	var channel string
	if dbx.DialectOf(db) == dbx.Postgres && !cfg.polling && cfg.syncInterval >= 0 {
		var err error
		if channel, err = notify.Channel(ctx, db); err != nil {
			return nil, fmt.Errorf("townhall: %w", err)
		}
		auditOpts = append(auditOpts, audit.WithAppendHook(notify.Hook(channel)))
	}
	if cfg.auditBuf > 0 {
		auditOpts = append(auditOpts, audit.WithBuffer(cfg.auditBuf))
	}
	if cfg.drain > 0 {
		auditOpts = append(auditOpts, audit.WithDrainInterval(cfg.drain))
	}
	p.Audit = audit.New(db, append(auditOpts, cfg.auditExtra...)...)
	p.closers = append([]func() error{p.Audit.Close}, p.closers...)
	if err := openAuditEvidence(ctx, p.Audit, cfg.auditKeyed); err != nil {
		return nil, err
	}

	checkerClock := cfg.now
	if !cfg.clockSet {
		checkerClock = nil // the checker's default: a coarse clock for decision events
	}
	if p.Checker, err = access.NewChecker(ctx, db, access.CheckerConfig{
		Registry: cfg.registry, Audit: p.Audit, Clock: checkerClock, AuditAllowed: cfg.auditAllowed,
		SyncInterval: cfg.syncInterval, NotifyChannel: channel,
		Logger: cfg.obs.logger, TracerProvider: cfg.obs.tracer, MeterProvider: cfg.obs.meter, CheckSpans: cfg.obs.checkSpans,
	}); err != nil {
		return nil, fmt.Errorf("townhall: %w", err)
	}
	// Store-level writes bring the snapshot in step before they return.
	checker := p.Checker
	locOpts := []location.Option{location.WithClock(cfg.now), location.WithOnChange(func(ch location.Change) {
		_ = checker.ApplyLocation(ch) // the tree validated the change before committing it
	})}
	if cfg.levels != nil {
		locOpts = append(locOpts, location.WithLevels(cfg.levels...))
	}
	if p.Locations, err = location.NewStore(db, p.Audit, locOpts...); err != nil {
		return nil, fmt.Errorf("townhall: %w", err)
	}
	userOpts := []users.Option{users.WithClock(cfg.now), users.WithOnChange(func(ctx context.Context, ch users.Change) error {
		if ch.UserID != "" {
			return checker.RefreshUser(ctx, ch.UserID)
		}
		return checker.RefreshDepartment(ctx, ch.DepartmentID)
	})}
	if cfg.kdf != nil {
		userOpts = append(userOpts, users.WithKDF(*cfg.kdf))
	}
	userOpts = append(userOpts, cfg.userOpts...)
	p.Users = users.NewStore(db, p.Audit, userOpts...)
	p.Profiles = users.NewProfileStore(db, p.Audit, p.Locations, userOpts...)
	p.Affiliations = affiliation.NewStore(db, p.Audit, affiliation.WithClock(cfg.now),
		affiliation.WithOnChange(func(ctx context.Context, ch affiliation.Change) error {
			return checker.RefreshAffiliations(ctx, ch.UserIDs...)
		}))
	if p.Admin, err = access.NewAdmin(p.Checker, access.AdminConfig{
		Users: p.Users, Profiles: p.Profiles, Locations: p.Locations, Affiliations: p.Affiliations,
		MaxImpersonationTTL: cfg.maxImpersonation,
	}); err != nil {
		return nil, fmt.Errorf("townhall: %w", err)
	}
	p.closers = append([]func() error{p.Checker.Close}, p.closers...)
	ok = true
	return p, nil
}

// useStampPlugin registers audit.Plugin on db unless it is there already
// (Open may run more than once on one handle).
func useStampPlugin(db *gorm.DB) error {
	if _, ok := db.Config.Plugins[audit.Plugin{}.Name()]; ok {
		return nil
	}
	if err := db.Use(audit.Plugin{}); err != nil && !errors.Is(err, gorm.ErrRegistered) {
		return err
	}
	return nil
}

// Close stops the platform's background work, flushes pending audit events
// and closes any database pool Open created. The host's *gorm.DB stays open.
// Close is idempotent.
func (p *Platform) Close() error {
	var errs []error
	for _, c := range p.closers {
		if err := c(); err != nil {
			errs = append(errs, err)
		}
	}
	p.closers = nil
	return errors.Join(errs...)
}

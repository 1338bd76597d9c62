package users

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/civicstack/townhall/audit"
	"github.com/civicstack/townhall/internal/actor"
	"github.com/civicstack/townhall/internal/dbx"
)

// Kind tells interactive users (people, signing in with a password or the
// host's single sign-on) from technical users (programs, signing in with API
// keys).
type Kind string

// The kinds of user.
const (
	Interactive Kind = "interactive"
	Technical   Kind = "technical"
)

func (k Kind) valid() bool { return k == Interactive || k == Technical }

// User is a person or program known to townhall. Only Admin (and the
// deletion cascades) change IsActive, IsSuperAdmin and deletion; Store
// changes the other fields.
type User struct {
	ID           string
	Username     string
	Email        string
	FirstName    string
	LastName     string
	Kind         Kind
	IsActive     bool
	IsStaff      bool
	IsSuperAdmin bool
	LastLoginAt  *time.Time
	CreatedAt    time.Time
	UpdatedAt    time.Time

	// EmailVerifiedAt is when the email was last verified (VerifyEmail,
	// MarkEmailVerified); nil when it never was or has changed since.
	EmailVerifiedAt *time.Time
	// VerificationPending is set for a self-registered user who cannot sign
	// in until the email is verified (WithEmailVerification).
	VerificationPending bool
}

// NewUser is the input of Create and Register. ID is optional (empty means
// generate one), Kind defaults to Interactive, Password is optional (a user
// without one signs in through the host's single sign-on, or not at all).
type NewUser struct {
	ID        string
	Username  string
	Email     string
	Password  string
	FirstName string
	LastName  string
	Kind      Kind
	IsStaff   bool
}

// UserUpdate names the fields Update changes; nil fields stay as they are.
// An empty Email, FirstName or LastName clears the field.
type UserUpdate struct {
	Username  *string
	Email     *string
	FirstName *string
	LastName  *string
	IsStaff   *bool
}

// ListOptions pages through List: at most Limit users (0 means
// DefaultListLimit, more than MaxListLimit means MaxListLimit) with IDs
// after AfterID, in ID order.
type ListOptions struct {
	Limit   int
	AfterID string
}

// Limits of List.
const (
	DefaultListLimit = 100
	MaxListLimit     = 1000
)

// Store keeps users, their credentials and API keys. Its writes are
// unguarded (bootstrap, imports, host code that has authorised the change)
// and audited with the subject in the context, or "system". It is safe for
// concurrent use.
type Store struct {
	db  *gorm.DB
	log *audit.Log
	opt options

	dummyOnce sync.Once
	dummy     string
}

// NewStore returns a Store on db (migrated with Migrate) that audits to log.
func NewStore(db *gorm.DB, log *audit.Log, opts ...Option) *Store {
	return &Store{db: db, log: log, opt: buildOptions(opts)}
}

// Create adds a user. New users are active. ErrInvalidInput for a malformed
// field (see the package documentation for the rules), ErrDuplicate when the
// ID or the username (case-insensitively, deleted users included) is taken.
// Audited as TypeUserCreated.
func (s *Store) Create(ctx context.Context, u NewUser) (*User, error) {
	row, err := s.newRow(u)
	if err != nil {
		return nil, fmt.Errorf("create user: %w", err)
	}
	if err := s.insert(ctx, row, audit.Event{}, nil); err != nil {
		return nil, fmt.Errorf("create user: %w", err)
	}
	return toUser(row), nil
}

// createTx is Create inside the caller's transaction tx, without the audit
// event (the caller records its own) and without WithOnChange's callback
// (the caller refreshes after the commit; package txwrite's CreateUser).
func (s *Store) createTx(ctx context.Context, tx *gorm.DB, u NewUser) (*User, error) {
	if tx == nil {
		return nil, fmt.Errorf("create user: %w: nil transaction", ErrInvalidInput)
	}
	row, err := s.newRow(u)
	if err != nil {
		return nil, fmt.Errorf("create user: %w", err)
	}
	if err := tx.WithContext(ctx).Create(row).Error; err != nil {
		if dbx.IsUniqueViolation(err) {
			return nil, fmt.Errorf("create user: %w: user id or username taken", ErrDuplicate)
		}
		return nil, fmt.Errorf("create user: %w", err)
	}
	return toUser(row), nil
}

// Register is self-registration: it creates an active interactive user with
// no profile, so with authenticated-only rights. Kind must be empty or
// Interactive and IsStaff false (ErrInvalidInput otherwise). With
// WithEmailVerification the email is required, a verification message is
// sent through the Mailer in the same transaction (a failed send registers
// no one), and the user cannot sign in until verified. The event
// (TypeUserCreated, Details self_registered) names the new user as actor
// unless the context carries a subject.
func (s *Store) Register(ctx context.Context, u NewUser) (*User, error) {
	if u.Kind != "" && u.Kind != Interactive {
		return nil, fmt.Errorf("register: %w: self-registered users are interactive", ErrInvalidInput)
	}
	if u.IsStaff {
		return nil, fmt.Errorf("register: %w: self-registered users are not staff", ErrInvalidInput)
	}
	row, err := s.newRow(u)
	if err != nil {
		return nil, fmt.Errorf("register: %w", err)
	}
	var after func(tx *gorm.DB) error
	if s.opt.verifyEmail {
		switch {
		case s.opt.mailer == nil:
			return nil, fmt.Errorf("register: %w", ErrNoMailer)
		case row.Email == "":
			return nil, fmt.Errorf("register: %w: email required for verification", ErrInvalidInput)
		}
		row.VerifyPending = true
		after = func(tx *gorm.DB) error { return s.registerVerificationTx(ctx, tx, row) }
	}
	ev := audit.Event{Details: map[string]any{"self_registered": true}}
	if a, ok := actor.From(ctx); !ok || a.UserID == "" {
		ev.ActorID = row.ID
	}
	if err := s.insert(ctx, row, ev, after); err != nil {
		return nil, fmt.Errorf("register: %w", err)
	}
	return toUser(row), nil
}

// newRow validates u and builds its row, hashing the password (the slow
// part, done before any transaction opens).
func (s *Store) newRow(u NewUser) (*userRow, error) {
	if u.ID == "" {
		u.ID = dbx.NewID()
	} else if err := validateID(u.ID, "user id"); err != nil {
		return nil, err
	} else if slices.Contains(ReservedIDs, u.ID) {
		return nil, fmt.Errorf("%w: %w %q", ErrInvalidInput, ErrReservedID, u.ID)
	}
	if u.Kind == "" {
		u.Kind = Interactive
	}
	if !u.Kind.valid() {
		return nil, fmt.Errorf("%w: unknown kind %q", ErrInvalidInput, u.Kind)
	}
	key, err := usernameKey(u.Username)
	if err != nil {
		return nil, err
	}
	if err := validateEmail(u.Email); err != nil {
		return nil, err
	}
	if err := validateName(u.FirstName, "first name"); err != nil {
		return nil, err
	}
	if err := validateName(u.LastName, "last name"); err != nil {
		return nil, err
	}
	var hash string
	if u.Password != "" {
		if u.Kind == Technical {
			return nil, fmt.Errorf("%w: %w: technical users have no password", ErrInvalidInput, ErrTechnicalUser)
		}
		if err := validatePassword(u.Password); err != nil {
			return nil, err
		}
		hash = hashPassword(u.Password, s.opt.kdf)
	}
	now := s.opt.nowUTC()
	return &userRow{
		ID:           u.ID,
		Username:     u.Username,
		UsernameKey:  key,
		Email:        u.Email,
		FirstName:    u.FirstName,
		LastName:     u.LastName,
		Kind:         string(u.Kind),
		IsActive:     true,
		IsStaff:      u.IsStaff,
		PasswordHash: hash,
		CreatedAt:    now,
		UpdatedAt:    now,
	}, nil
}

// insert writes row and its TypeUserCreated event ev in one transaction,
// then runs after (if any) in it.
func (s *Store) insert(ctx context.Context, row *userRow, ev audit.Event, after func(tx *gorm.DB) error) error {
	ev.Type = audit.TypeUserCreated
	ev.UserID = row.ID
	if ev.Details == nil {
		ev.Details = map[string]any{}
	}
	ev.Details["kind"] = row.Kind
	err := dbx.Tx(ctx, s.db, func(tx *gorm.DB) error {
		if err := tx.Create(row).Error; err != nil {
			if dbx.IsUniqueViolation(err) {
				return fmt.Errorf("%w: user id or username taken", ErrDuplicate)
			}
			return err
		}
		if err := s.log.RecordTx(ctx, tx, ev); err != nil {
			return err
		}
		if after != nil {
			return after(tx)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return s.opt.notify(ctx, Change{UserID: row.ID})
}

// Get returns the user with this ID; ErrNotFound for an unknown or deleted
// user.
func (s *Store) Get(ctx context.Context, id string) (*User, error) {
	return s.GetTx(ctx, s.db, id)
}

// GetTx is Get inside the caller's transaction tx.
func (s *Store) GetTx(ctx context.Context, tx *gorm.DB, id string) (*User, error) {
	tx, err := userTx(ctx, tx, id)
	if err != nil {
		return nil, fmt.Errorf("get user: %w", err)
	}
	var row userRow
	if err := tx.Where("id = ?", id).Take(&row).Error; err != nil {
		return nil, fmt.Errorf("get user %q: %w", id, notFound(err))
	}
	return toUser(&row), nil
}

// GetByUsername returns the live user with this username, compared
// case-insensitively; ErrNotFound for an unknown or deleted user,
// ErrInvalidInput for a string that cannot be a username.
func (s *Store) GetByUsername(ctx context.Context, username string) (*User, error) {
	key, err := usernameKey(username)
	if err != nil {
		return nil, fmt.Errorf("get user by username: %w", err)
	}
	row, err := s.byKey(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("get user by username: %w", err)
	}
	return toUser(row), nil
}

func (s *Store) byKey(ctx context.Context, key string) (*userRow, error) {
	var row userRow
	if err := s.db.WithContext(ctx).Where("username_key = ?", key).Take(&row).Error; err != nil {
		return nil, notFound(err)
	}
	return &row, nil
}

// Update changes the plain fields of user id (never IsActive, IsSuperAdmin
// or deletion: those are Admin's). With no field set it returns the user
// unchanged and writes nothing. ErrNotFound, ErrInvalidInput, ErrDuplicate
// (username taken). Audited as TypeUserUpdated, naming the changed fields.
func (s *Store) Update(ctx context.Context, id string, u UserUpdate) (*User, error) {
	if err := validateID(id, "user id"); err != nil {
		return nil, fmt.Errorf("update user: %w", err)
	}
	set := map[string]any{}
	var fields []string
	if u.Username != nil {
		key, err := usernameKey(*u.Username)
		if err != nil {
			return nil, fmt.Errorf("update user: %w", err)
		}
		set["username"], set["username_key"] = *u.Username, key
		fields = append(fields, "username")
	}
	if u.Email != nil {
		if err := validateEmail(*u.Email); err != nil {
			return nil, fmt.Errorf("update user: %w", err)
		}
		set["email"] = *u.Email
		set["email_verified_at"] = nil // a new address is not verified
		fields = append(fields, "email")
	}
	for _, f := range []struct {
		v          *string
		col, label string
	}{{u.FirstName, "first_name", "first name"}, {u.LastName, "last_name", "last name"}} {
		if f.v == nil {
			continue
		}
		if err := validateName(*f.v, f.label); err != nil {
			return nil, fmt.Errorf("update user: %w", err)
		}
		set[f.col] = *f.v
		fields = append(fields, f.col)
	}
	if u.IsStaff != nil {
		set["is_staff"] = *u.IsStaff
		fields = append(fields, "is_staff")
	}
	if len(set) == 0 {
		return s.Get(ctx, id)
	}
	set["updated_at"] = s.opt.nowUTC()
	var out *User
	err := dbx.Tx(ctx, s.db, func(tx *gorm.DB) error {
		if _, err := lockUser(tx, id); err != nil {
			return err
		}
		if err := tx.Model(&userRow{}).Where("id = ?", id).Updates(set).Error; err != nil {
			if dbx.IsUniqueViolation(err) {
				return fmt.Errorf("%w: username taken", ErrDuplicate)
			}
			return err
		}
		if err := s.log.RecordTx(ctx, tx, audit.Event{
			Type:    audit.TypeUserUpdated,
			UserID:  id,
			Details: map[string]any{"fields": fields},
		}); err != nil {
			return err
		}
		var err error
		out, err = s.GetTx(ctx, tx, id)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("update user %q: %w", id, err)
	}
	return out, nil
}

// List returns live users in ID order, a page at a time (keyset paging: pass
// the last ID of a page as the next AfterID).
func (s *Store) List(ctx context.Context, o ListOptions) ([]User, error) {
	limit, err := pageLimit(o)
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	q := s.db.WithContext(ctx).Order("id").Limit(limit)
	if o.AfterID != "" {
		q = q.Where("id > ?", o.AfterID)
	}
	var rows []userRow
	if err := q.Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	out := make([]User, 0, len(rows))
	for i := range rows {
		out = append(out, *toUser(&rows[i]))
	}
	return out, nil
}

func pageLimit(o ListOptions) (int, error) {
	if o.Limit < 0 {
		return 0, fmt.Errorf("%w: negative limit", ErrInvalidInput)
	}
	if o.AfterID != "" {
		if err := validateID(o.AfterID, "after id"); err != nil {
			return 0, err
		}
	}
	switch {
	case o.Limit == 0:
		return DefaultListLimit, nil
	case o.Limit > MaxListLimit:
		return MaxListLimit, nil
	}
	return o.Limit, nil
}

// lockUser reads the live user row id inside tx, locking it against
// concurrent writers until tx ends (SQLite transactions already hold the
// database's write lock).
func lockUser(tx *gorm.DB, id string) (*userRow, error) {
	var row userRow
	if err := forUpdate(tx).Where("id = ?", id).Take(&row).Error; err != nil {
		return nil, notFound(err)
	}
	return &row, nil
}

func forUpdate(tx *gorm.DB) *gorm.DB {
	if dbx.DialectOf(tx) == dbx.SQLite {
		return tx
	}
	return tx.Clauses(clause.Locking{Strength: "UPDATE"})
}

// notFound maps gorm's missing-row error to ErrNotFound.
func notFound(err error) error {
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return ErrNotFound
	}
	return err
}

func toUser(r *userRow) *User {
	u := &User{
		ID:           r.ID,
		Username:     r.Username,
		Email:        r.Email,
		FirstName:    r.FirstName,
		LastName:     r.LastName,
		Kind:         Kind(r.Kind),
		IsActive:     r.IsActive,
		IsStaff:      r.IsStaff,
		IsSuperAdmin: r.IsSuperAdmin,
		LastLoginAt:  utcPtr(r.LastLoginAt),
		CreatedAt:    r.CreatedAt.UTC(),
		UpdatedAt:    r.UpdatedAt.UTC(),

		EmailVerifiedAt:     utcPtr(r.EmailVerifiedAt),
		VerificationPending: r.VerifyPending,
	}
	return u
}

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

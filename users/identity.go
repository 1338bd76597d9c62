package users

import (
	"context"
	"errors"
	"fmt"
	"time"
	"unicode"
	"unicode/utf8"

	"gorm.io/gorm"

	"github.com/civicstack/townhall/audit"
	"github.com/civicstack/townhall/internal/dbx"
)

// Identity links an account at an external identity provider (OAuth, OIDC,
// SAML) to a user. The host's own code verifies the provider's answer
// (signature, audience, expiry); townhall maps the verified (Provider,
// Subject) pair to its user.
type Identity struct {
	Provider  string // the host's name for the provider: an ID ("google", "keycloak-staff")
	Subject   string // the provider's stable identifier of the account (OIDC "sub", SAML NameID)
	UserID    string
	CreatedAt time.Time
}

// MaxSubjectBytes is the longest external subject.
const MaxSubjectBytes = 255

// identityRow is a link as stored. LiveKey is "" while the link is live and
// the row's ID once unlinked, so one (provider, subject) pair has at most
// one live link and any number of ended ones.
type identityRow struct {
	ID        string         `gorm:"primaryKey;size:64"`
	Provider  string         `gorm:"size:64;not null;uniqueIndex:idx_townhall_identities_live,priority:1"`
	Subject   string         `gorm:"size:255;not null;uniqueIndex:idx_townhall_identities_live,priority:2"`
	LiveKey   string         `gorm:"size:64;not null;uniqueIndex:idx_townhall_identities_live,priority:3"`
	UserID    string         `gorm:"size:64;not null;index:idx_townhall_identities_user"`
	CreatedAt time.Time      `gorm:"precision:6;not null"`
	DeletedAt gorm.DeletedAt `gorm:"precision:6"`
}

func (identityRow) TableName() string { return IdentitiesTable }

func validateIdentity(provider, subject string) error {
	if err := validateID(provider, "identity provider"); err != nil {
		return err
	}
	if subject == "" || len(subject) > MaxSubjectBytes || !utf8.ValidString(subject) {
		return fmt.Errorf("%w: external subject must be 1-%d bytes of utf-8", ErrInvalidInput, MaxSubjectBytes)
	}
	for _, r := range subject {
		if unicode.IsControl(r) {
			return fmt.Errorf("%w: external subject has a control character", ErrInvalidInput)
		}
	}
	return nil
}

// LinkIdentity links (provider, subject) to user userID. ErrNotFound for an
// unknown or deleted user, ErrTechnicalUser for a technical one,
// ErrDuplicate when the pair is already linked (to this user or another).
// Audited as TypeIdentityLinked, naming the provider (the subject is the
// provider's, and may be an email address: it is not recorded).
func (s *Store) LinkIdentity(ctx context.Context, userID, provider, subject string) error {
	if err := validateID(userID, "user id"); err != nil {
		return fmt.Errorf("link identity: %w", err)
	}
	if err := validateIdentity(provider, subject); err != nil {
		return fmt.Errorf("link identity: %w", err)
	}
	err := dbx.Tx(ctx, s.db, func(tx *gorm.DB) error {
		row, err := lockUser(tx, userID)
		if err != nil {
			return err
		}
		return s.linkTx(ctx, tx, row, provider, subject)
	})
	if err != nil {
		return fmt.Errorf("link identity: %w", err)
	}
	return nil
}

func (s *Store) linkTx(ctx context.Context, tx *gorm.DB, user *userRow, provider, subject string) error {
	if Kind(user.Kind) == Technical {
		return fmt.Errorf("%w: technical users sign in with api keys", ErrTechnicalUser)
	}
	row := identityRow{ID: dbx.NewID(), Provider: provider, Subject: subject, UserID: user.ID, CreatedAt: s.opt.nowUTC()}
	if err := tx.Create(&row).Error; err != nil {
		if dbx.IsUniqueViolation(err) {
			return fmt.Errorf("%w: identity already linked", ErrDuplicate)
		}
		return err
	}
	return s.log.RecordTx(ctx, tx, audit.Event{
		Type: audit.TypeIdentityLinked, UserID: user.ID,
		Details: map[string]any{"provider": provider, "identity_id": row.ID},
	})
}

// UnlinkIdentity ends the link of (provider, subject). ErrNotFound when it
// is not linked. Audited as TypeIdentityUnlinked.
func (s *Store) UnlinkIdentity(ctx context.Context, provider, subject string) error {
	if err := validateIdentity(provider, subject); err != nil {
		return fmt.Errorf("unlink identity: %w", err)
	}
	err := dbx.Tx(ctx, s.db, func(tx *gorm.DB) error {
		var row identityRow
		if err := forUpdate(tx).Where("provider = ? AND subject = ?", provider, subject).Take(&row).Error; err != nil {
			return notFound(err)
		}
		err := tx.Model(&identityRow{}).Where("id = ?", row.ID).
			UpdateColumns(map[string]any{"deleted_at": s.opt.nowUTC(), "live_key": row.ID}).Error
		if err != nil {
			return err
		}
		return s.log.RecordTx(ctx, tx, audit.Event{
			Type: audit.TypeIdentityUnlinked, UserID: row.UserID,
			Details: map[string]any{"provider": provider, "identity_id": row.ID},
		})
	})
	if err != nil {
		return fmt.Errorf("unlink identity: %w", err)
	}
	return nil
}

// FindByIdentity returns the live user linked to (provider, subject).
// ErrNotFound when there is none.
func (s *Store) FindByIdentity(ctx context.Context, provider, subject string) (*User, error) {
	if err := validateIdentity(provider, subject); err != nil {
		return nil, fmt.Errorf("find by identity: %w", err)
	}
	var row identityRow
	if err := s.db.WithContext(ctx).Where("provider = ? AND subject = ?", provider, subject).Take(&row).Error; err != nil {
		return nil, fmt.Errorf("find by identity: %w", notFound(err))
	}
	u, err := s.Get(ctx, row.UserID)
	if err != nil {
		return nil, fmt.Errorf("find by identity: %w", err)
	}
	return u, nil
}

// Identities lists the live links of user userID, oldest first. An unknown
// or deleted user has none.
func (s *Store) Identities(ctx context.Context, userID string) ([]Identity, error) {
	db, live, err := s.owner(ctx, userID)
	if err != nil {
		return nil, fmt.Errorf("list identities: %w", err)
	}
	out := []Identity{}
	if !live {
		return out, nil
	}
	var rows []identityRow
	if err := db.Where("user_id = ?", userID).Order("created_at, id").Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("list identities: %w", err)
	}
	for _, r := range rows {
		out = append(out, Identity{Provider: r.Provider, Subject: r.Subject, UserID: r.UserID, CreatedAt: r.CreatedAt.UTC()})
	}
	return out, nil
}

// ExternalSignIn is a verified sign-in at an external identity provider,
// the input of SignInExternal.
type ExternalSignIn struct {
	Provider string
	Subject  string
	// Provision, when set, creates a user from it (as self-registration:
	// interactive, no profile, no password; Password and Kind must be
	// empty) and links the identity to them, if no user is linked yet.
	Provision *NewUser
}

// SignInExternal signs in the user linked to a verified external identity
// and starts a session (StartSession with method "<provider>"). With
// Provision set, an identity seen for the first time creates and links a
// new user, in one transaction with the sign-in. ErrNotFound when no user
// is linked and Provision is nil; otherwise as StartSession and Register.
func (s *Store) SignInExternal(ctx context.Context, in ExternalSignIn) (*SignIn, error) {
	if err := validateIdentity(in.Provider, in.Subject); err != nil {
		return nil, fmt.Errorf("external sign-in: %w", err)
	}
	u, err := s.FindByIdentity(ctx, in.Provider, in.Subject)
	switch {
	case err == nil:
		return s.StartSession(ctx, u.ID, in.Provider)
	case !errors.Is(err, ErrNotFound) || in.Provision == nil:
		return nil, fmt.Errorf("external sign-in: %w", err)
	}
	nu := *in.Provision
	if nu.Password != "" || (nu.Kind != "" && nu.Kind != Interactive) || nu.IsStaff {
		return nil, fmt.Errorf("external sign-in: %w: provisioned users are interactive, not staff, without a password", ErrInvalidInput)
	}
	row, err := s.newRow(nu)
	if err != nil {
		return nil, fmt.Errorf("external sign-in: %w", err)
	}
	var out *SignIn
	ev := audit.Event{ActorID: row.ID, Details: map[string]any{"provisioned_by": in.Provider}}
	err = s.insert(ctx, row, ev, func(tx *gorm.DB) error {
		if err := s.linkTx(ctx, tx, row, in.Provider, in.Subject); err != nil {
			return err
		}
		var err error
		out, err = s.signInTx(ctx, tx, row, in.Provider, true)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("external sign-in: %w", err)
	}
	return out, nil
}

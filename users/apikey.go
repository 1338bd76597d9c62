package users

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/civicstack/townhall/audit"
	"github.com/civicstack/townhall/internal/dbx"
)

// APIKey describes an API key of a technical user. The secret is shown once,
// by CreateAPIKey, and never stored: only its SHA-256 is.
type APIKey struct {
	ID        string // the public part of the key, used to find it
	UserID    string
	Name      string
	CreatedAt time.Time
}

// MaxAPIKeyNameRunes is the longest API key name.
const MaxAPIKeyNameRunes = 150

// Key format: th_<key id: 12 random bytes, hex>_<secret: 32 random bytes,
// base64url without padding>.
const (
	apiKeyPrefix    = "th_"
	apiKeyIDBytes   = 12
	apiKeySecretLen = 32
)

// CreateAPIKey creates an API key for technical user userID and returns it.
// The key is shown only this once. ErrNotFound for an unknown or deleted
// user, ErrTechnicalOnly (with ErrInvalidInput) for an interactive one.
// Audited as TypeAPIKeyCreated.
func (s *Store) CreateAPIKey(ctx context.Context, userID, name string) (key string, err error) {
	if err := validateID(userID, "user id"); err != nil {
		return "", fmt.Errorf("create api key: %w", err)
	}
	if err := validateLabel(name, "api key name", MaxAPIKeyNameRunes); err != nil {
		return "", fmt.Errorf("create api key: %w", err)
	}
	idBytes := make([]byte, apiKeyIDBytes)
	secret := make([]byte, apiKeySecretLen)
	_, _ = rand.Read(idBytes) // crypto/rand.Read never fails on supported platforms
	_, _ = rand.Read(secret)
	row := apiKeyRow{
		ID:         hex.EncodeToString(idBytes),
		UserID:     userID,
		Name:       name,
		SecretHash: secretHash(secret),
		CreatedAt:  s.opt.nowUTC(),
	}
	err = dbx.Tx(ctx, s.db, func(tx *gorm.DB) error {
		user, err := lockUser(tx, userID)
		if err != nil {
			return err
		}
		if Kind(user.Kind) != Technical {
			return fmt.Errorf("%w: %w", ErrTechnicalOnly, ErrInvalidInput)
		}
		if err := tx.Create(&row).Error; err != nil {
			return err
		}
		return s.log.RecordTx(ctx, tx, audit.Event{
			Type:    audit.TypeAPIKeyCreated,
			UserID:  userID,
			Details: map[string]any{"key_id": row.ID},
		})
	})
	if err != nil {
		return "", fmt.Errorf("create api key: %w", err)
	}
	return apiKeyPrefix + row.ID + "_" + base64.RawURLEncoding.EncodeToString(secret), nil
}

// secretHash is the stored form of an API key secret. A fast hash is right
// here, unlike for passwords: the secret is 256 random bits, so there is
// nothing to guess and no dictionary to slow down, and a slow KDF would
// only cost every API request.
func secretHash(secret []byte) string {
	sum := sha256.Sum256(secret)
	return hex.EncodeToString(sum[:])
}

// parseAPIKey splits a key into its ID and secret.
func parseAPIKey(key string) (id string, secret []byte, ok bool) {
	rest, found := strings.CutPrefix(key, apiKeyPrefix)
	if !found {
		return "", nil, false
	}
	id, enc, found := strings.Cut(rest, "_")
	if !found || len(id) != 2*apiKeyIDBytes {
		return "", nil, false
	}
	if _, err := hex.DecodeString(id); err != nil || strings.ToLower(id) != id {
		return "", nil, false
	}
	secret, err := base64.RawURLEncoding.DecodeString(enc)
	if err != nil || len(secret) != apiKeySecretLen {
		return "", nil, false
	}
	return id, secret, true
}

// AuthenticateAPIKey returns the technical user that key belongs to.
// ErrInvalidCredentials for a malformed, unknown or revoked key or a deleted
// user, ErrInactive for a deactivated user. Key sign-ins are not audited
// (they happen on every request of a program).
func (s *Store) AuthenticateAPIKey(ctx context.Context, key string) (*User, error) {
	id, secret, ok := parseAPIKey(key)
	if !ok {
		return nil, fmt.Errorf("authenticate api key: %w", ErrInvalidCredentials)
	}
	var row apiKeyRow
	if err := s.db.WithContext(ctx).Where("id = ?", id).Take(&row).Error; err != nil {
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return nil, fmt.Errorf("authenticate api key: %w", ErrInvalidCredentials)
		}
		return nil, fmt.Errorf("authenticate api key: %w", err)
	}
	if subtle.ConstantTimeCompare([]byte(secretHash(secret)), []byte(row.SecretHash)) != 1 {
		return nil, fmt.Errorf("authenticate api key: %w", ErrInvalidCredentials)
	}
	user, err := s.Get(ctx, row.UserID)
	switch {
	case errors.Is(err, ErrNotFound):
		return nil, fmt.Errorf("authenticate api key: %w", ErrInvalidCredentials)
	case err != nil:
		return nil, fmt.Errorf("authenticate api key: %w", err)
	case user.Kind != Technical:
		return nil, fmt.Errorf("authenticate api key: %w", ErrInvalidCredentials)
	case !user.IsActive:
		return nil, fmt.Errorf("authenticate api key: %w", ErrInactive)
	}
	return user, nil
}

// APIKeys lists the live (unrevoked) keys of user userID, oldest first,
// without secrets. An unknown or deleted user has none.
func (s *Store) APIKeys(ctx context.Context, userID string) ([]APIKey, error) {
	db, live, err := s.owner(ctx, userID)
	if err != nil {
		return nil, fmt.Errorf("list api keys: %w", err)
	}
	var rows []apiKeyRow
	if live {
		if err := db.Where("user_id = ?", userID).Order("created_at, id").Find(&rows).Error; err != nil {
			return nil, fmt.Errorf("list api keys: %w", err)
		}
	}
	out := make([]APIKey, 0, len(rows))
	for _, r := range rows {
		out = append(out, APIKey{ID: r.ID, UserID: r.UserID, Name: r.Name, CreatedAt: r.CreatedAt.UTC()})
	}
	return out, nil
}

// RevokeAPIKey revokes the key with this ID: it stops working at once and
// stays on record. ErrNotFound for an unknown or already revoked key.
// Audited as TypeAPIKeyRevoked.
func (s *Store) RevokeAPIKey(ctx context.Context, keyID string) error {
	if err := validateID(keyID, "api key id"); err != nil {
		return fmt.Errorf("revoke api key: %w", err)
	}
	err := dbx.Tx(ctx, s.db, func(tx *gorm.DB) error {
		var row apiKeyRow
		if err := forUpdate(tx).Where("id = ?", keyID).Take(&row).Error; err != nil {
			return notFound(err)
		}
		if err := tx.Model(&apiKeyRow{}).Where("id = ?", keyID).
			UpdateColumn("revoked_at", s.opt.nowUTC()).Error; err != nil {
			return err
		}
		return s.log.RecordTx(ctx, tx, audit.Event{
			Type:    audit.TypeAPIKeyRevoked,
			UserID:  row.UserID,
			Details: map[string]any{"key_id": keyID},
		})
	})
	if err != nil {
		return fmt.Errorf("revoke api key %q: %w", keyID, err)
	}
	return nil
}

package users

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"
	"gorm.io/gorm"

	"github.com/civicstack/townhall/audit"
	"github.com/civicstack/townhall/internal/dbx"
)

// Password limits. There are no composition rules (NIST SP 800-63B).
const (
	MinPasswordRunes = 8
	MaxPasswordBytes = 1024
)

// KDFParams is the cost of argon2id, the key derivation function that hashes
// passwords.
type KDFParams struct {
	Time      uint32 // passes over memory
	MemoryKiB uint32 // memory in KiB
	Threads   uint8  // degree of parallelism
}

// DefaultKDF is the OWASP Password Storage Cheat Sheet's argon2id setting of
// 19 MiB, two passes, one thread (equivalent in strength to its 46 MiB, one
// pass variant, with less memory per concurrent sign-in).
var DefaultKDF = KDFParams{Time: 2, MemoryKiB: 19456, Threads: 1}

const (
	saltLen = 16
	keyLen  = 32
	// Bounds on parameters read back from a stored hash, so a corrupted row
	// cannot make a verification panic or exhaust memory.
	maxKDFMemoryKiB = 4 << 20 // 4 GiB
	maxKDFTime      = 1 << 10
)

func (p KDFParams) normalized() KDFParams {
	if p.Time == 0 {
		p.Time = DefaultKDF.Time
	}
	if p.MemoryKiB == 0 {
		p.MemoryKiB = DefaultKDF.MemoryKiB
	}
	if p.Threads == 0 {
		p.Threads = DefaultKDF.Threads
	}
	if p.Time > maxKDFTime {
		p.Time = maxKDFTime
	}
	if p.MemoryKiB > maxKDFMemoryKiB {
		p.MemoryKiB = maxKDFMemoryKiB
	}
	step := 4 * uint32(p.Threads)
	p.MemoryKiB = p.MemoryKiB / step * step
	if p.MemoryKiB < 2*step {
		p.MemoryKiB = 2 * step
	}
	return p
}

// validatePassword applies the password rules: valid UTF-8, at least
// MinPasswordRunes characters, at most MaxPasswordBytes bytes.
func validatePassword(pw string) error {
	switch {
	case !utf8.ValidString(pw):
		return fmt.Errorf("%w: password is not valid utf-8", ErrInvalidInput)
	case utf8.RuneCountInString(pw) < MinPasswordRunes:
		return fmt.Errorf("%w: password shorter than %d characters", ErrInvalidInput, MinPasswordRunes)
	case len(pw) > MaxPasswordBytes:
		return fmt.Errorf("%w: password longer than %d bytes", ErrInvalidInput, MaxPasswordBytes)
	}
	return nil
}

// hashPassword returns the PHC string of pw:
// $argon2id$v=19$m=<KiB>,t=<passes>,p=<threads>$<salt>$<hash>.
func hashPassword(pw string, p KDFParams) string {
	salt := make([]byte, saltLen)
	_, _ = rand.Read(salt) // crypto/rand.Read never fails on supported platforms
	key := argon2.IDKey([]byte(pw), salt, p.Time, p.MemoryKiB, p.Threads, keyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version,
		p.MemoryKiB, p.Time, p.Threads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key))
}

// verifyPassword reports whether pw matches the PHC string encoded, using the
// parameters stored in it and a constant-time comparison. A malformed hash
// never matches.
func verifyPassword(pw, encoded string) bool {
	p, salt, want, ok := parsePHC(encoded)
	if !ok || len(pw) > MaxPasswordBytes {
		return false
	}
	got := argon2.IDKey([]byte(pw), salt, p.Time, p.MemoryKiB, p.Threads, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1
}

func parsePHC(s string) (p KDFParams, salt, key []byte, ok bool) {
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" ||
		parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return p, nil, nil, false
	}
	for _, kv := range strings.Split(parts[3], ",") {
		k, v, found := strings.Cut(kv, "=")
		if !found {
			return p, nil, nil, false
		}
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			return p, nil, nil, false
		}
		switch k {
		case "m":
			p.MemoryKiB = uint32(n)
		case "t":
			p.Time = uint32(n)
		case "p":
			if n > 255 {
				return p, nil, nil, false
			}
			p.Threads = uint8(n)
		default:
			return p, nil, nil, false
		}
	}
	if p.Time < 1 || p.Time > maxKDFTime || p.Threads < 1 ||
		p.MemoryKiB < 8*uint32(p.Threads) || p.MemoryKiB > maxKDFMemoryKiB {
		return p, nil, nil, false
	}
	salt, err := base64.RawStdEncoding.DecodeString(parts[4])
	if err != nil || len(salt) < 8 {
		return p, nil, nil, false
	}
	key, err = base64.RawStdEncoding.DecodeString(parts[5])
	if err != nil || len(key) < 16 || len(key) > 64 {
		return p, nil, nil, false
	}
	return p, salt, key, true
}

// dummyHash is a hash of a random password with the store's cost. Sign-ins
// of unknown users and users without a password verify against it, so the
// time taken does not reveal which usernames exist.
func (s *Store) dummyHash() string {
	s.dummyOnce.Do(func() {
		s.dummy = hashPassword(dbx.NewID(), s.opt.kdf)
	})
	return s.dummy
}

// SetPassword sets the password of user id, hashed with argon2id. It clears
// the failure count and any lock and ends the user's sessions. Technical users never have a password
// (ErrInvalidInput and ErrTechnicalUser). Audited as TypePasswordChanged.
func (s *Store) SetPassword(ctx context.Context, id, password string) error {
	if err := validateID(id, "user id"); err != nil {
		return fmt.Errorf("set password: %w", err)
	}
	if err := validatePassword(password); err != nil {
		return fmt.Errorf("set password: %w", err)
	}
	hash := hashPassword(password, s.opt.kdf) // the slow part, outside the transaction
	return s.writePassword(ctx, id, hash)
}

// ClearPassword removes the password of user id: the user can then sign in
// only through the host's single sign-on. It ends the user's sessions. Audited as TypePasswordChanged.
func (s *Store) ClearPassword(ctx context.Context, id string) error {
	if err := validateID(id, "user id"); err != nil {
		return fmt.Errorf("clear password: %w", err)
	}
	return s.writePassword(ctx, id, "")
}

func (s *Store) writePassword(ctx context.Context, id, hash string) error {
	op := "set password"
	if hash == "" {
		op = "clear password"
	}
	err := dbx.Tx(ctx, s.db, func(tx *gorm.DB) error {
		row, err := lockUser(tx, id)
		if err != nil {
			return err
		}
		if hash != "" && Kind(row.Kind) == Technical {
			return fmt.Errorf("%w: %w: technical users have no password", ErrInvalidInput, ErrTechnicalUser)
		}
		err = s.setPasswordTx(tx, id, hash)
		if err != nil {
			return err
		}
		ended, err := s.endSessionsTx(tx, id, EndPasswordChanged)
		if err != nil {
			return err
		}
		return s.log.RecordTx(ctx, tx, audit.Event{
			Type:    audit.TypePasswordChanged,
			UserID:  id,
			Details: map[string]any{"cleared": hash == "", "sessions_ended": ended},
		})
	})
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return nil
}

// setPasswordTx stores hash as user id's password and clears the failure
// count and any lock.
func (s *Store) setPasswordTx(tx *gorm.DB, id, hash string) error {
	return tx.Model(&userRow{}).Where("id = ?", id).Updates(map[string]any{
		"password_hash": hash,
		"failed_logins": 0,
		"locked_until":  nil,
		"updated_at":    s.opt.nowUTC(),
	}).Error
}

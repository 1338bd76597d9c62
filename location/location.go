package location

import (
	"errors"
	"fmt"
	"unicode"
	"unicode/utf8"

	"github.com/civicstack/townhall/internal/dbx"
)

// Location is a node of the location tree. ParentID is empty only for
// top-level locations.
type Location struct {
	ID       string
	Name     string
	Level    string
	ParentID string
}

// Municipality is the level name of the tenant level.
const Municipality = "municipality"

// DefaultLevels are the levels used when none are configured, top first.
var DefaultLevels = []string{"region", "district", Municipality, "village"}

// Limits on configuration and input.
const (
	// MaxLevels is the largest number of levels a tree may have.
	MaxLevels = 32
	// MaxLevelLen is the longest level name, in bytes.
	MaxLevelLen = 64
	// MaxNameLen is the longest location name, in characters.
	MaxNameLen = 255
)

// Errors returned by the store.
var (
	ErrNotFound     = errors.New("location: not found")
	ErrInvalidLevel = errors.New("location: invalid level")
	ErrInvalidInput = errors.New("location: invalid input")
	ErrDuplicate    = errors.New("location: duplicate id")
	ErrCycle        = errors.New("location: move under own subtree")
	// ErrNoMunicipality reports a live location that has no location of the
	// municipality level among its ancestors-or-self (it lies above the
	// municipality level, or in a branch that skips it).
	ErrNoMunicipality = errors.New("location: no municipality")
)

// ValidateLevels reports whether levels can configure a tree: 1 to
// MaxLevels unique names, each a letter followed by letters, digits, '_' or
// '-' (at most MaxLevelLen bytes), one of them Municipality (the tenant
// level). The error wraps ErrInvalidLevel.
func ValidateLevels(levels []string) error {
	if len(levels) == 0 || len(levels) > MaxLevels {
		return fmt.Errorf("%w: %d levels, want 1 to %d", ErrInvalidLevel, len(levels), MaxLevels)
	}
	seen := make(map[string]bool, len(levels))
	for _, l := range levels {
		if !validLevelName(l) {
			return fmt.Errorf("%w: malformed level name %q", ErrInvalidLevel, l)
		}
		if seen[l] {
			return fmt.Errorf("%w: duplicate level %q", ErrInvalidLevel, l)
		}
		seen[l] = true
	}
	if !seen[Municipality] {
		return fmt.Errorf("%w: levels must include %q (the tenant level)", ErrInvalidLevel, Municipality)
	}
	return nil
}

func validLevelName(s string) bool {
	if len(s) == 0 || len(s) > MaxLevelLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case i > 0 && (c >= '0' && c <= '9' || c == '_' || c == '-'):
		default:
			return false
		}
	}
	return true
}

// validName accepts display names: valid UTF-8, at most MaxNameLen
// characters, no control characters. The empty name is allowed.
func validName(s string) bool {
	if !utf8.ValidString(s) || utf8.RuneCountInString(s) > MaxNameLen {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return false
		}
	}
	return true
}

func checkID(what, id string) error {
	if !dbx.ValidID(id) {
		return fmt.Errorf("%w: %s %q", ErrInvalidInput, what, id)
	}
	return nil
}

package affiliation

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/civicstack/townhall/internal/dbx"
)

// Field limits.
const (
	// MaxNameLen is the longest organisation name, in characters.
	MaxNameLen = 200
	// MaxKindLen is the longest organisation kind, in characters.
	MaxKindLen = 64
	// MaxServiceLen is the longest service (module) name, in bytes.
	MaxServiceLen = 64
	// MaxServices is the largest number of services an organisation has.
	MaxServices = 256
)

// Validity windows must lie within the years every database stores.
const (
	minYear = 1000
	maxYear = 9999
)

func checkID(what, id string) error {
	if !dbx.ValidID(id) {
		return fmt.Errorf("%w: %s %q: want 1-64 characters of A-Z a-z 0-9 . _ : -", ErrInvalidInput, what, id)
	}
	return nil
}

// checkText accepts a required label: 1-max characters of valid UTF-8, not
// only spaces, no control characters.
func checkText(what, s string, max int) error {
	if strings.TrimSpace(s) == "" {
		return fmt.Errorf("%w: %s is required", ErrInvalidInput, what)
	}
	if !utf8.ValidString(s) || utf8.RuneCountInString(s) > max {
		return fmt.Errorf("%w: %s must be valid text of at most %d characters", ErrInvalidInput, what, max)
	}
	if strings.IndexFunc(s, unicode.IsControl) >= 0 {
		return fmt.Errorf("%w: %s contains control characters", ErrInvalidInput, what)
	}
	return nil
}

func validService(name string) bool {
	if len(name) == 0 || len(name) > MaxServiceLen {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// normaliseServices validates module names and returns them sorted and
// without duplicates (never nil).
func normaliseServices(services []string) ([]string, error) {
	out := make([]string, 0, len(services))
	for _, name := range services {
		if !validService(name) {
			return nil, fmt.Errorf("%w: service %q: want 1-%d characters of A-Z a-z 0-9 _ -", ErrInvalidInput, name, MaxServiceLen)
		}
		out = append(out, name)
	}
	slices.Sort(out)
	out = slices.Compact(out)
	if len(out) > MaxServices {
		return nil, fmt.Errorf("%w: more than %d services", ErrInvalidInput, MaxServices)
	}
	return out, nil
}

func encodeServices(services []string) string {
	b, _ := json.Marshal(services) // a []string always encodes
	return string(b)
}

func decodeServices(s string) ([]string, error) {
	out := []string{}
	if s == "" {
		return out, nil
	}
	if err := json.Unmarshal([]byte(s), &out); err != nil {
		return nil, fmt.Errorf("affiliation: stored services %q: %w", s, err)
	}
	if out == nil {
		out = []string{}
	}
	return out, nil
}

// normaliseTime returns t in UTC at microsecond precision, or an error
// when it lies outside the years every database stores. nil stays nil.
func normaliseTime(what string, t *time.Time) (*time.Time, error) {
	if t == nil {
		return nil, nil
	}
	u := t.UTC().Truncate(time.Microsecond)
	if y := u.Year(); y < minYear || y > maxYear {
		return nil, fmt.Errorf("%w: %s %s outside years %d-%d", ErrInvalidInput, what, u.Format(time.RFC3339Nano), minYear, maxYear)
	}
	return &u, nil
}

// normaliseLink validates l's IDs and window and returns l with its
// times normalised.
func normaliseLink(l Link) (Link, error) {
	if err := checkID("user id", l.UserID); err != nil {
		return l, err
	}
	if err := checkID("organisation id", l.OrganisationID); err != nil {
		return l, err
	}
	from, err := normaliseTime("valid from", l.ValidFrom)
	if err != nil {
		return l, err
	}
	to, err := normaliseTime("valid to", l.ValidTo)
	if err != nil {
		return l, err
	}
	if from != nil && to != nil && !to.After(*from) {
		return l, fmt.Errorf("%w: valid to must be after valid from", ErrInvalidInput)
	}
	l.ValidFrom, l.ValidTo = from, to
	return l, nil
}

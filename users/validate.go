package users

import (
	"fmt"
	"net/mail"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/civicstack/townhall/internal/dbx"
)

// Field limits.
const (
	MaxUsernameRunes = 150
	MaxEmailBytes    = 254
	MaxNameRunes     = 150
)

// anonymizedPrefix starts the username of an anonymised user. Live usernames
// may not start with it, so an anonymised user's username can never clash
// with a live one.
const anonymizedPrefix = "deleted-"

func validateID(id, what string) error {
	if !dbx.ValidID(id) {
		return fmt.Errorf("%w: %s %q: want 1-64 characters of A-Z a-z 0-9 . _ : -", ErrInvalidInput, what, id)
	}
	return nil
}

// validUsernameRune reports whether r may appear in a username: a Unicode
// letter or digit (as Django's \w allows), or one of @ . + - _.
func validUsernameRune(r rune) bool {
	switch r {
	case '@', '.', '+', '-', '_':
		return true
	}
	return unicode.IsLetter(r) || unicode.IsDigit(r)
}

// usernameKey validates a username and returns its normalised key: the
// username lower-cased with strings.ToLower (simple case folding, rune by
// rune, so the key has as many characters as the username). Two usernames
// with the same key are the same username.
func usernameKey(username string) (string, error) {
	n := utf8.RuneCountInString(username)
	if !utf8.ValidString(username) || n == 0 || n > MaxUsernameRunes {
		return "", fmt.Errorf("%w: username must be 1-%d characters", ErrInvalidInput, MaxUsernameRunes)
	}
	for _, r := range username {
		if !validUsernameRune(r) {
			return "", fmt.Errorf("%w: username may contain only letters, digits and @ . + - _", ErrInvalidInput)
		}
	}
	key := strings.ToLower(username)
	if strings.HasPrefix(key, anonymizedPrefix) {
		return "", fmt.Errorf("%w: usernames starting with %q are reserved for anonymised users", ErrInvalidInput, anonymizedPrefix)
	}
	return key, nil
}

// validateEmail accepts "" (no email) or a bare address (no display name, no
// angle brackets) that net/mail parses, of at most MaxEmailBytes bytes.
func validateEmail(email string) error {
	if email == "" {
		return nil
	}
	if len(email) > MaxEmailBytes {
		return fmt.Errorf("%w: email longer than %d bytes", ErrInvalidInput, MaxEmailBytes)
	}
	addr, err := mail.ParseAddress(email)
	if err != nil || addr.Name != "" || addr.Address != email {
		return fmt.Errorf("%w: email is not a plain address", ErrInvalidInput)
	}
	return nil
}

// validateName accepts a first or last name: optional, valid UTF-8, at most
// MaxNameRunes characters, no control characters.
func validateName(name, what string) error {
	if !utf8.ValidString(name) || utf8.RuneCountInString(name) > MaxNameRunes {
		return fmt.Errorf("%w: %s must be valid text of at most %d characters", ErrInvalidInput, what, MaxNameRunes)
	}
	if strings.IndexFunc(name, unicode.IsControl) >= 0 {
		return fmt.Errorf("%w: %s contains control characters", ErrInvalidInput, what)
	}
	return nil
}

// validateLabel accepts a required display label (department or API key
// name): 1-max characters, not only spaces, no control characters.
func validateLabel(label, what string, maxRunes int) error {
	if strings.TrimSpace(label) == "" {
		return fmt.Errorf("%w: %s is required", ErrInvalidInput, what)
	}
	if !utf8.ValidString(label) || utf8.RuneCountInString(label) > maxRunes {
		return fmt.Errorf("%w: %s must be valid text of at most %d characters", ErrInvalidInput, what, maxRunes)
	}
	if strings.IndexFunc(label, unicode.IsControl) >= 0 {
		return fmt.Errorf("%w: %s contains control characters", ErrInvalidInput, what)
	}
	return nil
}

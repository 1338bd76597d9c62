package dbx

import (
	"crypto/rand"
	"encoding/hex"
)

// MaxIDLen is the longest identifier townhall accepts.
const MaxIDLen = 64

// ValidID reports whether id follows the identifier rules: 1–64 characters
// of A-Z a-z 0-9 . _ : -. The platform domain "*" is not a valid ID.
func ValidID(id string) bool {
	if len(id) == 0 || len(id) > MaxIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '.', c == '_', c == ':', c == '-':
		default:
			return false
		}
	}
	return true
}

// NewID returns a fresh random identifier (128 bits, hex encoded).
func NewID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return hex.EncodeToString(b[:])
}

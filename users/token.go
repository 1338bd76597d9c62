package users

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"strings"
)

// Bearer secrets (sessions, password reset and email verification tokens)
// are a prefix naming their use followed by 256 random bits in unpadded
// base64url. Only the SHA-256 of the whole token is stored, and looked up
// through a unique index: the token has full entropy, so a fast hash is
// right (there is nothing to guess, and a slow KDF would only cost every
// request), and the hash of a guess says nothing about any stored token.
const (
	sessionPrefix = "ths_"
	resetPrefix   = "thr_"
	verifyPrefix  = "thv_"

	secretBytes = 32
	secretChars = 43 // secretBytes in unpadded base64url
)

// newSecret returns a fresh token with prefix and its stored hash.
func newSecret(prefix string) (token, hash string) {
	b := make([]byte, secretBytes)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	token = prefix + base64.RawURLEncoding.EncodeToString(b)
	return token, hashSecret(token)
}

// secretHashOf returns the stored hash of token, or false when token cannot
// be one of prefix (so no lookup is made for garbage).
func secretHashOf(prefix, token string) (string, bool) {
	rest, ok := strings.CutPrefix(token, prefix)
	if !ok || len(rest) != secretChars {
		return "", false
	}
	if b, err := base64.RawURLEncoding.DecodeString(rest); err != nil || len(b) != secretBytes {
		return "", false
	}
	return hashSecret(token), true
}

func hashSecret(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

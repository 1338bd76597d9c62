package users

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestVerifyPassword_RoundTrip(t *testing.T) {
	p := KDFParams{Time: 1, MemoryKiB: 64, Threads: 1}
	h := hashPassword("s3cret password", p)
	assert.True(t, verifyPassword("s3cret password", h))
	assert.False(t, verifyPassword("s3cret passwore", h))
	assert.False(t, verifyPassword("", h))
	assert.False(t, verifyPassword(strings.Repeat("x", MaxPasswordBytes+1), h))
}

func TestVerifyPassword_MalformedHashesNeverMatchNorPanic(t *testing.T) {
	good := hashPassword("password", KDFParams{Time: 1, MemoryKiB: 64, Threads: 1})
	parts := strings.Split(good, "$")
	require.Len(t, parts, 6)
	with := func(i int, v string) string {
		q := append([]string(nil), parts...)
		q[i] = v
		return strings.Join(q, "$")
	}
	for name, h := range map[string]string{
		"empty":         "",
		"garbage":       "not a hash",
		"argon2i":       with(1, "argon2i"),
		"bcrypt":        "$2a$10$abcdefghijklmnopqrstuuABCDEFGHIJKLMNOPQRSTUVWXYZ01234",
		"old version":   with(2, "v=16"),
		"zero time":     with(3, "m=64,t=0,p=1"),
		"zero threads":  with(3, "m=64,t=1,p=0"),
		"threads > 255": with(3, "m=64,t=1,p=256"),
		"huge memory":   with(3, "m=4294967295,t=1,p=1"),
		"tiny memory":   with(3, "m=1,t=1,p=1"),
		"unknown param": with(3, "m=64,t=1,p=1,x=2"),
		"missing value": with(3, "m=64,t,p=1"),
		"negative":      with(3, "m=64,t=-1,p=1"),
		"bad salt":      with(4, "!!!"),
		"short salt":    with(4, "AAAA"),
		"bad hash":      with(5, "!!!"),
		"short hash":    with(5, "AAAA"),
		"extra field":   good + "$x",
	} {
		assert.NotPanics(t, func() { assert.False(t, verifyPassword("password", h), name) }, name)
	}
}

func TestKDFParams_NormalizedToWhatArgon2Uses(t *testing.T) {
	for _, tt := range []struct{ in, want KDFParams }{
		{KDFParams{}, DefaultKDF},
		{KDFParams{Time: 1, MemoryKiB: 64, Threads: 1}, KDFParams{Time: 1, MemoryKiB: 64, Threads: 1}},
		{KDFParams{Time: 1, MemoryKiB: 1, Threads: 1}, KDFParams{Time: 1, MemoryKiB: 8, Threads: 1}},
		{KDFParams{Time: 1, MemoryKiB: 67, Threads: 2}, KDFParams{Time: 1, MemoryKiB: 64, Threads: 2}},
		{KDFParams{Time: 1 << 20, MemoryKiB: 1 << 30, Threads: 1}, KDFParams{Time: maxKDFTime, MemoryKiB: maxKDFMemoryKiB, Threads: 1}},
	} {
		assert.Equal(t, tt.want, tt.in.normalized(), "%+v", tt.in)
	}
	assert.Equal(t, DefaultKDF, DefaultKDF.normalized(), "the default is already normalised")
}

package audit

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// TestHashRecord_CanonicalFormIsStable pins the chain's encoding: stored
// chains must verify after every change of the code that hashes them. The
// expected hashes were computed apart from this code, from doc.go's
// description (Python's hashlib over the netstrings).
func TestHashRecord_CanonicalFormIsStable(t *testing.T) {
	denied := false
	tests := []struct {
		name string
		r    record
		want string
	}{
		{"first event, empty fields", record{Seq: 1, At: time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC), Type: TypeGrant}, "6a434cd932f15b41da6e153e8f5a602e3d663cc489654f882b3765776df3fa02"},
		{"every field", record{
			Seq: 123456, At: time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.FixedZone("X", 3600)), Type: TypeDecisionDenied,
			ActorID: "u1", ImpersonatorID: "s1", UserID: "u2", LocationID: "loc-1", Module: "occurrences", Action: "create",
			Reason: "no_grant", Allowed: &denied, Details: `{"n":1,"é":"<x>"}`,
			PrevHash: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
		}, "324a8572f762b644311985fb21065f1d2da99fd60ff3ce67e5ff5478b6bae762"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, hashRecord(&tt.r))
		})
	}
}

// TestMACOf_IsStable pins the MAC's encoding, computed the same way.
func TestMACOf_IsStable(t *testing.T) {
	assert.Equal(t, "bdc827e05cc41dd52ff60ec1d1941a3ab19fac867aea0b6f6b51ac1f0810d556", macOf(key1, "k1", "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"))
}

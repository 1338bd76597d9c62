package audit

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"time"
)

// chainVersion starts every canonical form, so a future change of the
// encoding cannot be confused with this one.
const chainVersion = "townhall.audit.v1"

// timeLayout is the canonical time: UTC, exactly six fractional digits.
const timeLayout = "2006-01-02T15:04:05.000000Z"

// canonicalTime returns t as stored: UTC, truncated to microseconds.
func canonicalTime(t time.Time) time.Time {
	return t.UTC().Truncate(time.Microsecond)
}

// hashRecord returns the hex SHA-256 of r's canonical form (see doc.go):
// the version string, then each field as a netstring
// "<decimal byte length>:<bytes>," in the order seq, at, type, actor_id,
// impersonator_id, user_id, location_id, module, action, reason, allowed,
// details, prev_hash. The form is built in one buffer, on the stack for
// events without long details, and hashed in one call.
func hashRecord(r *record) string {
	var stack [768]byte
	b := appendField(stack[:0], chainVersion)
	var num [32]byte
	b = appendField(b, string(strconv.AppendInt(num[:0], r.Seq, 10)))
	b = appendField(b, string(canonicalTime(r.At).AppendFormat(num[:0], timeLayout)))
	for _, f := range [...]string{r.Type, r.ActorID, r.ImpersonatorID, r.UserID, r.LocationID, r.Module, r.Action, r.Reason} {
		b = appendField(b, f)
	}
	switch {
	case r.Allowed == nil:
		b = appendField(b, "")
	case *r.Allowed:
		b = appendField(b, "true")
	default:
		b = appendField(b, "false")
	}
	b = appendField(b, r.Details)
	b = appendField(b, r.PrevHash)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// appendField appends s to b as a netstring.
func appendField(b []byte, s string) []byte {
	b = strconv.AppendInt(b, int64(len(s)), 10)
	b = append(b, ':')
	b = append(b, s...)
	return append(b, ',')
}

package audit

import (
	"crypto/sha256"
	"encoding/hex"
	"hash"
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
// details, prev_hash.
func hashRecord(r *record) string {
	h := sha256.New()
	var buf [64]byte
	writeField(h, buf[:0], chainVersion)
	writeField(h, buf[:0], string(strconv.AppendInt(buf[32:32], r.Seq, 10)))
	writeField(h, buf[:0], string(canonicalTime(r.At).AppendFormat(buf[32:32], timeLayout)))
	writeField(h, buf[:0], r.Type)
	writeField(h, buf[:0], r.ActorID)
	writeField(h, buf[:0], r.ImpersonatorID)
	writeField(h, buf[:0], r.UserID)
	writeField(h, buf[:0], r.LocationID)
	writeField(h, buf[:0], r.Module)
	writeField(h, buf[:0], r.Action)
	writeField(h, buf[:0], r.Reason)
	switch {
	case r.Allowed == nil:
		writeField(h, buf[:0], "")
	case *r.Allowed:
		writeField(h, buf[:0], "true")
	default:
		writeField(h, buf[:0], "false")
	}
	writeField(h, buf[:0], r.Details)
	writeField(h, buf[:0], r.PrevHash)
	var sum [sha256.Size]byte
	return hex.EncodeToString(h.Sum(sum[:0]))
}

// writeField writes s as a netstring; scratch holds the length prefix.
func writeField(h hash.Hash, scratch []byte, s string) {
	scratch = strconv.AppendInt(scratch, int64(len(s)), 10)
	scratch = append(scratch, ':')
	h.Write(scratch)
	h.Write([]byte(s))
	h.Write([]byte{','})
}

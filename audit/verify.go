package audit

import (
	"context"
	"fmt"
)

// verifyPage is how many events Verify reads per query.
const verifyPage = 1000

// TamperError is the error Verify returns for a chain that does not verify.
// It matches ErrTampered with errors.Is.
type TamperError struct {
	// Seq is the first event found out of place: edited, inserted, or the
	// first event after a removed one. When events at the end were
	// removed, it is the Seq the head names; when the head does not match
	// the last event, the last event's.
	Seq int64
	// Problem says what is wrong, in lower case.
	Problem string
}

// Error implements error.
func (e *TamperError) Error() string {
	return fmt.Sprintf("audit: chain tampered at event %d: %s", e.Seq, e.Problem)
}

// Unwrap makes a TamperError match ErrTampered.
func (e *TamperError) Unwrap() error { return ErrTampered }

// Verify checks the whole chain: it first waits until the events enqueued
// by RecordAsync before the call are written, then walks the events in Seq
// order, a page at a time, recomputing each hash and checking that each
// event names its predecessor's hash, and finally that the head row matches
// the last event. Gaps in Seq are allowed. It returns a *TamperError
// (matching ErrTampered) naming the first event found out of place, or the
// database error that stopped it. Appends may continue while it runs.
func (l *Log) Verify(ctx context.Context) error {
	if l == nil || l.db == nil {
		return errNilDB
	}
	if ctx == nil {
		ctx = context.Background()
	}
	if err := l.sync(ctx); err != nil {
		return err
	}
	db := l.db.WithContext(ctx)
	var lastSeq int64
	lastHash := ""
	for {
		var rs []record
		if err := db.Where("seq > ?", lastSeq).Order("seq").Limit(verifyPage).Find(&rs).Error; err != nil {
			return fmt.Errorf("audit: verify: %w", err)
		}
		for i := range rs {
			r := &rs[i]
			if r.Seq <= 0 {
				return &TamperError{Seq: r.Seq, Problem: "sequence numbers start at 1"}
			}
			if hashRecord(r) != r.Hash {
				return &TamperError{Seq: r.Seq, Problem: "content does not match its hash"}
			}
			if r.PrevHash != lastHash {
				if lastSeq == 0 {
					return &TamperError{Seq: r.Seq, Problem: "first event does not start the chain"}
				}
				return &TamperError{Seq: r.Seq, Problem: fmt.Sprintf("does not follow event %d", lastSeq)}
			}
			lastSeq, lastHash = r.Seq, r.Hash
		}
		if len(rs) == verifyPage {
			continue
		}
		// The head is read after the events: every committed event moved it
		// forward in its own transaction, so a head behind the last event
		// means that event was inserted, and a head ahead means events were
		// appended since (walk on) or the last ones were removed.
		var h head
		res := db.Where("id = ?", headID).Limit(1).Find(&h)
		if res.Error != nil {
			return fmt.Errorf("audit: verify: head: %w", res.Error)
		}
		switch {
		case res.RowsAffected == 0:
			return &TamperError{Seq: lastSeq, Problem: "head row missing"}
		case h.LastSeq < lastSeq:
			var first int64
			if err := db.Model(&record{}).Select("MIN(seq)").Where("seq > ?", h.LastSeq).Scan(&first).Error; err != nil {
				return fmt.Errorf("audit: verify: %w", err)
			}
			return &TamperError{Seq: first, Problem: fmt.Sprintf("event after the head (head at %d)", h.LastSeq)}
		case h.LastSeq == lastSeq:
			if h.LastHash != lastHash {
				return &TamperError{Seq: lastSeq, Problem: "head does not match the last event"}
			}
			return nil
		}
		var more int64
		if err := db.Model(&record{}).Where("seq > ?", lastSeq).Count(&more).Error; err != nil {
			return fmt.Errorf("audit: verify: %w", err)
		}
		if more == 0 {
			return &TamperError{Seq: h.LastSeq, Problem: fmt.Sprintf("head names event %d but the log ends at %d", h.LastSeq, lastSeq)}
		}
	}
}

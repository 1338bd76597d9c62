package audit

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm/clause"
)

// Query returns the events matching q, ascending by Seq. It first waits
// until the events enqueued by RecordAsync before the call are written.
// A negative Limit or AfterSeq, a Limit above MaxLimit, an Until before
// Since or a malformed filter is ErrInvalidInput.
func (l *Log) Query(ctx context.Context, q Query) ([]Event, error) {
	if l == nil || l.db == nil {
		return nil, errNilDB
	}
	if ctx == nil {
		ctx = context.Background()
	}
	limit := q.Limit
	switch {
	case limit == 0:
		limit = DefaultLimit
	case limit < 0 || limit > MaxLimit:
		return nil, fmt.Errorf("audit: query limit %d outside 0..%d: %w", q.Limit, MaxLimit, ErrInvalidInput)
	}
	if q.AfterSeq < 0 {
		return nil, fmt.Errorf("audit: query after seq %d is negative: %w", q.AfterSeq, ErrInvalidInput)
	}
	if !q.Since.IsZero() && !q.Until.IsZero() && q.Until.Before(q.Since) {
		return nil, fmt.Errorf("audit: query until before since: %w", ErrInvalidInput)
	}
	filters := [...]struct {
		column, value string
		max           int
	}{
		{"actor_id", q.ActorID, MaxIDLen},
		{"user_id", q.UserID, MaxIDLen},
		{"location_id", q.LocationID, MaxIDLen},
		{"type", q.Type, MaxNameLen},
	}
	var conds []clause.Expression
	for _, f := range filters {
		if f.value == "" {
			continue
		}
		if err := checkString("query "+f.column, f.value, f.max); err != nil {
			return nil, err
		}
		conds = append(conds, clause.Eq{Column: clause.Column{Name: f.column}, Value: f.value})
	}
	if q.AfterSeq > 0 {
		conds = append(conds, clause.Gt{Column: clause.Column{Name: "seq"}, Value: q.AfterSeq})
	}
	if !q.Since.IsZero() {
		conds = append(conds, clause.Gte{Column: clause.Column{Name: "at"}, Value: ceilMicro(q.Since)})
	}
	if !q.Until.IsZero() {
		conds = append(conds, clause.Lt{Column: clause.Column{Name: "at"}, Value: ceilMicro(q.Until)})
	}
	if err := l.sync(ctx); err != nil {
		return nil, err
	}
	tx := l.db.WithContext(ctx).Model(&record{})
	if len(conds) > 0 {
		tx = tx.Clauses(clause.Where{Exprs: conds})
	}
	var rs []record
	if err := tx.Order("seq").Limit(limit).Find(&rs).Error; err != nil {
		return nil, fmt.Errorf("audit: query: %w", err)
	}
	events := make([]Event, 0, len(rs))
	for i := range rs {
		e, err := rs[i].event()
		if err != nil {
			return nil, err
		}
		events = append(events, e)
	}
	return events, nil
}

// ceilMicro rounds t up to the next microsecond in UTC: stored times are
// whole microseconds, so at >= ceil(t) iff at >= t, and likewise for <.
func ceilMicro(t time.Time) time.Time {
	c := canonicalTime(t)
	if c.Before(t) {
		c = c.Add(time.Microsecond)
	}
	return c
}

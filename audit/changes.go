package audit

import (
	"context"
	"fmt"

	"gorm.io/gorm"

	"github.com/civicstack/townhall/internal/dbx"
)

// decisionTypes are the events that record decisions, not changes.
var decisionTypes = []string{TypeDecisionDenied, TypeDecisionAllowed, TypeDecisionsDropped}

// IsDecision reports whether an event type records a decision (or dropped
// decisions) rather than a change.
func IsDecision(typ string) bool {
	for _, t := range decisionTypes {
		if t == typ {
			return true
		}
	}
	return false
}

// Head returns the Seq of the last committed event (0 for an empty log).
// Every write townhall makes commits its events, so Head is the database's
// revision: a reader that has applied every change event up to Head is in
// step with the database. On a Galera node the read is causal
// (wsrep_sync_wait): it waits until the node has applied every write the
// cluster committed before the call, so what follows on this node reads at
// least that state.
func (l *Log) Head(ctx context.Context) (int64, error) {
	if l == nil || l.db == nil {
		return 0, errNilDB
	}
	db := l.db.WithContext(ctx)
	var seq []int64
	if err := db.Raw(dbx.CausalRead(ctx, db)+"SELECT last_seq FROM "+head{}.TableName()+" WHERE id = ?", headID).
		Scan(&seq).Error; err != nil {
		return 0, fmt.Errorf("audit: read head: %w", err)
	}
	if len(seq) != 1 {
		return 0, fmt.Errorf("audit: read head: %w", gorm.ErrRecordNotFound)
	}
	return seq[0], nil
}

// Changes returns up to limit change events (decision events skipped) with
// afterSeq < Seq <= upTo, ascending. Unlike Query it does not wait for the
// asynchronous writer, whose decision events it skips anyway. Appends are
// serialised and numbered under the head lock, so events commit in Seq
// order: a reader paging with Changes never misses one.
func (l *Log) Changes(ctx context.Context, afterSeq, upTo int64, limit int) ([]Event, error) {
	if l == nil || l.db == nil {
		return nil, errNilDB
	}
	if limit <= 0 || limit > MaxLimit || afterSeq < 0 {
		return nil, fmt.Errorf("audit: changes: %w", ErrInvalidInput)
	}
	var rs []record
	err := l.db.WithContext(ctx).Model(&record{}).
		Where("seq > ? AND seq <= ? AND type NOT IN ?", afterSeq, upTo, decisionTypes).
		Order("seq").Limit(limit).Find(&rs).Error
	if err != nil {
		return nil, fmt.Errorf("audit: changes: %w", err)
	}
	out := make([]Event, 0, len(rs))
	for i := range rs {
		e, err := rs[i].event()
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}

package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"go.opentelemetry.io/otel/metric"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/civicstack/townhall/internal/actor"
	"github.com/civicstack/townhall/internal/dbx"
)

// DefaultBuffer is the capacity of the asynchronous decision buffer when
// WithBuffer is not given.
const DefaultBuffer = 4096

// maxBatch bounds how many buffered events one transaction writes.
const maxBatch = 512

// insertBatch bounds the rows of one INSERT statement: drivers bind
// parameters in time that grows faster than linearly with their number.
const insertBatch = 32

type options struct {
	now        func() time.Time
	buffer     int
	drainEvery time.Duration
	onAppend   func(tx *gorm.DB, seq int64) error
	logger     *slog.Logger
	meter      metric.MeterProvider

	keys     keyRing
	signer   *signer
	cpEvents int
	cpEvery  time.Duration
	err      error // the first invalid option
}

func (o *options) setErr(err error) {
	if o.err == nil {
		o.err = err
	}
}

// Option configures a Log.
type Option func(*options)

// WithClock sets the clock that stamps events with a zero At (default
// time.Now). A nil function is ignored.
func WithClock(now func() time.Time) Option {
	return func(o *options) {
		if now != nil {
			o.now = now
		}
	}
}

// WithBuffer sets the capacity of the asynchronous decision buffer (default
// DefaultBuffer), shared by a DecisionQueue's shards. Values below 1 are
// ignored.
func WithBuffer(n int) Option {
	return func(o *options) {
		if n > 0 {
			o.buffer = n
		}
	}
}

// DefaultDrainInterval is how often the writer drains queued decisions.
const DefaultDrainInterval = 100 * time.Millisecond

// WithDrainInterval sets how often the writer drains the decisions queued
// by RecordDecision (default DefaultDrainInterval). It also drains when the
// queue is half full, and on Flush, Query, Verify and Close.
func WithDrainInterval(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.drainEvery = d
		}
	}
}

// WithAppendHook registers fn to run inside the transaction of every
// synchronous append (Record, RecordTx), after the event is chained, with
// its Seq. Decision events written by the asynchronous writer do not call
// it. townhall uses it to notify other processes (PostgreSQL NOTIFY) in the
// same transaction as the change the event records; an error from fn rolls
// the transaction back.
func WithAppendHook(fn func(tx *gorm.DB, seq int64) error) Option {
	return func(o *options) { o.onAppend = fn }
}

// Log is the hash-chained audit log. Create it with New and stop it with
// Close; it is safe for concurrent use.
type Log struct {
	db       *gorm.DB
	now      func() time.Time
	onAppend func(tx *gorm.DB, seq int64) error

	// mu guards closed against RecordAsync: senders hold it shared, Close
	// exclusively, so nothing is enqueued after the final drain.
	mu      sync.RWMutex
	closed  bool
	pending chan pending
	dropped atomic.Int64
	flushes chan chan error
	stop    chan struct{}
	done    chan struct{}
	once    sync.Once

	errMu    sync.Mutex
	asyncErr error

	decisions  *ring[Decision]
	queues                   // DecisionQueues (decision_code.go)
	obs        *observer     // logs and metrics of the writer (observe.go)
	closedFlag atomic.Bool   // closed, readable without mu
	poke       chan struct{} // wakes the writer when the ring is half full
	drainEvery time.Duration

	keys   keyRing
	optErr error // an invalid option: the log refuses to work
	cp     checkpointer
}

// pending is a buffered event with its details already encoded, so the
// caller may reuse its map as soon as RecordAsync returns.
type pending struct {
	ev      Event
	details string
}

// New returns a log writing to db and starts its asynchronous writer. The
// tables must exist (Migrate). Call Close to flush and stop the writer.
func New(db *gorm.DB, opts ...Option) *Log {
	l := newLog(db, opts...)
	go l.run()
	l.startCheckpoints()
	return l
}

// newLog is New without starting the writer.
func newLog(db *gorm.DB, opts ...Option) *Log {
	o := options{
		now: time.Now, buffer: DefaultBuffer, drainEvery: DefaultDrainInterval,
		cpEvents: DefaultCheckpointEvents, cpEvery: DefaultCheckpointInterval,
	}
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	l := &Log{
		db:         db,
		now:        o.now,
		onAppend:   o.onAppend,
		pending:    make(chan pending, o.buffer),
		flushes:    make(chan chan error),
		decisions:  newRing[Decision](o.buffer),
		poke:       make(chan struct{}, 1),
		drainEvery: o.drainEvery,
		stop:       make(chan struct{}),
		done:       make(chan struct{}),
		keys:       o.keys,
		optErr:     o.err,
	}
	l.cp.init(o.signer, o.cpEvents, o.cpEvery)
	l.obs = newObserver(l, o.logger, o.meter)
	return l
}

var errNilDB = fmt.Errorf("audit: nil database: %w", ErrInvalidInput)

// Record appends e in its own transaction. A zero At is set from the log's
// clock; an empty ActorID is filled from the actor in ctx, or "system"; an
// empty ImpersonatorID is filled from the actor in ctx when the event's
// actor is that actor.
func (l *Log) Record(ctx context.Context, e Event) error {
	if err := l.usable(); err != nil {
		return err
	}
	if ctx == nil {
		ctx = context.Background()
	}
	r, err := l.prepare(ctx, e)
	if err != nil {
		return err
	}
	if err := dbx.Tx(ctx, l.db, func(tx *gorm.DB) error { return l.appendOne(tx, r) }); err != nil {
		return err
	}
	l.cp.appended(1)
	return nil
}

// RecordTx appends e inside the caller's transaction tx, so the event
// commits or rolls back with the change it describes. It fills At, ActorID
// and ImpersonatorID like Record. It locks the chain's head row until tx
// ends, serialising appends across processes: call it as late as possible
// in the transaction. When tx is not a transaction, RecordTx opens one.
func (l *Log) RecordTx(ctx context.Context, tx *gorm.DB, e Event) error {
	if err := l.usable(); err != nil {
		return err
	}
	if tx == nil {
		return errNilDB
	}
	if ctx == nil {
		ctx = context.Background()
	}
	r, err := l.prepare(ctx, e)
	if err != nil {
		return err
	}
	// A statement already built on tx must not leak into the append.
	tx = tx.Session(&gorm.Session{NewDB: true, Context: ctx})
	if committer, ok := tx.Statement.ConnPool.(gorm.TxCommitter); !ok || committer == nil {
		err = dbx.Tx(ctx, tx, func(tx *gorm.DB) error { return l.appendOne(tx, r) })
	} else {
		err = l.appendOne(tx, r)
	}
	if err == nil {
		// Counted before the caller commits: a checkpoint due now may
		// miss this event, which the next one covers.
		l.cp.appended(1)
	}
	return err
}

func (l *Log) usable() error {
	if l == nil || l.db == nil {
		return errNilDB
	}
	if l.optErr != nil {
		return l.optErr
	}
	l.mu.RLock()
	closed := l.closed
	l.mu.RUnlock()
	if closed {
		return ErrClosed
	}
	return nil
}

// prepare fills e's defaults from ctx and the clock, validates it and
// returns its row, not yet chained.
func (l *Log) prepare(ctx context.Context, e Event) (*record, error) {
	a, hasActor := actor.From(ctx)
	if e.ActorID == "" {
		e.ActorID = actor.SystemID
		if hasActor && a.UserID != "" {
			e.ActorID = a.UserID
		}
	}
	if e.ImpersonatorID == "" && hasActor && e.ActorID == a.UserID {
		e.ImpersonatorID = a.ImpersonatorID
	}
	if e.At.IsZero() {
		e.At = l.now()
	}
	e.At = canonicalTime(e.At)
	if err := validate(&e); err != nil {
		return nil, err
	}
	details, err := encodeDetails(e.Details)
	if err != nil {
		return nil, err
	}
	return toRecord(&e, details), nil
}

func (l *Log) appendOne(tx *gorm.DB, r *record) error {
	if err := l.appendRecords(tx, []*record{r}); err != nil {
		return fmt.Errorf("audit: record: %w", err)
	}
	if l.onAppend != nil {
		if err := l.onAppend(tx, r.Seq); err != nil {
			return fmt.Errorf("audit: append hook: %w", err)
		}
	}
	return nil
}

// appendRecords chains rs after the head and writes them and the new head.
// tx must be a transaction. It only writes, so a transaction that fails and
// is run again as a whole (a retried serialisation failure) chains afresh.
func (l *Log) appendRecords(tx *gorm.DB, rs []*record) error {
	h, err := lockHead(tx)
	if err != nil {
		return err
	}
	return l.appendAfter(tx, h, rs)
}

// appendAfter chains rs after h, locked by lockHead in tx, links them under
// the current key, and writes them and the new head.
func (l *Log) appendAfter(tx *gorm.DB, h head, rs []*record) error {
	if l.optErr != nil {
		return l.optErr
	}
	keyID := l.keys.current
	for _, r := range rs {
		h.LastSeq++
		r.Seq = h.LastSeq
		r.PrevHash = h.LastHash
		r.Hash = hashRecord(r)
		r.KeyID, r.MAC = "", ""
		if keyID != "" {
			r.KeyID, r.MAC = keyID, l.keys.mac(keyID, r.Hash)
		}
		h.LastHash = r.Hash
	}
	// The head moves before the events are written. On Galera another
	// node's append is applied here row by row in its order: with the head
	// first, it collides with this transaction's head lock and aborts it
	// as a conflict (retried) before its events are written.
	res := tx.Model(&head{}).Where("id = ?", headID).
		Updates(map[string]any{"last_seq": h.LastSeq, "last_hash": h.LastHash})
	if res.Error != nil {
		return fmt.Errorf("update head: %w", res.Error)
	}
	if res.RowsAffected != 1 {
		return errors.New("update head: head row missing")
	}
	if err := tx.CreateInBatches(&rs, insertBatch).Error; err != nil {
		if dbx.IsUniqueViolation(err) {
			// The Seq was taken under the head lock, so only another
			// node's append can hold it: a lost race, as when the
			// server reports the abort (the error it reports depends
			// on timing).
			return fmt.Errorf("insert events: %w: %w", dbx.ErrConflict, err)
		}
		return fmt.Errorf("insert events: %w", err)
	}
	return nil
}

// lockHead locks the head row for the rest of tx and returns it.
func lockHead(tx *gorm.DB) (head, error) {
	var h head
	q := tx
	if dbx.DialectOf(tx) == dbx.SQLite {
		// Take SQLite's write lock before reading, in case the pool does not
		// begin transactions immediately.
		if err := tx.Exec("UPDATE townhall_audit_head SET last_seq = last_seq WHERE id = ?", headID).Error; err != nil {
			return h, fmt.Errorf("lock head: %w", err)
		}
	} else {
		q = tx.Clauses(clause.Locking{Strength: "UPDATE"})
	}
	res := q.Where("id = ?", headID).Limit(1).Find(&h)
	if res.Error != nil {
		return h, fmt.Errorf("lock head: %w", res.Error)
	}
	if res.RowsAffected == 0 {
		return h, errors.New("lock head: head row missing (run Migrate)")
	}
	return h, nil
}

func toRecord(e *Event, details string) *record {
	return &record{
		At:             e.At,
		Type:           e.Type,
		ActorID:        e.ActorID,
		ImpersonatorID: e.ImpersonatorID,
		UserID:         e.UserID,
		LocationID:     e.LocationID,
		Module:         e.Module,
		Action:         e.Action,
		Reason:         e.Reason,
		Allowed:        e.Allowed,
		Details:        details,
	}
}

func (r *record) event() (Event, error) {
	e := Event{
		Seq:            r.Seq,
		At:             canonicalTime(r.At),
		Type:           r.Type,
		ActorID:        r.ActorID,
		ImpersonatorID: r.ImpersonatorID,
		UserID:         r.UserID,
		LocationID:     r.LocationID,
		Module:         r.Module,
		Action:         r.Action,
		Reason:         r.Reason,
		Allowed:        r.Allowed,
	}
	if r.Details != "" {
		if err := json.Unmarshal([]byte(r.Details), &e.Details); err != nil {
			// The log only writes valid JSON.
			return e, fmt.Errorf("audit: event %d: details are not valid json (%v): %w", r.Seq, err, ErrTampered)
		}
	}
	return e, nil
}

// validate checks e's fields against the column limits. It does not
// allocate, so RecordAsync can call it on the hot path.
func validate(e *Event) error {
	if e.Type == "" {
		return fmt.Errorf("audit: event type required: %w", ErrInvalidInput)
	}
	if y := e.At.Year(); y < 1000 || y > 9999 {
		return fmt.Errorf("audit: event time out of range: %w", ErrInvalidInput)
	}
	fields := [...]struct {
		name  string
		value string
		max   int
	}{
		{"type", e.Type, MaxNameLen},
		{"actor id", e.ActorID, MaxIDLen},
		{"impersonator id", e.ImpersonatorID, MaxIDLen},
		{"user id", e.UserID, MaxIDLen},
		{"location id", e.LocationID, MaxIDLen},
		{"module", e.Module, MaxNameLen},
		{"action", e.Action, MaxNameLen},
		{"reason", e.Reason, MaxReasonLen},
	}
	for _, f := range fields {
		if err := checkString(f.name, f.value, f.max); err != nil {
			return err
		}
	}
	return nil
}

// checkString rejects values the columns cannot hold on every database: too
// long, invalid UTF-8 or containing NUL (PostgreSQL refuses both).
func checkString(name, v string, max int) error {
	if len(v) > max {
		return fmt.Errorf("audit: %s longer than %d bytes: %w", name, max, ErrInvalidInput)
	}
	if !utf8.ValidString(v) || strings.IndexByte(v, 0) >= 0 {
		return fmt.Errorf("audit: %s is not valid text: %w", name, ErrInvalidInput)
	}
	return nil
}

// encodeDetails returns the canonical JSON of d: encoding/json with map keys
// sorted at every level; "" when d is empty.
func encodeDetails(d map[string]any) (s string, err error) {
	if len(d) == 0 {
		return "", nil
	}
	defer func() {
		// A value's own MarshalJSON may panic; the log never does.
		if r := recover(); r != nil {
			s, err = "", fmt.Errorf("audit: details: %v: %w", r, ErrInvalidInput)
		}
	}()
	b, err := json.Marshal(d)
	if err != nil {
		return "", fmt.Errorf("audit: details: %v: %w", err, ErrInvalidInput)
	}
	if len(b) > MaxDetailsLen {
		return "", fmt.Errorf("audit: details longer than %d bytes: %w", MaxDetailsLen, ErrInvalidInput)
	}
	return string(b), nil
}

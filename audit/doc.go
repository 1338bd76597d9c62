// Package audit is townhall's append-only, hash-chained audit log, and the
// GORM plugin that stamps host rows with who created and updated them.
//
// # Events
//
// Every change of access and every denied decision is an Event: time, type,
// actor, impersonator, target user, location, module, action, outcome,
// reason and details. Events hold IDs, never names or emails, so
// anonymising a user leaves the chain untouched. Changes are recorded with
// Log.RecordTx inside the transaction of the change they describe, so the
// two commit or roll back together; Log.Record opens its own transaction.
// Both fill a zero At from the log's clock (WithClock) and an empty ActorID
// from the subject in the context, or "system". Times are stored in UTC,
// truncated to microseconds.
//
// # The chain
//
// Events live in table townhall_audit_events, numbered by Seq. Each event
// stores prev_hash, the hash of the event before it ("" for the first), and
// hash, the lower-case hex SHA-256 of its canonical form. The canonical form
// is the string "townhall.audit.v1" followed by these fields, in this order,
// each written as a netstring "<decimal byte length>:<bytes>,":
//
//	seq             decimal
//	at              UTC, "2006-01-02T15:04:05.000000Z" (always six digits)
//	type, actor_id, impersonator_id, user_id, location_id,
//	module, action, reason
//	allowed         "true", "false", or "" when not set
//	details         canonical JSON, or "" when there are none
//	prev_hash       hex, or "" for the first event
//
// Canonical JSON is encoding/json's encoding of the Details map: object keys
// sorted at every level, no insignificant white space, HTML characters and
// invalid UTF-8 escaped or replaced as encoding/json does. The stored text
// is what is hashed, so a reader may check a hash without re-encoding.
// Details read back are decoded by encoding/json into map[string]any:
// numbers come back as float64.
//
// Appends are serialised across processes by the single-row table
// townhall_audit_head (last_seq, last_hash). An append locks that row first
// (SELECT ... FOR UPDATE on PostgreSQL and MySQL; the write lock on SQLite),
// numbers its events last_seq+1, ..., chains them to last_hash, inserts
// them and moves the head, all in the caller's transaction. Seq is
// therefore assigned by the log, not by the database, and is part of the
// hash. A rolled-back transaction rolls the head back with it and leaves
// nothing behind. The head lock is held until the transaction ends, so
// audited writes commit one at a time: record the event as late in the
// transaction as possible.
//
// Times are hashed as stored, so every process must read them back
// unchanged: on MySQL and MariaDB open the database with parseTime=true and
// the same loc everywhere (loc=UTC is recommended).
//
// # What Verify guarantees
//
// Log.Verify walks the events in Seq order, a page at a time, recomputes
// each hash, checks each prev_hash against the previous event's hash and
// finally the head against the last event. It tolerates gaps in Seq and
// runs while appends continue. It returns a *TamperError, matching
// ErrTampered, naming the first event found out of place, when a row was
// edited (any column, including seq and the hashes), deleted (from the
// start, the middle or the end), inserted, or reordered, or when the head
// was edited.
//
// It cannot detect a rewrite of the chain by someone who can write the
// database directly: the hash is unkeyed, so an attacker who recomputes
// every hash from the first changed event onwards and moves the head to
// match produces a chain that verifies, and one who truncates the log and
// moves the head back leaves a shorter valid chain. To detect those, copy
// the head's hash (Query the last event) to a place the attacker cannot
// write, such as another system or a printed report, and compare later.
//
// # Asynchronous decision events
//
// Decision events are frequent and a check must not wait on the database,
// so Log.RecordAsync puts them in a bounded buffer (WithBuffer, default
// DefaultBuffer) without blocking and without allocating for events
// without details. A background goroutine writes them in batches, each
// batch in one transaction chained like any other append. When the buffer
// is full the event is dropped and counted; the next write records the
// count as a TypeDecisionsDropped event whose details are {"dropped": n}.
// Events the writer fails to write (the database is down) are counted the
// same way and the error is returned by the next Flush or Close.
//
// Query, Verify and Flush first wait until every event enqueued before the
// call is written. Close flushes, stops the goroutine and waits for it;
// afterwards RecordAsync returns false and Record and RecordTx return
// ErrClosed, while Query and Verify keep working. The writer uses its own
// connection from the pool, so do not call Flush, Query or Verify while
// holding the only connection of a pool (an in-memory SQLite database
// limited to one connection) in a transaction. Events still buffered
// when the process dies without Close are lost: the buffer trades that for
// checks that never wait.
//
// # Stamps
//
// Host models that embed Stamp get CreatedBy and UpdatedBy filled from the
// subject in the statement's context by Plugin (db.Use(audit.Plugin{})).
package audit

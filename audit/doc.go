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
// stores prev_hash, the hash of the event before it ("" for the first, or
// the anchor's after Prune), and hash, the lower-case hex SHA-256 of its
// canonical form. The canonical form
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
// The SHA-256 chain alone cannot stop someone who can write the database:
// they can recompute every hash from an edit onwards, or cut the tail and
// move the head back. A host key and signed checkpoints close both holes.
//
// # Keys
//
// With WithKey (townhall.WithAuditKey) each event also stores key_id and
// mac, the lower-case hex HMAC-SHA256 under that key of the string
// "townhall.audit.mac.v1", the key ID and the event's hash, as netstrings.
// The hash covers the event and every event before it, so whoever lacks the
// key cannot produce a rewritten chain whose MACs verify. The hash itself is
// unchanged, so tables written before keys existed verify as they were, and
// checkpoints can be checked with the public key alone. A verifier that holds
// keys (the log's, or WithKeys) checks every keyed event's MAC (ErrUnknownKey
// when it lacks one) and rejects an unkeyed event after a keyed one, and a
// non-empty chain that ends unkeyed: that is what stripping the MACs looks
// like. Log.RecordKey, called by townhall.Open, appends a TypeAuditKey event
// when a process starts with a key the newest event is not linked under, so
// an upgraded log verifies at once. Keys rotate: every event names its key,
// and the log keeps every key given to it. A verifier without keys does not
// check MACs.
//
// # Checkpoints
//
// With WithSigner (townhall.WithAuditSigner) the log signs checkpoints with
// Ed25519: about every WithCheckpointInterval events or interval, at Close,
// and on demand (Log.Checkpoint). A checkpoint names the log (a random ID
// Migrate gives it), an event's Seq, its hash and key ID, and the time; the
// signature covers "townhall.audit.checkpoint.v1" and those five fields as
// netstrings (Checkpoint.Verify). Before signing, the log verifies the events
// since its previous checkpoint, so it never signs a tampered chain. Each
// checkpoint goes to the host's CheckpointSink and into the table
// townhall_audit_checkpoints.
//
// Verify with WithCheckpoints(pub, cps...) proves, with the public key alone,
// that the event each checkpoint names is still there with the hash it names,
// so no event at or before it was removed or changed; and that the log was
// not cut back below the newest one (a *TamperError naming the checkpoint's
// Seq). A checkpoint signed by another key, altered in any field, or naming
// another log is ErrInvalidCheckpoint. An old checkpoint replayed is valid
// evidence of the prefix it names and of nothing after it: it never hides
// what a newer checkpoint given alongside shows, so give the newest one the
// sink holds. Checkpoints in the database are only as safe as the database:
// WithPublicKey checks them too (a forged one is a *TamperError), but whoever
// cuts the tail can delete them with it. A log with a signer checks the
// stored checkpoints under its own key on every Verify; pass the public keys
// of earlier signers with WithPublicKey after rotating the signing key.
//
// # Archives
//
// Log.Archive writes a Seq range, through the first stored checkpoint at or
// after its end, as JSON lines: a header naming the log and the event it
// continues from, the events exactly as stored, and the checkpoint.
// VerifyArchive checks it offline with the public key (and the MACs with
// WithKeys). The archive of the next range continues from the checkpoint's
// hash. Log.Prune then removes the events through that checkpoint in one
// transaction; the last removed event becomes the anchor the remaining
// chain starts from, so Verify of what remains still passes, and with a
// public key Verify requires the anchor to be a signed checkpoint. Whoever
// can write the database can still delete a prefix through a stored
// checkpoint the way Prune does; the archives, kept apart, are what shows
// which events that removed, and each archive's checkpoint must be the next
// one's starting hash.
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
// A DecisionQueue (Log.NewDecisionQueue) takes decisions as 24-byte integer
// codes, decoded by the writer. It splits the buffer into a shard per
// processor, so that checks on several cores do not contend on one queue;
// a shard that is full drops. The writer merges the shards by the codes'
// times: codes are written in the order of their times as far as they were
// recorded in that order, not necessarily in the order they were recorded.
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

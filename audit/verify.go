package audit

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"sort"

	"gorm.io/gorm"
)

// verifyPage is how many events Verify reads per query.
const verifyPage = 1000

// TamperError is the error Verify returns for a chain that does not verify.
// It matches ErrTampered with errors.Is.
type TamperError struct {
	// Seq is the first event found out of place: edited, inserted, or the
	// first event after a removed one. When events at the end were
	// removed, it is the Seq the head names, or the checkpoint's the log
	// no longer reaches; when the head does not match the last event, the
	// last event's.
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

// VerifyOption adds evidence to Verify and VerifyArchive.
type VerifyOption func(*verifyConfig)

type verifyConfig struct {
	keys   keyRing
	pubs   []ed25519.PublicKey // signers whose stored checkpoints count
	given  []givenCheckpoint
	stored bool // check the checkpoints stored in the database
	err    error
}

type givenCheckpoint struct {
	pub ed25519.PublicKey
	cp  Checkpoint
}

func (c *verifyConfig) setErr(err error) {
	if c.err == nil {
		c.err = err
	}
}

func (c *verifyConfig) addPub(pub ed25519.PublicKey) bool {
	if len(pub) != ed25519.PublicKeySize {
		c.setErr(fmt.Errorf("audit: public key of %d bytes, want %d: %w", len(pub), ed25519.PublicKeySize, ErrInvalidInput))
		return false
	}
	c.pubs = append(c.pubs, pub)
	return true
}

// WithCheckpoints has Verify check cps, which must be signed by pub's
// private key (otherwise Verify returns ErrInvalidCheckpoint): the event
// each names must still be in the database with the hash and key ID it
// names, unless Prune removed it. Pass the newest checkpoint you hold: it
// proves the log was not cut back below it, and older ones add nothing a
// newer one does not prove. It implies WithPublicKey(pub).
func WithCheckpoints(pub ed25519.PublicKey, cps ...Checkpoint) VerifyOption {
	return func(c *verifyConfig) {
		if !c.addPub(pub) {
			return
		}
		c.stored = true
		for _, cp := range cps {
			c.given = append(c.given, givenCheckpoint{pub: pub, cp: cp})
		}
	}
}

// WithPublicKey has Verify also check the checkpoints stored in the
// database: each must be signed by the private key of pub or of another
// public key given, and match the chain. The anchor Prune leaves must then
// be one of them. Stored checkpoints can be deleted by whoever can write the
// database, so they detect edits but not a truncation of the log together
// with its newest checkpoints: for that, pass checkpoints from the sink with
// WithCheckpoints.
func WithPublicKey(pub ed25519.PublicKey) VerifyOption {
	return func(c *verifyConfig) {
		if c.addPub(pub) {
			c.stored = true
		}
	}
}

// WithKeys adds chain keys by ID for Verify, besides the log's own (WithKey).
func WithKeys(keys map[string][]byte) VerifyOption {
	return func(c *verifyConfig) {
		ids := make([]string, 0, len(keys))
		for id := range keys {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		for _, id := range ids {
			if err := c.keys.add(id, keys[id]); err != nil {
				c.setErr(err)
			}
		}
	}
}

func newVerifyConfig(base keyRing, opts []VerifyOption) verifyConfig {
	var c verifyConfig
	for id, k := range base.keys {
		_ = c.keys.add(id, k) // validated when the log was made
	}
	for _, o := range opts {
		if o != nil {
			o(&c)
		}
	}
	return c
}

// link is a position in the chain: an event's seq, hash and key ID.
type link struct {
	seq   int64
	hash  string
	keyID string
}

// anchor is where the chain in the database starts: the last event Prune
// removed, or nothing.
func (h head) anchor() link {
	return link{seq: h.AnchorSeq, hash: h.AnchorHash, keyID: h.AnchorKeyID}
}

// chainCheck checks events one at a time, in Seq order, after last.
type chainCheck struct {
	last   link
	keys   *keyRing             // MACs are checked when it holds keys
	expect map[int64]Checkpoint // checkpoints not yet met, by seq
}

// next checks r, the event after c.last, and moves c.last to it.
func (c *chainCheck) next(r *record) error {
	switch {
	case r.Seq <= 0:
		return &TamperError{Seq: r.Seq, Problem: "sequence numbers start at 1"}
	case r.Seq <= c.last.seq:
		return &TamperError{Seq: r.Seq, Problem: fmt.Sprintf("out of order after event %d", c.last.seq)}
	case hashRecord(r) != r.Hash:
		return &TamperError{Seq: r.Seq, Problem: "content does not match its hash"}
	case r.PrevHash != c.last.hash:
		if c.last.seq == 0 {
			return &TamperError{Seq: r.Seq, Problem: "first event does not start the chain"}
		}
		return &TamperError{Seq: r.Seq, Problem: fmt.Sprintf("does not follow event %d", c.last.seq)}
	}
	if err := c.checkKey(r.Seq, r.KeyID, r.Hash, r.MAC); err != nil {
		return err
	}
	if cp, ok := c.expect[r.Seq]; ok {
		if cp.hashHex() != r.Hash || cp.KeyID != r.KeyID {
			return &TamperError{Seq: r.Seq, Problem: fmt.Sprintf("does not match the checkpoint signed at %s", cp.At.Format(timeLayout))}
		}
		delete(c.expect, r.Seq)
	}
	c.last = link{seq: r.Seq, hash: r.Hash, keyID: r.KeyID}
	return nil
}

// checkKey checks an event's key ID and MAC: an unkeyed event may not
// follow a keyed one (that would let whoever lacks the key append), and a
// keyed event's MAC must verify when the checker holds keys.
func (c *chainCheck) checkKey(seq int64, keyID, hash, mac string) error {
	if keyID == "" {
		if mac != "" {
			return &TamperError{Seq: seq, Problem: "mac without a key id"}
		}
		if c.last.keyID != "" {
			return &TamperError{Seq: seq, Problem: fmt.Sprintf("unkeyed event after an event linked under key %q", c.last.keyID)}
		}
		return nil
	}
	if c.keys == nil || len(c.keys.keys) == 0 {
		return nil
	}
	ok, err := c.keys.checkMAC(seq, keyID, hash, mac)
	if err != nil {
		return err
	}
	if !ok {
		return &TamperError{Seq: seq, Problem: fmt.Sprintf("mac does not verify under key %q", keyID)}
	}
	return nil
}

// walk checks the events after c.last up to seq to (no bound when to is
// 0), a page at a time, handing each to each, when not nil, once checked.
func (c *chainCheck) walk(db *gorm.DB, to int64, each func(r *record) error) error {
	for {
		q := db.Where("seq > ?", c.last.seq)
		if to > 0 {
			q = q.Where("seq <= ?", to)
		}
		var rs []record
		if err := q.Order("seq").Limit(verifyPage).Find(&rs).Error; err != nil {
			return fmt.Errorf("audit: verify: %w", err)
		}
		for i := range rs {
			if err := c.next(&rs[i]); err != nil {
				return err
			}
			if each != nil {
				if err := each(&rs[i]); err != nil {
					return err
				}
			}
		}
		if len(rs) < verifyPage {
			return nil
		}
	}
}

// readHead reads the head row without locking it.
func readHead(db *gorm.DB) (head, error) {
	var h head
	res := db.Where("id = ?", headID).Limit(1).Find(&h)
	if res.Error != nil {
		return h, fmt.Errorf("audit: head: %w", res.Error)
	}
	if res.RowsAffected == 0 {
		return h, &TamperError{Problem: "head row missing"}
	}
	return h, nil
}

// Verify checks the whole chain: it first waits until the events enqueued
// by RecordAsync before the call are written, then walks the events in Seq
// order from the anchor Prune left (or the start), a page at a time,
// recomputing each hash and checking that each event names its
// predecessor's hash, and finally that the head row matches the last
// event. Gaps in Seq are allowed. It returns a *TamperError (matching
// ErrTampered) naming the first event found out of place, or the error
// that stopped it. Appends may continue while it runs; do not Prune while
// it runs.
//
// When the verifier holds chain keys (the log's WithKey, or WithKeys) it
// also checks each keyed event's MAC (ErrUnknownKey when it lacks an
// event's key), that no unkeyed event follows a keyed one, and that a
// non-empty chain ends in a keyed event, so that a chain recomputed
// without the key does not verify. Without keys MACs are not checked.
//
// WithCheckpoints and WithPublicKey add signed checkpoints; see doc.go for
// what each proves.
func (l *Log) Verify(ctx context.Context, opts ...VerifyOption) error {
	if l == nil || l.db == nil {
		return errNilDB
	}
	if l.optErr != nil {
		return l.optErr
	}
	if ctx == nil {
		ctx = context.Background()
	}
	cfg := newVerifyConfig(l.keys, opts)
	if l.cp.s != nil {
		// A log checks the checkpoints its own key signed.
		cfg.pubs = append(cfg.pubs, l.cp.s.pub)
		cfg.stored = true
	}
	if cfg.err != nil {
		return cfg.err
	}
	if err := l.sync(ctx); err != nil {
		return err
	}
	db := l.db.WithContext(ctx)
	start, err := readHead(db)
	if err != nil {
		return err
	}
	c := chainCheck{last: start.anchor(), keys: &cfg.keys, expect: map[int64]Checkpoint{}}
	if err := cfg.collect(db, start, &c); err != nil {
		return err
	}
	for {
		if err := c.walk(db, 0, nil); err != nil {
			return err
		}
		// The head is read after the events: every committed event moved it
		// forward in its own transaction, so a head behind the last event
		// means that event was inserted, and a head ahead means events were
		// appended since (walk on) or the last ones were removed.
		h, err := readHead(db)
		if err != nil {
			var te *TamperError
			if errors.As(err, &te) {
				te.Seq = c.last.seq
			}
			return err
		}
		lastSeq := c.last.seq
		switch {
		case h.LastSeq < lastSeq:
			var first int64
			if err := db.Model(&record{}).Select("MIN(seq)").Where("seq > ?", h.LastSeq).Scan(&first).Error; err != nil {
				return fmt.Errorf("audit: verify: %w", err)
			}
			return &TamperError{Seq: first, Problem: fmt.Sprintf("event after the head (head at %d)", h.LastSeq)}
		case h.LastSeq == lastSeq:
			if h.LastHash != c.last.hash {
				return &TamperError{Seq: lastSeq, Problem: "head does not match the last event"}
			}
			return c.finish(len(cfg.keys.keys) > 0)
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

// collect checks the checkpoints given and, with a public key, the stored
// ones and the anchor, and sets those after the anchor as c's expectations.
func (cfg *verifyConfig) collect(db *gorm.DB, h head, c *chainCheck) error {
	anchor := h.anchor()
	if anchor.keyID != "" && len(cfg.keys.keys) > 0 {
		if err := c.checkKey(anchor.seq, anchor.keyID, anchor.hash, h.AnchorMAC); err != nil {
			return err
		}
	}
	for _, g := range cfg.given {
		if err := g.cp.Verify(g.pub); err != nil {
			return err
		}
		if g.cp.LogID != h.LogID {
			return fmt.Errorf("audit: checkpoint %d is of log %q, the database holds log %q: %w", g.cp.Seq, g.cp.LogID, h.LogID, ErrInvalidCheckpoint)
		}
		if err := c.expectCheckpoint(g.cp, anchor); err != nil {
			return err
		}
	}
	if !cfg.stored {
		return nil
	}
	var rows []storedCheckpoint
	if err := db.Order("seq").Find(&rows).Error; err != nil {
		return fmt.Errorf("audit: verify: checkpoints: %w", err)
	}
	anchored := anchor.seq == 0
	for _, r := range rows {
		cp := r.checkpoint()
		if cp.LogID != h.LogID || !cfg.signed(cp) {
			return &TamperError{Seq: cp.Seq, Problem: "stored checkpoint is not signed for this log by a given public key"}
		}
		if cp.Seq == anchor.seq && cp.hashHex() == anchor.hash && cp.KeyID == anchor.keyID {
			anchored = true
		}
		if err := c.expectCheckpoint(cp, anchor); err != nil {
			return err
		}
	}
	if !anchored {
		return &TamperError{Seq: anchor.seq, Problem: "the chain starts after an anchor no stored checkpoint signs"}
	}
	return nil
}

// signed reports whether cp verifies under one of the public keys given.
func (cfg *verifyConfig) signed(cp Checkpoint) bool {
	for _, pub := range cfg.pubs {
		if cp.Verify(pub) == nil {
			return true
		}
	}
	return false
}

// expectCheckpoint makes cp an expectation of the walk from anchor. One at
// the anchor must match it; one before it names a pruned event, which only
// the archive can show.
func (c *chainCheck) expectCheckpoint(cp Checkpoint, anchor link) error {
	switch {
	case cp.Seq < anchor.seq:
		return nil
	case cp.Seq == anchor.seq:
		if cp.hashHex() != anchor.hash || cp.KeyID != anchor.keyID {
			return &TamperError{Seq: cp.Seq, Problem: "the anchor does not match the checkpoint"}
		}
		return nil
	}
	if prev, ok := c.expect[cp.Seq]; ok && (prev.hashHex() != cp.hashHex() || prev.KeyID != cp.KeyID) {
		return fmt.Errorf("audit: two checkpoints signed for event %d disagree: %w", cp.Seq, ErrInvalidCheckpoint)
	}
	c.expect[cp.Seq] = cp
	return nil
}

// finish reports checkpoints the walk never met, and, when the verifier
// holds keys, a chain ending in an unkeyed event.
func (c *chainCheck) finish(haveKeys bool) error {
	if len(c.expect) > 0 {
		seqs := make([]int64, 0, len(c.expect))
		for s := range c.expect {
			seqs = append(seqs, s)
		}
		sort.Slice(seqs, func(i, j int) bool { return seqs[i] < seqs[j] })
		s := seqs[len(seqs)-1]
		if s > c.last.seq {
			return &TamperError{Seq: s, Problem: fmt.Sprintf("the log ends at event %d, before the checkpoint at %d", c.last.seq, s)}
		}
		return &TamperError{Seq: seqs[0], Problem: "checkpointed event missing"}
	}
	if haveKeys && c.last.seq > 0 && c.last.keyID == "" {
		return &TamperError{Seq: c.last.seq, Problem: "the newest event is not keyed"}
	}
	return nil
}

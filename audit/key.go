package audit

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	gohash "hash"
	"sync"

	"gorm.io/gorm"

	"github.com/civicstack/townhall/internal/actor"
	"github.com/civicstack/townhall/internal/dbx"
)

// MinKeyLen is the shortest key WithKey accepts, in bytes. Use 32 random
// bytes.
const MinKeyLen = 16

// macVersion starts every MAC input, so a MAC of the chain can never be
// taken for a MAC of anything else made with the same key.
const macVersion = "townhall.audit.mac.v1"

// ErrUnknownKey reports an event linked under a key the verifier does not
// hold. It says nothing about tampering: pass the key (WithKeys, or WithKey
// on the log) and verify again.
var ErrUnknownKey = errors.New("audit: unknown key")

// keyRing holds the chain keys by ID. current is the key new events are
// linked under ("" for an unkeyed log). macs pools a keyed HMAC per key:
// resetting one is cheaper than keying a new one for every event.
type keyRing struct {
	keys    map[string][]byte
	macs    map[string]*sync.Pool
	current string
}

// add validates and stores a copy of key under id.
func (k *keyRing) add(id string, key []byte) error {
	if id == "" {
		return fmt.Errorf("audit: key id required: %w", ErrInvalidInput)
	}
	if err := checkString("key id", id, MaxIDLen); err != nil {
		return err
	}
	if len(key) < MinKeyLen {
		return fmt.Errorf("audit: key %q shorter than %d bytes: %w", id, MinKeyLen, ErrInvalidInput)
	}
	if old, ok := k.keys[id]; ok && !hmac.Equal(old, key) {
		return fmt.Errorf("audit: two different keys named %q: %w", id, ErrInvalidInput)
	}
	if k.keys == nil {
		k.keys = make(map[string][]byte)
		k.macs = make(map[string]*sync.Pool)
	}
	own := append([]byte(nil), key...)
	k.keys[id] = own
	k.macs[id] = &sync.Pool{New: func() any { return hmac.New(sha256.New, own) }}
	return nil
}

// mac returns the MAC of hash under the ring's key keyID, which it holds.
func (k *keyRing) mac(keyID, hash string) string {
	pool := k.macs[keyID]
	m := pool.Get().(gohash.Hash)
	m.Reset()
	s := sumMAC(m, keyID, hash)
	pool.Put(m)
	return s
}

// WithKey adds a chain key. The last key given is the one new events are
// linked under; earlier ones only verify events linked before a rotation.
// Each event records its key's ID, so keep every key whose events are still
// in the database (or in archives you verify). key must be at least
// MinKeyLen bytes and id 1 to MaxIDLen bytes of text; otherwise the log
// refuses every append and verification with ErrInvalidInput.
func WithKey(id string, key []byte) Option {
	return func(o *options) {
		if err := o.keys.add(id, key); err != nil {
			o.setErr(err)
			return
		}
		o.keys.current = id
	}
}

// macOf returns the hex HMAC-SHA256, under key, of the event hash hash
// linked under keyID: the version string, keyID and hash as netstrings.
// The hash covers the event and, through prev_hash, every event before it,
// so one MAC authenticates the whole prefix.
func macOf(key []byte, keyID, hash string) string {
	return sumMAC(hmac.New(sha256.New, key), keyID, hash)
}

// sumMAC writes the MAC input to the keyed, reset m and returns its sum.
func sumMAC(m gohash.Hash, keyID, hash string) string {
	var buf [192]byte
	b := appendField(buf[:0], macVersion)
	b = appendField(b, keyID)
	b = appendField(b, hash)
	m.Write(b)
	var sum [sha256.Size]byte
	return hex.EncodeToString(m.Sum(sum[:0]))
}

// checkMAC reports whether mac is the MAC of hash under keyID's key, or
// ErrUnknownKey when the ring does not hold it.
func (k *keyRing) checkMAC(seq int64, keyID, hash, mac string) (bool, error) {
	if _, ok := k.keys[keyID]; !ok {
		return false, fmt.Errorf("audit: verify: event %d is linked under key %q: %w", seq, keyID, ErrUnknownKey)
	}
	return hmac.Equal([]byte(k.mac(keyID, hash)), []byte(mac)), nil
}

// RecordKey appends a TypeAuditKey event naming the log's current key,
// unless the chain is empty or its newest event is already linked under
// that key. Call it when a process starts with a new key (townhall.Open
// does): a verifier that holds keys rejects a non-empty chain whose newest
// event is unkeyed, since that is also what stripping the MACs from the
// end of a keyed chain looks like. Without a key it does nothing.
func (l *Log) RecordKey(ctx context.Context) error {
	if err := l.usable(); err != nil {
		return err
	}
	keyID := l.keys.current
	if keyID == "" {
		return nil
	}
	if ctx == nil {
		ctx = context.Background()
	}
	r, err := l.prepare(ctx, Event{Type: TypeAuditKey, ActorID: actor.SystemID, Details: map[string]any{"key_id": keyID}})
	if err != nil {
		return err
	}
	err = dbx.Tx(ctx, l.db, func(tx *gorm.DB) error {
		h, err := lockHead(tx)
		if err != nil {
			return err
		}
		newest := h.anchor()
		if h.LastSeq > h.AnchorSeq {
			var last record
			if err := tx.Where("seq = ?", h.LastSeq).Limit(1).Find(&last).Error; err != nil {
				return fmt.Errorf("audit: record key: %w", err)
			}
			newest.seq, newest.keyID = last.Seq, last.KeyID
		}
		if newest.seq == 0 || newest.keyID == keyID {
			return nil
		}
		if err := l.appendAfter(tx, h, []*record{r}); err != nil {
			return fmt.Errorf("audit: record key: %w", err)
		}
		return nil
	})
	if err == nil {
		l.cp.appended(1)
	}
	return err
}

// Err reports an invalid option given to New (WithKey, WithSigner): the log
// then refuses every append, checkpoint and verification with it.
func (l *Log) Err() error {
	if l == nil {
		return errNilDB
	}
	return l.optErr
}

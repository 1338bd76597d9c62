package audit

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// Checkpoint is a signed statement that event Seq of the log LogID had hash
// Hash (the raw SHA-256 chain hash, empty for an empty log) and was linked
// under the chain key KeyID ("" when unkeyed), made at At. Kept where
// whoever can write the database cannot, it proves that no event at or
// before Seq was later removed or changed, and that the log was never cut
// back below Seq.
type Checkpoint struct {
	Seq       int64
	Hash      []byte
	At        time.Time
	KeyID     string
	Signature []byte
	// LogID is the random name Migrate gives each log, so a checkpoint of
	// one log never verifies another signed with the same key.
	LogID string
}

// CheckpointSink receives every checkpoint the log signs. It should keep
// them where whoever can write the database cannot: a file on another
// host, object storage with retention, another system's log. Put is called
// from the log's checkpoint goroutine, from Checkpoint and from Close; an
// error is returned by Checkpoint, or by the next Flush or Close.
type CheckpointSink interface {
	Put(ctx context.Context, c Checkpoint) error
}

// ErrInvalidCheckpoint reports a checkpoint that is not a valid statement
// about this log: its signature does not verify under the public key given
// with it, or it names another log.
var ErrInvalidCheckpoint = errors.New("audit: invalid checkpoint")

// ErrNoSigner reports Checkpoint on a log made without WithSigner.
var ErrNoSigner = errors.New("audit: no checkpoint signer")

// checkpointVersion starts every signed message, so a checkpoint signature
// can never be taken for a signature of anything else made with the key.
const checkpointVersion = "townhall.audit.checkpoint.v1"

// message returns the bytes the signature covers: the version string, then
// log ID, seq (decimal), hash (lower-case hex), at (as event times) and key
// ID, each as a netstring.
func (c Checkpoint) message() []byte {
	var b []byte
	field := func(s string) {
		b = strconv.AppendInt(b, int64(len(s)), 10)
		b = append(b, ':')
		b = append(b, s...)
		b = append(b, ',')
	}
	field(checkpointVersion)
	field(c.LogID)
	field(strconv.FormatInt(c.Seq, 10))
	field(hex.EncodeToString(c.Hash))
	field(canonicalTime(c.At).Format(timeLayout))
	field(c.KeyID)
	return b
}

// Verify reports whether c is signed by the private key of pub; otherwise
// it returns an error matching ErrInvalidCheckpoint.
func (c Checkpoint) Verify(pub ed25519.PublicKey) error {
	if len(pub) != ed25519.PublicKeySize {
		return fmt.Errorf("audit: public key of %d bytes, want %d: %w", len(pub), ed25519.PublicKeySize, ErrInvalidInput)
	}
	if c.Seq < 0 || (c.Seq == 0) != (len(c.Hash) == 0) || (len(c.Hash) != 0 && len(c.Hash) != 32) {
		return fmt.Errorf("audit: checkpoint %d: malformed: %w", c.Seq, ErrInvalidCheckpoint)
	}
	if !ed25519.Verify(pub, c.message(), c.Signature) {
		return fmt.Errorf("audit: checkpoint %d: signature does not verify under the public key: %w", c.Seq, ErrInvalidCheckpoint)
	}
	return nil
}

// hashHex is the checkpoint's hash as events store it.
func (c Checkpoint) hashHex() string { return hex.EncodeToString(c.Hash) }

func (c Checkpoint) stored() storedCheckpoint {
	return storedCheckpoint{
		Seq: c.Seq, LogID: c.LogID, Hash: c.hashHex(), At: canonicalTime(c.At), KeyID: c.KeyID,
		Signature: base64.StdEncoding.EncodeToString(c.Signature),
	}
}

// checkpoint returns the stored row as a Checkpoint; a row whose hash or
// signature does not decode yields one that does not verify.
func (s storedCheckpoint) checkpoint() Checkpoint {
	h, _ := hex.DecodeString(s.Hash)
	sig, _ := base64.StdEncoding.DecodeString(s.Signature)
	return Checkpoint{Seq: s.Seq, Hash: h, At: canonicalTime(s.At), KeyID: s.KeyID, Signature: sig, LogID: s.LogID}
}

// Defaults of WithCheckpointInterval.
const (
	DefaultCheckpointEvents   = 1000
	DefaultCheckpointInterval = time.Minute
)

// signer is the private key checkpoints are signed with and their sink.
type signer struct {
	key  ed25519.PrivateKey
	pub  ed25519.PublicKey
	sink CheckpointSink
}

// WithSigner makes the log sign checkpoints with key (Ed25519) and hand
// each to sink: about every WithCheckpointInterval events or time, at
// Close, and on demand with Checkpoint. Each is also stored in the database
// (table townhall_audit_checkpoints), where Archive and Prune find them. A
// key that is not an Ed25519 private key or a nil sink makes the log
// refuse every append and verification with ErrInvalidInput.
func WithSigner(key ed25519.PrivateKey, sink CheckpointSink) Option {
	return func(o *options) {
		if len(key) != ed25519.PrivateKeySize {
			o.setErr(fmt.Errorf("audit: signer key of %d bytes, want %d: %w", len(key), ed25519.PrivateKeySize, ErrInvalidInput))
			return
		}
		if sink == nil {
			o.setErr(fmt.Errorf("audit: nil checkpoint sink: %w", ErrInvalidInput))
			return
		}
		k := append(ed25519.PrivateKey(nil), key...)
		o.signer = &signer{key: k, pub: k.Public().(ed25519.PublicKey), sink: sink}
	}
}

// WithCheckpointInterval sets when a log with a signer checkpoints on its
// own: once about events events were appended by this log since its last
// checkpoint, and every interval when this log appended any since
// (defaults DefaultCheckpointEvents, DefaultCheckpointInterval). Values
// below 1 keep the default.
func WithCheckpointInterval(events int, every time.Duration) Option {
	return func(o *options) {
		if events > 0 {
			o.cpEvents = events
		}
		if every > 0 {
			o.cpEvery = every
		}
	}
}

// checkpointer is the log's checkpoint state.
type checkpointer struct {
	s       *signer
	events  int64
	every   time.Duration
	since   atomic.Int64  // events appended since the last checkpoint
	poke    chan struct{} // wakes the loop when since reaches events
	stop    chan struct{}
	done    chan struct{} // closed when the loop, if started, ends
	started atomic.Bool
	once    sync.Once

	mu   sync.Mutex  // serialises signing
	last *Checkpoint // the newest checkpoint this log signed or verified
}

func (c *checkpointer) init(s *signer, events int, every time.Duration) {
	c.s, c.events, c.every = s, int64(events), every
	c.poke = make(chan struct{}, 1)
	c.stop = make(chan struct{})
	c.done = make(chan struct{})
}

// appended counts n appended events and wakes the loop once enough are.
func (c *checkpointer) appended(n int) {
	if c.s == nil {
		return
	}
	if c.since.Add(int64(n)) >= c.events {
		select {
		case c.poke <- struct{}{}:
		default:
		}
	}
}

// startCheckpoints starts the checkpoint goroutine of a log with a signer.
func (l *Log) startCheckpoints() {
	if l.cp.s == nil || l.optErr != nil {
		return
	}
	l.cp.started.Store(true)
	go l.checkpointLoop()
}

func (l *Log) checkpointLoop() {
	defer close(l.cp.done)
	tick := time.NewTicker(l.cp.every)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			l.autoCheckpoint()
		case <-l.cp.poke:
			l.autoCheckpoint()
		case <-l.cp.stop:
			return
		}
	}
}

// autoCheckpoint signs the head unless it is already checkpointed; an
// error is kept for Flush and Close.
func (l *Log) autoCheckpoint() {
	if l.cp.since.Load() == 0 {
		return
	}
	if _, err := l.checkpoint(context.Background(), false); err != nil {
		l.keepErr(fmt.Errorf("audit: checkpoint: %w", err))
	}
}

// closeCheckpoints stops the checkpoint goroutine and signs the final head.
// Close calls it after the writer has written everything.
func (l *Log) closeCheckpoints() {
	l.cp.once.Do(func() {
		close(l.cp.stop)
		if l.cp.started.Load() {
			<-l.cp.done
		}
		if l.cp.s != nil && l.optErr == nil {
			l.autoCheckpoint()
		}
	})
}

// keepErr keeps err for the next Flush or Close unless one is kept already.
func (l *Log) keepErr(err error) {
	l.errMu.Lock()
	defer l.errMu.Unlock()
	if l.asyncErr == nil {
		l.asyncErr = err
	}
}

// Checkpoint signs the log's head now, stores the checkpoint in the
// database, hands it to the sink and returns it. It first waits until the
// events enqueued by RecordAsync and RecordDecision before the call are
// written, and verifies the events appended since the log's previous
// checkpoint (or, for the first in this process, since the newest stored
// checkpoint its key signed, or the start), so a tampered chain is never
// signed: it returns a *TamperError instead. Without WithSigner it returns
// ErrNoSigner. The checkpoint is returned even when only the sink failed.
func (l *Log) Checkpoint(ctx context.Context) (Checkpoint, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	return l.checkpoint(ctx, true)
}

// testHookHeadRead, when set (tests only), runs in checkpoint between
// reading the head and reading the stored checkpoints.
var testHookHeadRead func()

// checkpoint signs the head; unless force, only when it moved since the
// last checkpoint.
func (l *Log) checkpoint(ctx context.Context, force bool) (Checkpoint, error) {
	if l == nil || l.db == nil {
		return Checkpoint{}, errNilDB
	}
	if l.optErr != nil {
		return Checkpoint{}, l.optErr
	}
	if l.cp.s == nil {
		return Checkpoint{}, ErrNoSigner
	}
	if err := l.sync(ctx); err != nil {
		return Checkpoint{}, err
	}
	l.cp.mu.Lock()
	defer l.cp.mu.Unlock()
	counted := l.cp.since.Load() // appends counted later stay for the next
	db := l.db.WithContext(ctx)
	h, err := readHead(db)
	if err != nil {
		return Checkpoint{}, err
	}
	if !force && l.cp.last != nil && l.cp.last.Seq == h.LastSeq {
		l.cp.since.Add(-counted) // rolled back, or already covered
		return *l.cp.last, nil
	}
	if testHookHeadRead != nil {
		testHookHeadRead()
	}
	from, err := l.checkpointStart(db, h)
	if err != nil {
		return Checkpoint{}, err
	}
	if from.seq > h.LastSeq {
		// Another process may have appended and checkpointed since the head
		// was read: only a head still behind that checkpoint is a rewind.
		if h, err = readHead(db); err != nil {
			return Checkpoint{}, err
		}
		if from.seq > h.LastSeq {
			return Checkpoint{}, &TamperError{Seq: h.LastSeq, Problem: fmt.Sprintf("head is behind checkpoint %d", from.seq)}
		}
	}
	// The events after the start up to the head, no further: later ones
	// commit after the head was read.
	c := chainCheck{last: from, keys: &l.keys}
	if from.seq < h.LastSeq {
		if err := c.walk(db, h.LastSeq, nil); err != nil {
			return Checkpoint{}, err
		}
	}
	if c.last.seq != h.LastSeq || c.last.hash != h.LastHash {
		return Checkpoint{}, &TamperError{Seq: c.last.seq, Problem: "head does not match the last event"}
	}
	hash, err := hex.DecodeString(h.LastHash)
	if err != nil {
		return Checkpoint{}, &TamperError{Seq: h.LastSeq, Problem: "head hash is not hex"}
	}
	cp := Checkpoint{Seq: h.LastSeq, Hash: hash, At: canonicalTime(l.now()), KeyID: c.last.keyID, LogID: h.LogID}
	cp.Signature = ed25519.Sign(l.cp.s.key, cp.message())
	row := cp.stored()
	if err := db.Clauses(clause.OnConflict{DoNothing: true}).Create(&row).Error; err != nil {
		return Checkpoint{}, fmt.Errorf("audit: checkpoint: store: %w", err)
	}
	l.cp.last = &cp
	l.cp.since.Add(-counted)
	if err := l.cp.s.sink.Put(ctx, cp); err != nil {
		return cp, fmt.Errorf("audit: checkpoint: sink: %w", err)
	}
	return cp, nil
}

// checkpointStart is where signing verifies from: the log's last
// checkpoint, the newest stored one its own key signed, or the anchor.
func (l *Log) checkpointStart(db *gorm.DB, h head) (link, error) {
	if cp := l.cp.last; cp != nil && cp.LogID == h.LogID && cp.Seq >= h.AnchorSeq {
		return link{seq: cp.Seq, hash: cp.hashHex(), keyID: cp.KeyID}, nil
	}
	var rows []storedCheckpoint
	err := db.Where("seq >= ?", h.AnchorSeq).Order("seq DESC").Limit(16).Find(&rows).Error
	if err != nil {
		return link{}, fmt.Errorf("audit: checkpoint: %w", err)
	}
	for _, r := range rows {
		cp := r.checkpoint()
		if cp.LogID == h.LogID && cp.Verify(l.cp.s.pub) == nil {
			return link{seq: cp.Seq, hash: cp.hashHex(), keyID: cp.KeyID}, nil
		}
	}
	return h.anchor(), nil
}

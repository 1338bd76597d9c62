package audit

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"gorm.io/gorm"

	"github.com/civicstack/townhall/internal/dbx"
)

// ArchiveFormat names the archive format in its first line.
const ArchiveFormat = "townhall.audit.archive.v1"

// An archive is JSON lines: one {"header": ...}, the events in Seq order,
// each {"event": ...}, and one {"checkpoint": ...} signed for the last
// event. Fields hold exactly what the database stores, so every hash can
// be recomputed from them.
type archiveLine struct {
	Header     *archiveHeader     `json:"header,omitempty"`
	Event      *archiveEvent      `json:"event,omitempty"`
	Checkpoint *archiveCheckpoint `json:"checkpoint,omitempty"`
}

// archiveHeader names the log and the event the archive continues from:
// the one before its first (zero for the start of the chain).
type archiveHeader struct {
	Format    string `json:"format"`
	LogID     string `json:"log_id"`
	PrevSeq   int64  `json:"prev_seq"`
	PrevHash  string `json:"prev_hash"`
	PrevKeyID string `json:"prev_key_id"`
}

type archiveEvent struct {
	Seq            int64  `json:"seq"`
	At             string `json:"at"`
	Type           string `json:"type"`
	ActorID        string `json:"actor_id"`
	ImpersonatorID string `json:"impersonator_id"`
	UserID         string `json:"user_id"`
	LocationID     string `json:"location_id"`
	Module         string `json:"module"`
	Action         string `json:"action"`
	Reason         string `json:"reason"`
	Allowed        *bool  `json:"allowed"`
	Details        string `json:"details"` // the canonical JSON text, as hashed
	PrevHash       string `json:"prev_hash"`
	Hash           string `json:"hash"`
	KeyID          string `json:"key_id"`
	MAC            string `json:"mac"`
}

type archiveCheckpoint struct {
	LogID     string `json:"log_id"`
	Seq       int64  `json:"seq"`
	Hash      string `json:"hash"`
	At        string `json:"at"`
	KeyID     string `json:"key_id"`
	Signature string `json:"signature"` // standard base64
}

func archiveEventOf(r *record) *archiveEvent {
	return &archiveEvent{
		Seq: r.Seq, At: canonicalTime(r.At).Format(timeLayout), Type: r.Type, ActorID: r.ActorID,
		ImpersonatorID: r.ImpersonatorID, UserID: r.UserID, LocationID: r.LocationID, Module: r.Module,
		Action: r.Action, Reason: r.Reason, Allowed: r.Allowed, Details: r.Details,
		PrevHash: r.PrevHash, Hash: r.Hash, KeyID: r.KeyID, MAC: r.MAC,
	}
}

func (e *archiveEvent) record() (*record, error) {
	at, err := time.Parse(timeLayout, e.At)
	if err != nil {
		return nil, &TamperError{Seq: e.Seq, Problem: "time is not in the canonical form"}
	}
	return &record{
		Seq: e.Seq, At: at, Type: e.Type, ActorID: e.ActorID, ImpersonatorID: e.ImpersonatorID,
		UserID: e.UserID, LocationID: e.LocationID, Module: e.Module, Action: e.Action, Reason: e.Reason,
		Allowed: e.Allowed, Details: e.Details, PrevHash: e.PrevHash, Hash: e.Hash, KeyID: e.KeyID, MAC: e.MAC,
	}, nil
}

// Archive writes the events from Seq from onwards, through the first
// stored checkpoint at or after to, to w as an archive that VerifyArchive
// checks offline, and returns that checkpoint. A to of 0 means the newest
// stored checkpoint. It verifies what it writes, so it never writes an
// archive that does not verify: a tampered range is a *TamperError. A
// range with no checkpoint at or after it (take one with Checkpoint), or
// starting at an event Prune removed, is ErrInvalidInput. Archives of
// consecutive ranges chain: each header names the hash the previous
// archive's checkpoint signs.
func (l *Log) Archive(ctx context.Context, w io.Writer, from, to int64) (Checkpoint, error) {
	if l == nil || l.db == nil {
		return Checkpoint{}, errNilDB
	}
	if l.optErr != nil {
		return Checkpoint{}, l.optErr
	}
	if w == nil || from < 1 || to < 0 || (to != 0 && to < from) {
		return Checkpoint{}, fmt.Errorf("audit: archive: range %d..%d: %w", from, to, ErrInvalidInput)
	}
	if ctx == nil {
		ctx = context.Background()
	}
	if err := l.sync(ctx); err != nil {
		return Checkpoint{}, err
	}
	db := l.db.WithContext(ctx)
	h, err := readHead(db)
	if err != nil {
		return Checkpoint{}, err
	}
	if from <= h.AnchorSeq {
		return Checkpoint{}, fmt.Errorf("audit: archive: events through %d were pruned: %w", h.AnchorSeq, ErrInvalidInput)
	}
	var row storedCheckpoint
	q := db.Where("seq >= ?", max(to, from)).Order("seq")
	if to == 0 {
		q = db.Where("seq >= ?", from).Order("seq DESC")
	}
	res := q.Limit(1).Find(&row)
	if res.Error != nil {
		return Checkpoint{}, fmt.Errorf("audit: archive: %w", res.Error)
	}
	if res.RowsAffected == 0 {
		return Checkpoint{}, fmt.Errorf("audit: archive: no stored checkpoint at or after event %d: %w", max(to, from), ErrInvalidInput)
	}
	cp := row.checkpoint()
	if cp.LogID != h.LogID || (l.cp.s != nil && cp.Verify(l.cp.s.pub) != nil) {
		return Checkpoint{}, &TamperError{Seq: cp.Seq, Problem: "stored checkpoint is not signed for this log by the log's key"}
	}
	prev, err := eventBefore(db, h, from)
	if err != nil {
		return Checkpoint{}, err
	}
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(archiveLine{Header: &archiveHeader{
		Format: ArchiveFormat, LogID: h.LogID, PrevSeq: prev.seq, PrevHash: prev.hash, PrevKeyID: prev.keyID,
	}}); err != nil {
		return Checkpoint{}, fmt.Errorf("audit: archive: %w", err)
	}
	c := chainCheck{last: prev, keys: &l.keys, expect: map[int64]Checkpoint{cp.Seq: cp}}
	err = c.walk(db, cp.Seq, func(r *record) error {
		if err := enc.Encode(archiveLine{Event: archiveEventOf(r)}); err != nil {
			return fmt.Errorf("audit: archive: %w", err)
		}
		return nil
	})
	if err != nil {
		return Checkpoint{}, err
	}
	if err := c.finish(false); err != nil {
		return Checkpoint{}, err
	}
	if err := enc.Encode(archiveLine{Checkpoint: &archiveCheckpoint{
		LogID: cp.LogID, Seq: cp.Seq, Hash: cp.hashHex(), At: cp.At.Format(timeLayout), KeyID: cp.KeyID,
		Signature: base64.StdEncoding.EncodeToString(cp.Signature),
	}}); err != nil {
		return Checkpoint{}, fmt.Errorf("audit: archive: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return Checkpoint{}, fmt.Errorf("audit: archive: %w", err)
	}
	return cp, nil
}

// eventBefore returns the link of the newest event before seq from, or
// the anchor when there is none after it.
func eventBefore(db *gorm.DB, h head, from int64) (link, error) {
	var r record
	res := db.Where("seq > ? AND seq < ?", h.AnchorSeq, from).Order("seq DESC").Limit(1).Find(&r)
	if res.Error != nil {
		return link{}, fmt.Errorf("audit: archive: %w", res.Error)
	}
	if res.RowsAffected == 0 {
		return h.anchor(), nil
	}
	return link{seq: r.Seq, hash: r.Hash, keyID: r.KeyID}, nil
}

// VerifyArchive checks an archive written by Log.Archive, offline: every
// event's hash, that each follows the one before it from the event the
// header names, and that the last is the event of the final checkpoint,
// which must be signed by pub's private key. It returns that checkpoint.
// With WithKeys it also checks the MACs; checkpoints given with
// WithCheckpoints must match the events they name within the archive.
// Structural problems are ErrInvalidInput, a chain that does not verify a
// *TamperError, a bad signature ErrInvalidCheckpoint. The archive proves
// its events are exactly those the log held between the header's event
// and the checkpoint; that the header's event is where the previous
// archive ended is shown by that archive's checkpoint hash.
func VerifyArchive(r io.Reader, pub ed25519.PublicKey, opts ...VerifyOption) (Checkpoint, error) {
	if r == nil {
		return Checkpoint{}, fmt.Errorf("audit: verify archive: nil reader: %w", ErrInvalidInput)
	}
	cfg := newVerifyConfig(keyRing{}, opts)
	if cfg.err != nil {
		return Checkpoint{}, cfg.err
	}
	if len(pub) != ed25519.PublicKeySize {
		return Checkpoint{}, fmt.Errorf("audit: public key of %d bytes, want %d: %w", len(pub), ed25519.PublicKeySize, ErrInvalidInput)
	}
	dec := json.NewDecoder(bufio.NewReader(r))
	dec.DisallowUnknownFields()
	malformed := func(what string) error {
		return fmt.Errorf("audit: verify archive: %s: %w", what, ErrInvalidInput)
	}
	var first archiveLine
	if err := dec.Decode(&first); err != nil || first.Header == nil || first.Event != nil || first.Checkpoint != nil {
		return Checkpoint{}, malformed("the first line is not a header")
	}
	hd := first.Header
	if hd.Format != ArchiveFormat {
		return Checkpoint{}, malformed(fmt.Sprintf("format %q, want %q", hd.Format, ArchiveFormat))
	}
	c := chainCheck{last: link{seq: hd.PrevSeq, hash: hd.PrevHash, keyID: hd.PrevKeyID}, keys: &cfg.keys, expect: map[int64]Checkpoint{}}
	for _, g := range cfg.given {
		if err := g.cp.Verify(g.pub); err != nil {
			return Checkpoint{}, err
		}
		if g.cp.LogID == hd.LogID && g.cp.Seq > hd.PrevSeq {
			if err := c.expectCheckpoint(g.cp, c.last); err != nil {
				return Checkpoint{}, err
			}
		}
	}
	for line := 2; ; line++ {
		var l archiveLine
		if err := dec.Decode(&l); err != nil {
			if errors.Is(err, io.EOF) {
				return Checkpoint{}, malformed("no checkpoint at the end")
			}
			return Checkpoint{}, malformed(fmt.Sprintf("line %d: %v", line, err))
		}
		switch {
		case l.Header != nil || (l.Event == nil) == (l.Checkpoint == nil):
			return Checkpoint{}, malformed(fmt.Sprintf("line %d is neither one event nor the checkpoint", line))
		case l.Event != nil:
			rec, err := l.Event.record()
			if err != nil {
				return Checkpoint{}, err
			}
			if err := c.next(rec); err != nil {
				return Checkpoint{}, err
			}
			continue
		}
		cp, err := l.Checkpoint.checkpoint()
		if err != nil {
			return Checkpoint{}, malformed(err.Error())
		}
		if err := cp.Verify(pub); err != nil {
			return Checkpoint{}, err
		}
		if cp.LogID != hd.LogID {
			return Checkpoint{}, fmt.Errorf("audit: verify archive: checkpoint of log %q in an archive of log %q: %w", cp.LogID, hd.LogID, ErrInvalidCheckpoint)
		}
		if cp.Seq != c.last.seq || cp.hashHex() != c.last.hash || cp.KeyID != c.last.keyID {
			return Checkpoint{}, &TamperError{Seq: c.last.seq, Problem: fmt.Sprintf("the archive ends at event %d, the checkpoint signs event %d", c.last.seq, cp.Seq)}
		}
		if err := c.finish(false); err != nil {
			return Checkpoint{}, err
		}
		if dec.More() {
			return Checkpoint{}, malformed("lines after the checkpoint")
		}
		return cp, nil
	}
}

func (a *archiveCheckpoint) checkpoint() (Checkpoint, error) {
	at, err := time.Parse(timeLayout, a.At)
	if err != nil {
		return Checkpoint{}, fmt.Errorf("checkpoint time %q: %w", a.At, err)
	}
	h, err := hex.DecodeString(a.Hash)
	if err != nil {
		return Checkpoint{}, fmt.Errorf("checkpoint hash: %w", err)
	}
	sig, err := base64.StdEncoding.DecodeString(a.Signature)
	if err != nil {
		return Checkpoint{}, fmt.Errorf("checkpoint signature: %w", err)
	}
	return Checkpoint{Seq: a.Seq, Hash: h, At: at, KeyID: a.KeyID, Signature: sig, LogID: a.LogID}, nil
}

// Prune removes the events through Seq through from the database, after
// you archived them (Archive) and verified the archive. through must be
// the Seq of a stored checkpoint, and the event it names must match it:
// that event becomes the anchor the remaining chain starts from, so
// Verify of what remains still passes, and with a public key proves the
// anchor is a signed checkpoint. Pruning through an event already pruned
// does nothing. It runs in one transaction, so a failure, or a retry of
// the whole, leaves the log as it was or fully pruned.
func (l *Log) Prune(ctx context.Context, through int64) error {
	if err := l.usable(); err != nil {
		return err
	}
	if through < 1 {
		return fmt.Errorf("audit: prune through %d: %w", through, ErrInvalidInput)
	}
	if ctx == nil {
		ctx = context.Background()
	}
	if err := l.sync(ctx); err != nil {
		return err
	}
	return dbx.Tx(ctx, l.db, func(tx *gorm.DB) error {
		h, err := lockHead(tx)
		if err != nil {
			return fmt.Errorf("audit: prune: %w", err)
		}
		if through <= h.AnchorSeq {
			return nil
		}
		var row storedCheckpoint
		res := tx.Where("seq = ?", through).Limit(1).Find(&row)
		if res.Error != nil {
			return fmt.Errorf("audit: prune: %w", res.Error)
		}
		if res.RowsAffected == 0 {
			return fmt.Errorf("audit: prune: no stored checkpoint at event %d: %w", through, ErrInvalidInput)
		}
		cp := row.checkpoint()
		if cp.LogID != h.LogID || (l.cp.s != nil && cp.Verify(l.cp.s.pub) != nil) {
			return &TamperError{Seq: through, Problem: "stored checkpoint is not signed for this log by the log's key"}
		}
		var r record
		res = tx.Where("seq = ?", through).Limit(1).Find(&r)
		if res.Error != nil {
			return fmt.Errorf("audit: prune: %w", res.Error)
		}
		if res.RowsAffected == 0 || r.Hash != cp.hashHex() || r.KeyID != cp.KeyID {
			return &TamperError{Seq: through, Problem: "event does not match its checkpoint"}
		}
		if err := tx.Where("seq <= ?", through).Delete(&record{}).Error; err != nil {
			return fmt.Errorf("audit: prune: %w", err)
		}
		err = tx.Model(&head{}).Where("id = ?", headID).Updates(map[string]any{
			"anchor_seq": r.Seq, "anchor_hash": r.Hash, "anchor_key_id": r.KeyID, "anchor_mac": r.MAC,
		}).Error
		if err != nil {
			return fmt.Errorf("audit: prune: %w", err)
		}
		return nil
	})
}

package snapshot

// idShard is one shard of the snapshot's user-ID index: an open-addressing
// table (linear probing, at most 4/5 full) from an ID to the user's dense
// index. A slot holds the ID itself when it is short (as most IDs are), so
// that finding a user by ID reads one slot and then the user's record, not
// a map's key bytes elsewhere in memory. Shards are immutable once
// published: a change builds the shard again (UserTable.with).
type idShard struct {
	Slots []idSlot
	N     int // occupied slots
}

// idInline is the longest ID a slot holds whole; longer IDs are compared
// with the record's ID after their first idInline bytes.
const idInline = 15

// idSlot is 24 bytes: a shard of 400 users fits in 12 KiB.
type idSlot struct {
	Hash uint32 // bits 8-39 of the ID's hash (the low 8 pick the shard)
	Idx  uint32 // dense index + 1; 0: empty
	klen uint8  // len(ID), 255 for 255 or more
	Key  [idInline]byte
}

// slotHash is the part of an ID's hash a slot keeps and probes from.
func slotHash(h uint64) uint32 { return uint32(h >> 8) }

// Find returns the dense index of id, whose hash is h, resolving long IDs
// through at.
func (s *idShard) Find(id string, h uint64, at func(uint32) *UserState) (uint32, bool) {
	if len(s.Slots) == 0 {
		return 0, false
	}
	mask := uint32(len(s.Slots) - 1)
	hs := slotHash(h)
	for pos := hs & mask; ; pos = (pos + 1) & mask {
		sl := &s.Slots[pos]
		if sl.Idx == 0 {
			return 0, false
		}
		if sl.Hash != hs || int(sl.klen) != min(len(id), 255) {
			continue
		}
		if len(id) <= idInline {
			if string(sl.Key[:len(id)]) == id {
				return sl.Idx - 1, true
			}
			continue
		}
		if string(sl.Key[:]) == id[:idInline] {
			if u := at(sl.Idx - 1); u != nil && u.ID == id {
				return sl.Idx - 1, true
			}
		}
	}
}

// Insert adds id (hash h) with dense index ix; the shard must not hold id
// and must have room.
func (s *idShard) Insert(id string, h uint64, ix uint32) {
	sl := idSlot{Hash: slotHash(h), Idx: ix + 1, klen: uint8(min(len(id), 255))}
	copy(sl.Key[:], id)
	s.Place(sl)
}

// Place puts sl in its slot or the first free one after it.
func (s *idShard) Place(sl idSlot) {
	mask := uint32(len(s.Slots) - 1)
	pos := sl.Hash & mask
	for s.Slots[pos].Idx != 0 {
		pos = (pos + 1) & mask
	}
	s.Slots[pos] = sl
	s.N++
}

// rebuilt returns a copy of s sized for extra more IDs, without the
// indexes drop rejects (drop may be nil).
func (s *idShard) rebuilt(extra int, drop func(ix uint32) bool) *idShard {
	out := &idShard{Slots: make([]idSlot, shardSize(s.N+extra))}
	for _, sl := range s.Slots {
		if sl.Idx != 0 && (drop == nil || !drop(sl.Idx-1)) {
			out.Place(sl)
		}
	}
	return out
}

// full reports whether s has no room for one more ID.
func (s *idShard) full() bool { return (s.N+1)*5 > len(s.Slots)*4 }

// shardSize is the table size for n IDs: a power of two at most 4/5 full.
func shardSize(n int) int {
	size := 8
	for size*4 < n*5 {
		size *= 2
	}
	return size
}

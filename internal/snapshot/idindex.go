package snapshot

// IDShard is one shard of the snapshot's user-ID index: an open-addressing
// table (linear probing, at most 4/5 full) from an ID to the user's dense
// index. A slot holds the ID itself when it is short (as most IDs are), so
// that finding a user by ID reads one slot and then the user's record, not
// a map's key bytes elsewhere in memory. Shards are immutable once
// published: a change builds the shard again (UserTable.with).
type IDShard struct {
	Slots []IDSlot
	N     int // occupied slots
}

// IDInline is the longest ID a slot holds whole; longer IDs are compared
// with the record's ID after their first IDInline bytes.
const IDInline = 15

// IDSlot is 24 bytes: a shard of 400 users fits in 12 KiB.
type IDSlot struct {
	Hash uint32 // bits 8-39 of the ID's hash (the low 8 pick the shard)
	Idx  uint32 // dense index + 1; 0: empty
	Klen uint8  // len(ID), 255 for 255 or more
	Key  [IDInline]byte
}

// SlotHash is the part of an ID's hash a slot keeps and probes from.
func SlotHash(h uint64) uint32 { return uint32(h >> 8) }

// Find returns the dense index of id, whose hash is h, resolving long IDs
// through at.
func (s *IDShard) Find(id string, h uint64, at func(uint32) *UserState) (uint32, bool) {
	if len(s.Slots) == 0 {
		return 0, false
	}
	mask := uint32(len(s.Slots) - 1)
	hs := SlotHash(h)
	for pos := hs & mask; ; pos = (pos + 1) & mask {
		sl := &s.Slots[pos]
		if sl.Idx == 0 {
			return 0, false
		}
		if sl.Hash != hs || int(sl.Klen) != min(len(id), 255) {
			continue
		}
		if len(id) <= IDInline {
			if string(sl.Key[:len(id)]) == id {
				return sl.Idx - 1, true
			}
			continue
		}
		if string(sl.Key[:]) == id[:IDInline] {
			if u := at(sl.Idx - 1); u != nil && u.ID == id {
				return sl.Idx - 1, true
			}
		}
	}
}

// Insert adds id (hash h) with dense index ix; the shard must not hold id
// and must have room.
func (s *IDShard) Insert(id string, h uint64, ix uint32) {
	sl := IDSlot{Hash: SlotHash(h), Idx: ix + 1, Klen: uint8(min(len(id), 255))}
	copy(sl.Key[:], id)
	s.Place(sl)
}

// Place puts sl in its slot or the first free one after it.
func (s *IDShard) Place(sl IDSlot) {
	mask := uint32(len(s.Slots) - 1)
	pos := sl.Hash & mask
	for s.Slots[pos].Idx != 0 {
		pos = (pos + 1) & mask
	}
	s.Slots[pos] = sl
	s.N++
}

// Rebuilt returns a copy of s sized for extra more IDs, without the
// indexes drop rejects (drop may be nil).
func (s *IDShard) Rebuilt(extra int, drop func(ix uint32) bool) *IDShard {
	out := &IDShard{Slots: make([]IDSlot, ShardSize(s.N+extra))}
	for _, sl := range s.Slots {
		if sl.Idx != 0 && (drop == nil || !drop(sl.Idx-1)) {
			out.Place(sl)
		}
	}
	return out
}

// Full reports whether s has no room for one more ID.
func (s *IDShard) Full() bool { return (s.N+1)*5 > len(s.Slots)*4 }

// ShardSize is the table size for n IDs: a power of two at most 4/5 full.
func ShardSize(n int) int {
	size := 8
	for size*4 < n*5 {
		size *= 2
	}
	return size
}

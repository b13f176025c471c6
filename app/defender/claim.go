package defender

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"strconv"
	"sync/atomic"
)

// Claim records the versions a page's hand-over progress (Position.At or KeyAt) covers because
// they were handed on in the order that progress rests on. A resumed drain drops what the
// saved progress covers while the reply comes in that order; that is right only if the API
// listed the interrupted reply the same way. Where the API has no stable order, the first
// reply may have put a version above the saved bound after one below it, and a crash between
// the two leaves a bound that claims more than was handed on. The resumed drain therefore
// records what it drops the same way and keeps the drop only if every version it dropped is
// in the claim; otherwise it reads the page again and hands on what it dropped (repeats
// instead of a loss). Versions in the claim that the resumed reply no longer shows (updated
// out of the window, or cut off by $top) are fine: they were handed on.
//
// The record is small whatever the page size: a count and an invertible table of hashes of
// (id, lastUpdateTime) in claimCells cells. Subtracting the dropped table from the claim's
// lists the versions in which the two differ, when they are few (up to about a dozen); more
// differences than that cannot be listed, and the page is read again.
type Claim struct {
	N     int
	cells [claimCells]claimCell
}

// claimCells cells in claimHashes partitions: each version lands in one cell of each.
const (
	claimHashes = 3
	claimPart   = 10
	claimCells  = claimHashes * claimPart
	cellBytes   = 20
)

type claimCell struct {
	n   int32  // versions added minus removed
	key uint64 // XOR of their hashes
	chk uint64 // XOR of a second hash of each (a cell holding one version proves it)
}

func (c *Claim) add(k key) { c.N++; c.put(versionHash(k), 1) }
func (c *Claim) sub(k key) { c.N--; c.put(versionHash(k), -1) }

func (c *Claim) put(h uint64, n int32) {
	chk := mix(h ^ 0x9e3779b97f4a7c15)
	for i := range claimHashes {
		x := &c.cells[i*claimPart+int(mix(h+uint64(i)*0x632be59bd9b4e019)%claimPart)]
		x.n += n
		x.key ^= h
		x.chk ^= chk
	}
}

// covers reports whether every version recorded in d is recorded in c (their difference is
// listed, and holds only versions of c).
func (c Claim) covers(d Claim) bool {
	if d.N > c.N {
		return false
	}
	t := c
	for i := range t.cells {
		t.cells[i].n -= d.cells[i].n
		t.cells[i].key ^= d.cells[i].key
		t.cells[i].chk ^= d.cells[i].chk
	}
	extra := 0
	for peeled := true; peeled; {
		peeled = false
		for i := range t.cells {
			x := t.cells[i]
			if (x.n != 1 && x.n != -1) || x.chk != mix(x.key^0x9e3779b97f4a7c15) {
				continue
			}
			if x.n == -1 {
				return false // dropped, but not in the claim
			}
			t.put(x.key, -1)
			extra++
			peeled = true
		}
	}
	for _, x := range t.cells {
		if x != (claimCell{}) {
			return false // too many differences to list
		}
	}
	return extra == c.N-d.N
}

// MarshalJSON writes {"n":N,"cells":"<base64>"}.
func (c Claim) MarshalJSON() ([]byte, error) { return c.appendJSON(nil), nil }

func (c Claim) appendJSON(b []byte) []byte {
	b = append(b, `{"n":`...)
	b = strconv.AppendInt(b, int64(c.N), 10)
	b = append(b, `,"cells":"`...)
	var raw [claimCells * cellBytes]byte
	for i, x := range c.cells {
		o := raw[i*cellBytes:]
		binary.LittleEndian.PutUint32(o, uint32(x.n))
		binary.LittleEndian.PutUint64(o[4:], x.key)
		binary.LittleEndian.PutUint64(o[12:], x.chk)
	}
	b = base64.StdEncoding.AppendEncode(b, raw[:])
	return append(b, `"}`...)
}

// UnmarshalJSON reads what MarshalJSON writes.
func (c *Claim) UnmarshalJSON(b []byte) error {
	var v struct {
		N     int    `json:"n"`
		Cells string `json:"cells"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	raw, err := base64.StdEncoding.DecodeString(v.Cells)
	if err != nil || len(raw) != claimCells*cellBytes || v.N < 0 {
		return errors.New("a position's claim is not a count and " + strconv.Itoa(claimCells) + " cells")
	}
	c.N = v.N
	for i := range c.cells {
		o := raw[i*cellBytes:]
		c.cells[i] = claimCell{int32(binary.LittleEndian.Uint32(o)), binary.LittleEndian.Uint64(o[4:]), binary.LittleEndian.Uint64(o[12:])}
	}
	return nil
}

// versionHash is FNV-1a over the id and the time's nanoseconds, then mixed. It must never
// change: checkpoints hold its values.
func versionHash(k key) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(k.id); i++ {
		h ^= uint64(k.id[i])
		h *= 1099511628211
	}
	for i := 0; i < 64; i += 8 {
		h ^= uint64(byte(k.t >> i))
		h *= 1099511628211
	}
	return mix(h)
}

// mix is a 64-bit finalizer (MurmurHash3's): every input bit reaches every output bit.
func mix(h uint64) uint64 {
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}

// claimLog is a drain's claim kept as a base and the operations since, so that a position
// taken at every alert costs a slice header, not a copy of the table: the operations below a
// position's length are never changed (the drain only appends), so a position folds them
// when it is saved, from any goroutine.
type claimLog struct {
	base Claim
	ops  []claimOp
	// memo is the newest fold: positions are saved in about the order they were taken, so
	// each fold starts where the one before ended instead of at the base (a page of 10,000
	// alerts would fold thousands of operations for every batch). Any memo is right for
	// every snapshot at least as long: the operations below its length never change.
	memo atomic.Pointer[claimMemo]
}

// claimMemo is the log's claim folded over its first n operations.
type claimMemo struct {
	n int
	c Claim
}

type claimOp struct {
	h uint64
	n int32 // +1 added, -1 removed
}

// claimSnap is a claim as it stood at a position: the log's base and its first len(ops)
// operations.
type claimSnap struct {
	base *Claim
	ops  []claimOp
	log  *claimLog // for its memo; nil: fold from the base
}

func (s claimSnap) fold() Claim {
	c, from := *s.base, 0
	if s.log != nil {
		if m := s.log.memo.Load(); m != nil && m.n <= len(s.ops) {
			c, from = m.c, m.n
		}
	}
	for _, op := range s.ops[from:] {
		c.N += int(op.n)
		c.put(op.h, op.n)
	}
	if s.log != nil && len(s.ops) > from {
		s.log.memo.Store(&claimMemo{n: len(s.ops), c: c})
	}
	return c
}

// claimReset starts the drain's claim, and its log, over from c.
func (d *drain) claimReset(c Claim) {
	d.claim = c
	d.clog = &claimLog{base: c}
}

func (d *drain) claimAdd(k key) { d.claimOp(k, 1) }
func (d *drain) claimSub(k key) { d.claimOp(k, -1) }

func (d *drain) claimOp(k key, n int32) {
	if d.clog == nil {
		d.claimReset(d.claim)
	}
	h := versionHash(k)
	d.claim.N += int(n)
	d.claim.put(h, n)
	d.clog.ops = append(d.clog.ops, claimOp{h, n})
}

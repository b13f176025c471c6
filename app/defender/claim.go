package defender

import "strconv"

// Claim sums the versions a page's hand-over progress (Position.At or KeyAt) covers because
// they were handed on in the order that progress rests on. A resumed drain drops what the
// saved progress covers while the reply comes in that order; that is right only if the API
// listed the interrupted reply the same way. Where the API has no stable order, the first
// reply may have put a version above the saved bound after one below it, and a crash between
// the two leaves a bound that claims more than was handed on. The resumed drain therefore sums
// what it drops and keeps the drop only if the sums agree; otherwise it reads the page again
// and hands on what it dropped (repeats instead of a loss).
//
// N counts the versions and Sum adds a 64-bit hash of each (id and lastUpdateTime): equal
// sums mean the same set but for a 2^-64 chance, in any order.
type Claim struct {
	N   int    `json:"n"`
	Sum uint64 `json:"sum"`
}

func (c *Claim) add(k key) {
	c.N++
	c.Sum += versionHash(k)
}

func (c *Claim) sub(k key) {
	c.N--
	c.Sum -= versionHash(k)
}

func (c Claim) appendJSON(b []byte) []byte {
	b = append(b, `{"n":`...)
	b = strconv.AppendInt(b, int64(c.N), 10)
	b = append(b, `,"sum":`...)
	b = strconv.AppendUint(b, c.Sum, 10)
	return append(b, '}')
}

// versionHash is FNV-1a over the id and the time's nanoseconds, then a finalizer that spreads
// the bits (sums of plain FNV values of similar ids would share their low bits). It must
// never change: checkpoints hold its sums.
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
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}

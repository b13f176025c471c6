package checkpoint

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"unsafe"
)

// Quick deltas: while batches await their acks, a quick save comes before every request, and
// most of what it holds (the chain of pending batches, the delivered keys of the overlap) is
// what the save before it held. Rewriting all of it each time made saves grow with the window:
// 146 pending batches wrote about 190 KB a save, 90 MB for 100,000 alerts. So a quick save
// after another one of this process, on the same checkpoint, is written as a delta appended
// to the file of the save it follows: the state's other fields whole, and its two lists as
// runs taken from the previous save's lists plus the entries that are new or changed.
//
// A delta names the save it follows (#seq on #prev), and a file is read from its full save at
// the start through each delta that follows on from the one before, up to the first that does
// not (torn, of an older chain, or bytes of an earlier save): appending never touches the
// records before, so a write cut short leaves the save before it whole. A file is written
// whole again (in the other slot, as before deltas) once its deltas would make it more than
// four times its full save, or a delta would be more than half of one.

const deltaMagic = "defender_alerts quick delta"

// deltaBody is a delta's document. Pending and Delivered are runs, two numbers each: (i, n)
// takes entries i … i+n-1 of the previous save's list (each run after the one before it),
// (-1, n) the next n entries of State's.
type deltaBody struct {
	Pending   []int           `json:"pending"`
	Delivered []int           `json:"delivered"`
	State     json.RawMessage `json:"state"`
}

// runs builds the runs that make a list of curN entries from one of prevN: entries that
// same(j, i) says equal are taken from the previous list where they line up with it (a list
// that lost entries at the front, had some change in place and gained some at the end gives
// a few runs), and the others are new. It returns the runs and the new entries' indexes.
func runs(prevN, curN int, same func(j, i int) bool) (ops []int, fresh []int) {
	// Line the lists up on the first of the first few entries found in the previous list.
	off, found := 0, false
	for i := 0; i < min(curN, 4) && !found; i++ {
		for j := range prevN {
			if same(j, i) {
				off, found = j-i, true
				break
			}
		}
	}
	for i := range curN {
		j := off + i
		if !found || j < 0 || j >= prevN || !same(j, i) {
			fresh = append(fresh, i)
			if n := len(ops); n > 0 && ops[n-2] == -1 {
				ops[n-1]++
			} else {
				ops = append(ops, -1, 1)
			}
			continue
		}
		if n := len(ops); n > 0 && ops[n-2] >= 0 && ops[n-2]+ops[n-1] == j {
			ops[n-1]++
		} else {
			ops = append(ops, j, 1)
		}
	}
	return ops, fresh
}

// applyRuns rebuilds a list from runs over prev and the new entries fresh; false if the runs
// do not fit them (a damaged delta).
func applyRuns[T any](ops []int, prev, fresh []T) ([]T, bool) {
	if len(ops) == 0 {
		return fresh, len(fresh) == 0 // an empty list (nil or not, as written)
	}
	if len(ops)%2 != 0 {
		return nil, false
	}
	var out []T
	used, next := 0, 0 // next: where the next run from prev may start (runs only go forward)
	for k := 0; k < len(ops); k += 2 {
		i, n := ops[k], ops[k+1]
		switch {
		case n <= 0 || n > len(prev)+len(fresh):
			return nil, false
		case i == -1:
			if n > len(fresh)-used {
				return nil, false
			}
			out = append(out, fresh[used:used+n]...)
			used += n
		case i >= next && i <= len(prev)-n:
			// Each entry of prev is taken once at most, so a list never outgrows prev and
			// fresh together, whatever a file says.
			out = append(out, prev[i:i+n]...)
			next = i + n
		default:
			return nil, false
		}
	}
	if used != len(fresh) {
		return nil, false
	}
	return out, true
}

// sameBytes compares two encodings, the same slice first (a pump passes a batch's cached
// encoding again while the batch does not change).
func sameBytes(a, b []byte) bool {
	if len(a) != len(b) {
		return false
	}
	return len(a) == 0 || unsafe.SliceData(a) == unsafe.SliceData(b) || bytes.Equal(a, b)
}

// appendDelta appends to b the delta record that makes st from the previous save (q.prevEnc,
// q.prevKeys), numbered seq; encs are st.Pending's encodings.
func (q *quickSlots) appendDelta(b []byte, st *State, encs [][]byte, base string, seq uint64) []byte {
	pOps, pNew := runs(len(q.prevEnc), len(encs), func(j, i int) bool { return sameBytes(q.prevEnc[j], encs[i]) })
	dOps, dNew := runs(len(q.prevKeys), len(st.Delivered), func(j, i int) bool {
		a, c := q.prevKeys[j], st.Delivered[i]
		return a.ID == c.ID && a.LastUpdate.Equal(c.LastUpdate)
	})
	part := *st
	part.Pending = nil
	for _, i := range pNew {
		part.Pending = append(part.Pending, st.Pending[i])
	}
	if len(dOps) > 0 {
		part.Delivered = nil
		for _, i := range dNew {
			part.Delivered = append(part.Delivered, st.Delivered[i])
		}
	}
	const room = 200
	start := len(b)
	b = append(b, make([]byte, room)...)
	b = append(b, `{"pending":`...)
	b = appendInts(b, pOps)
	b = append(b, `,"delivered":`...)
	b = appendInts(b, dOps)
	b = append(b, `,"state":`...)
	b = part.appendJSON(b)
	b = append(b, "}\n"...)
	doc := b[start+room:]
	head := fmt.Sprintf("%s after %s #%d on #%d len %d", deltaMagic, base, seq, seq-1, len(doc))
	sum := sealSum([]byte(head), doc)
	head += fmt.Sprintf(" crc %08x\n", sum)
	if len(head) > room {
		return append(b[:start], append([]byte(head), doc...)...)
	}
	// The header goes right before the document: move the document back over the room left.
	n := copy(b[start:], head)
	copy(b[start+n:], doc)
	return b[:start+n+len(doc)]
}

func appendInts(b []byte, v []int) []byte {
	b = append(b, '[')
	for i, x := range v {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, int64(x), 10)
	}
	return append(b, ']')
}

// nextDelta reads the delta record at the start of b that follows save seq of prev, made on
// the checkpoint whose digest is base: the state it gives and the bytes it took, or ok false.
func nextDelta(b []byte, base string, seq uint64, prev *State) (st *State, size int, ok bool) {
	line, rest, found := bytes.Cut(b, []byte("\n"))
	want := fmt.Sprintf("%s after %s #%d on #%d len ", deltaMagic, base, seq+1, seq)
	if !found || !bytes.HasPrefix(line, []byte(want)) {
		return nil, 0, false
	}
	var n int
	var sum uint32
	if _, err := fmt.Sscanf(string(line[len(want):]), "%d crc %08x", &n, &sum); err != nil || n < 0 || n > len(rest) {
		return nil, 0, false
	}
	head := line[:bytes.LastIndex(line, []byte(" crc "))]
	doc := rest[:n]
	if sealSum(head, doc) != sum {
		return nil, 0, false
	}
	var body deltaBody
	if json.Unmarshal(doc, &body) != nil {
		return nil, 0, false
	}
	st, err := Parse(body.State)
	if err != nil {
		return nil, 0, false
	}
	var good bool
	if st.Pending, good = applyRuns(body.Pending, prev.Pending, st.Pending); !good {
		return nil, 0, false
	}
	if st.Delivered, good = applyRuns(body.Delivered, prev.Delivered, st.Delivered); !good {
		return nil, 0, false
	}
	return st, len(line) + 1 + n, true
}

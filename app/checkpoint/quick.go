package checkpoint

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash/crc32"
	"os"
)

// Quick saves: the state written often while batches are in flight (every ticket a sink must
// keep before it sends more) goes to two side files, <checkpoint>.quick-a and .quick-b,
// without fsync. A whole save goes to the file that does not hold the newest save, over what
// it held; the saves after it are deltas appended to it (delta.go) until it has grown enough
// for a whole save to be cheaper, which then goes to the other file. A process that is killed
// loses nothing written: the kernel holds it; one killed while writing leaves a torn record
// (its checksum says so) and, before it, the save before, whole. A power loss may lose both
// files or tear them; then the checkpoint itself, which Save still writes with fsync (and the
// collector at least once a second), is used, and the batches after it are sent again:
// duplicates, never a loss.
//
// A quick save names the checkpoint it follows (a hash of its bytes): it is used only while
// that checkpoint is the one on disk, so a checkpoint moved away, restored from a backup or
// written since is never overridden by an older quick save.

const quickMagic = "defender_alerts quick checkpoint"

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// sealSum is the checksum of a quick save or delta: its header up to the sum, then its
// document.
func sealSum(head, doc []byte) uint32 {
	return crc32.Update(crc32.Checksum(head, castagnoli), castagnoli, doc)
}

// quickSlots holds the two side files, opened at the first quick save.
type quickSlots struct {
	f    [2]*os.File
	seq  uint64 // the newest quick save's number
	last int    // the slot it is in
	buf  []byte
	size [2]int64 // each file's length as written here; 0: not known (made by an earlier process)

	// Deltas (delta.go). chained: the newest quick save is this process's, made on the
	// checkpoint now on disk, so the next one may be a delta appended after it, at end.
	chained  bool
	end      int64    // where the newest save ends in its file
	full     int64    // the length of that file's full save
	prevEnc  [][]byte // the newest save's pending batches, encoded (the caller's, not copied)
	prevKeys []Key    // its delivered keys (copied)
	encs     [][]byte // the next one's, reused
}

// QuickPaths are the side files of quick saves.
func (s *Store) QuickPaths() [2]string { return [2]string{s.path + ".quick-a", s.path + ".quick-b"} }

func digest(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:16])
}

// SaveQuick writes st without fsync (see above): as a delta after the save before it when it
// can (delta.go), else whole to the older side file. Before the checkpoint itself exists it
// is a Save. A batch's Encoded must not change once saved: deltas compare it with the next.
func (s *Store) SaveQuick(st *State) error {
	if s.base == "" {
		return s.Save(st)
	}
	st.Version = formatVersion
	q := &s.quick
	encs := q.encs[:0]
	for i := range st.Pending {
		if e := &st.Pending[i]; e.Marshaled && e.Encoded != nil {
			encs = append(encs, e.Encoded)
		} else {
			encs = append(encs, e.AppendJSON(nil))
		}
	}
	if q.chained {
		rec := q.appendDelta(q.buf[:0], st, encs, s.base, q.seq+1)
		q.buf = rec
		if n := int64(len(rec)); 2*n <= q.full && q.end+n <= 4*q.full+64<<10 {
			if _, err := q.f[q.last].WriteAt(rec, q.end); err != nil {
				q.chained = false
				return &FixError{fmt.Errorf("checkpoint %s cannot be written: %w", s.QuickPaths()[q.last], err)}
			}
			q.end += n
			q.size[q.last] = max(q.size[q.last], q.end)
			q.seq++
			q.remember(st, encs)
			return nil
		}
	}
	// One buffer for every quick save: the header goes in front of the document once its
	// length and checksum are known.
	const room = 160
	b := st.appendJSON(append(q.buf[:0], make([]byte, room)...))
	b = append(b, '\n')
	q.buf = b
	doc := b[room:]
	slot := 1 - q.last
	if q.f[slot] == nil {
		f, err := os.OpenFile(s.QuickPaths()[slot], os.O_RDWR|os.O_CREATE, 0o600)
		if err == nil {
			err = f.Chmod(0o600) // one left by an earlier process, whatever its mode
		}
		if err != nil {
			return &FixError{fmt.Errorf("checkpoint %s cannot be written: %w", s.QuickPaths()[slot], err)}
		}
		q.f[slot] = f
	}
	// The checksum covers the header too: a write torn inside it must not give an older
	// document the new save's number. (Saves before deltas had "crc", over the document only.)
	head := fmt.Sprintf("%s after %s #%d len %d", quickMagic, s.base, q.seq+1, len(doc))
	sum := sealSum([]byte(head), doc)
	head += fmt.Sprintf(" sum %08x\n", sum)
	if len(head) > room {
		return &FixError{fmt.Errorf("checkpoint %s: quick save header too long", s.QuickPaths()[slot])}
	}
	b = b[room-len(head):]
	copy(b, head)
	// The save goes to the other file, in which it starts a new chain of deltas: a write cut
	// short leaves the file of the newest save whole.
	q.chained = false
	if err := writeQuick(q.f[slot], b, &q.size[slot]); err != nil {
		return &FixError{fmt.Errorf("checkpoint %s cannot be written: %w", s.QuickPaths()[slot], err)}
	}
	q.seq++
	q.last = slot
	q.chained, q.end, q.full = true, int64(len(b)), int64(len(b))
	q.remember(st, encs)
	return nil
}

// remember keeps what the next delta is made against.
func (q *quickSlots) remember(st *State, encs [][]byte) {
	q.prevEnc, q.encs = encs, q.prevEnc[:0]
	q.prevKeys = append(q.prevKeys[:0], st.Delivered...)
}

// writeQuick overwrites the start of f with b and cuts f after it; *size is f's length (0:
// not known). Bytes an earlier save left after b would do no harm (a delta follows only the
// save it names), but cutting them keeps a file within its newest chain.
func writeQuick(f *os.File, b []byte, size *int64) error {
	if _, err := f.WriteAt(b, 0); err != nil {
		return err
	}
	n := int64(len(b))
	if *size == 0 || *size > n {
		if err := f.Truncate(n); err != nil {
			return err
		}
	}
	*size = n
	return nil
}

// loadQuick returns the newest whole quick save that follows the checkpoint whose digest is
// s.base, else nil (none, another checkpoint's, or torn): in each file, the full save at its
// start and then each delta that follows on (delta.go).
func (s *Store) loadQuick() *State {
	base := s.base
	want := quickMagic + " after " + base + " #"
	var best *State
	for i, path := range s.QuickPaths() {
		b, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		head, rest, ok := bytes.Cut(b, []byte("\n"))
		if !ok || !bytes.HasPrefix(head, []byte(want)) {
			continue
		}
		var seq uint64
		var n int
		var kind string
		var sum uint32
		if _, err := fmt.Sscanf(string(head[len(want):]), "%d len %d %s %08x", &seq, &n, &kind, &sum); err != nil ||
			n < 0 || n > len(rest) {
			continue
		}
		switch kind {
		case "sum":
			prefix := head[:bytes.LastIndex(head, []byte(" sum "))]
			if sealSum(prefix, rest[:n]) != sum {
				continue
			}
		case "crc": // written by a version before deltas: the document alone
			if crc32.Checksum(rest[:n], castagnoli) != sum {
				continue
			}
		default:
			continue
		}
		st, err := Parse(rest[:n])
		if err != nil {
			continue
		}
		for rest = rest[n:]; ; seq++ {
			next, size, ok := nextDelta(rest, base, seq, st)
			if !ok {
				break
			}
			st, rest = next, rest[size:]
		}
		if best != nil && seq <= s.quick.seq {
			continue
		}
		best, s.quick.seq, s.quick.last = st, seq, i
	}
	s.quick.chained = false // this process's first quick save is a full one
	return best
}

// closeQuick closes the side files.
func (s *Store) closeQuick() {
	for i, f := range s.quick.f {
		if f != nil {
			f.Close()
			s.quick.f[i], s.quick.size[i] = nil, 0
		}
	}
}

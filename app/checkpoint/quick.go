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
// keep before it sends more) goes to one of two side files, <checkpoint>.quick-a and
// .quick-b, in turn, overwritten in place without fsync. A process that is killed loses
// nothing written: the kernel holds it; one killed while writing leaves that file torn (its
// checksum says so) and the other one, the save before, whole. A power loss may lose both
// or tear them; then the checkpoint itself, which Save still writes with fsync (and the
// collector at least once a second), is used, and the batches after it are sent again:
// duplicates, never a loss.
//
// A quick save names the checkpoint it follows (a hash of its bytes): it is used only while
// that checkpoint is the one on disk, so a checkpoint moved away, restored from a backup or
// written since is never overridden by an older quick save.

const quickMagic = "defender_alerts quick checkpoint"

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// quickSlots holds the two side files, opened at the first quick save.
type quickSlots struct {
	f    [2]*os.File
	seq  uint64 // the newest quick save's number
	last int    // the slot it is in
	buf  []byte
	size [2]int64 // each file's length as written here; 0: not known (made by an earlier process)
}

// QuickPaths are the side files of quick saves.
func (s *Store) QuickPaths() [2]string { return [2]string{s.path + ".quick-a", s.path + ".quick-b"} }

func digest(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:16])
}

// SaveQuick writes st to the older side file, without fsync (see above); before the
// checkpoint itself exists it is a Save.
func (s *Store) SaveQuick(st *State) error {
	if s.base == "" {
		return s.Save(st)
	}
	st.Version = formatVersion
	q := &s.quick
	// One buffer for every quick save (they come every few milliseconds while batches are in
	// flight): the header goes in front of the document once its length and checksum are known.
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
	head := fmt.Sprintf("%s after %s #%d len %d crc %08x\n", quickMagic, s.base, q.seq+1, len(doc), crc32.Checksum(doc, castagnoli))
	if len(head) > room {
		return &FixError{fmt.Errorf("checkpoint %s: quick save header too long", s.QuickPaths()[slot])}
	}
	b = b[room-len(head):]
	copy(b, head)
	if err := writeQuick(q.f[slot], b, &q.size[slot]); err != nil {
		return &FixError{fmt.Errorf("checkpoint %s cannot be written: %w", s.QuickPaths()[slot], err)}
	}
	q.seq++
	q.last = slot
	return nil
}

// writeQuick overwrites the start of f with b; *size is f's length. The header says how long
// the document is, so bytes after it are never read: the file is cut only when it is of
// unknown length or more than twice b, which saves a system call on most quick saves and
// keeps the file within twice the largest save of the last ones.
func writeQuick(f *os.File, b []byte, size *int64) error {
	if _, err := f.WriteAt(b, 0); err != nil {
		return err
	}
	n := int64(len(b))
	if *size == 0 || *size > 2*n {
		if err := f.Truncate(n); err != nil {
			return err
		}
		*size = n
	}
	*size = max(*size, n)
	return nil
}

// loadQuick returns the newest whole quick save that follows the checkpoint whose bytes are
// main, else nil (none, another checkpoint's, or torn).
func (s *Store) loadQuick(main []byte) *State {
	want := quickMagic + " after " + digest(main) + " #"
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
		var sum uint32
		if _, err := fmt.Sscanf(string(head[len(want):]), "%d len %d crc %08x", &seq, &n, &sum); err != nil ||
			n < 0 || n > len(rest) || crc32.Checksum(rest[:n], castagnoli) != sum {
			continue
		}
		st, err := Parse(rest[:n])
		if err != nil || (best != nil && seq <= s.quick.seq) {
			continue
		}
		best, s.quick.seq, s.quick.last = st, seq, i
	}
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

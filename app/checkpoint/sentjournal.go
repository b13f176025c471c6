package checkpoint

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"time"
)

// The memory's journal: what Sent learned since its file was last written, appended as it
// learns it, so that a crash (a kill, a restart by splunkd) loses none of it. Without it, a
// crash lost up to a save interval of alert versions delivered, and the checkpoint, saved
// more often, had moved past their incidents: the next update of such an incident sent
// every one of its alerts again.
//
// It is written with one write per frame and no sync: a process that dies keeps what it
// wrote; a machine that loses power may lose the tail, which costs only versions sent again.
// A frame cut short or damaged ends the replay there (and the file is cut back to the frames
// before it). Save writes the memory's file and starts the journal over.
//
// Frames: a kind byte, a ticket hash (8 bytes, 0 for kind 'C'), a count (4 bytes), count
// entries of 16 bytes (the id's hash, the time in nanoseconds), a CRC-32C of the frame.
//   - 'C': versions confirmed delivered;
//   - 'T': versions in a batch the destination took but has not yet confirmed, under the
//     hash of the batch's ticket. After a restart, if the destination says that ticket was
//     confirmed (Prove), they count as delivered: the checkpoint moves past that batch
//     without reading it again, so this is the only place they are known from.
const (
	journalMagic = "defender_alerts sent journal v1\n"
	frameHead    = 1 + 8 + 4
)

// JournalPath is where the journal of the memory at path lives.
func journalPath(path string) string { return path + ".journal" }

// Version is one item version.
type Version struct {
	ID string
	T  time.Time
}

// openJournal replays the journal into m and leaves it open for appending. A journal that
// does not start as one is an error naming it.
func (m *Sent) openJournal() error {
	path := journalPath(m.path)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("the journal of alerts sent, %s, cannot be opened: %w", path, err)
	}
	b, err := io.ReadAll(f)
	if err != nil {
		f.Close()
		return fmt.Errorf("the journal of alerts sent, %s, cannot be read: %w", path, err)
	}
	good := int64(len(journalMagic))
	switch {
	case len(b) == 0:
		if _, err := f.Write([]byte(journalMagic)); err != nil {
			f.Close()
			return fmt.Errorf("the journal of alerts sent, %s, cannot be written: %w", path, err)
		}
	case cutHeader(b):
		// Made, and its first write cut short or lost (a power cut: the header is not
		// synced): it held nothing yet. Started over; forgetting costs only alerts sent again.
		if err := f.Truncate(0); err != nil {
			f.Close()
			return fmt.Errorf("the journal of alerts sent, %s, has a damaged start and cannot be started over: %w", path, err)
		}
		if _, err := f.WriteAt([]byte(journalMagic), 0); err != nil {
			f.Close()
			return fmt.Errorf("the journal of alerts sent, %s, cannot be written: %w", path, err)
		}
		m.Restarted = path
	case len(b) < len(journalMagic) || string(b[:len(journalMagic)]) != journalMagic:
		f.Close()
		return fmt.Errorf("the journal of alerts sent, %s, cannot be read (not a journal); removing it costs only alerts sent again", path)
	default:
		good += m.replay(b[len(journalMagic):])
		if good < int64(len(b)) {
			if err := f.Truncate(good); err != nil {
				f.Close()
				return fmt.Errorf("the journal of alerts sent, %s, cannot be cut back to its last whole entry: %w", path, err)
			}
		}
	}
	if _, err := f.Seek(good, io.SeekStart); err != nil {
		f.Close()
		return fmt.Errorf("the journal of alerts sent, %s: %w", path, err)
	}
	m.journal = f
	return nil
}

// cutHeader reports whether b is a journal's header cut short, or zeros where it should be.
func cutHeader(b []byte) bool {
	if len(b) < len(journalMagic) && string(b) == journalMagic[:len(b)] {
		return true
	}
	n := min(len(b), len(journalMagic))
	return bytes.Count(b[:n], []byte{0}) == n
}

// replay applies the whole frames at the start of b and returns their length. Tickets
// taken before the restart become m.earlier until ForgetEarlier.
func (m *Sent) replay(b []byte) int64 {
	var n int64
	for {
		kind, ticket, es, size, ok := parseFrame(b)
		if !ok {
			return n
		}
		switch kind {
		case 'C':
			for _, e := range es {
				m.delta[e.h] = e.t
			}
			m.dirty = true
		case 'T':
			m.earlier[ticket] = es
		}
		b, n = b[size:], n+int64(size)
	}
}

// parseFrame reads the frame at the start of b: ok false if there is none, whole and sound.
func parseFrame(b []byte) (kind byte, ticket uint64, es []sentEntry, size int, ok bool) {
	if len(b) < frameHead+4 {
		return 0, 0, nil, 0, false
	}
	kind, ticket, count := b[0], binary.LittleEndian.Uint64(b[1:]), binary.LittleEndian.Uint32(b[9:])
	if (kind != 'C' && kind != 'T') || (kind == 'C') != (ticket == 0) || uint64(count) > uint64(len(b)-frameHead-4)/sentBytes {
		return 0, 0, nil, 0, false
	}
	size = frameHead + int(count)*sentBytes + 4
	if crc32.Checksum(b[:size-4], castagnoli) != binary.LittleEndian.Uint32(b[size-4:]) {
		return 0, 0, nil, 0, false
	}
	es = make([]sentEntry, count)
	for i := range es {
		o := b[frameHead+i*sentBytes:]
		es[i] = sentEntry{binary.LittleEndian.Uint64(o), int64(binary.LittleEndian.Uint64(o[8:]))}
	}
	return kind, ticket, es, size, true
}

func appendFrame(b []byte, kind byte, ticket uint64, es []sentEntry) []byte {
	start := len(b)
	b = append(b, kind)
	b = binary.LittleEndian.AppendUint64(b, ticket)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(es)))
	for _, e := range es {
		b = binary.LittleEndian.AppendUint64(b, e.h)
		b = binary.LittleEndian.AppendUint64(b, uint64(e.t))
	}
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b[start:], castagnoli))
}

// writeLocked appends one frame. A failed write stops the journal until the next Save
// starts it over: a frame after a cut one would never be replayed.
func (m *Sent) writeLocked(kind byte, ticket uint64, es []sentEntry) error {
	if m.journal == nil {
		return errors.New("the journal of alerts sent is not open")
	}
	if m.journalErr != nil {
		return m.journalErr
	}
	m.journaled = true
	if _, err := m.journal.Write(appendFrame(nil, kind, ticket, es)); err != nil {
		m.journalErr = fmt.Errorf("the journal of alerts sent, %s, cannot be written: %w", journalPath(m.path), err)
		return m.journalErr
	}
	return nil
}

func entries(vs []Version) []sentEntry {
	es := make([]sentEntry, len(vs))
	for i, v := range vs {
		es[i] = sentEntry{sentHash(v.ID), v.T.UnixNano()}
	}
	return es
}

// Confirm records versions as delivered, in memory and in the journal: call it only once
// their events are confirmed, before the checkpoint can move past them. An error (the
// journal cannot be written) means they are remembered until a restart only.
func (m *Sent) Confirm(vs []Version) error {
	if len(vs) == 0 {
		return nil
	}
	es := entries(vs)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.recordLocked(es)
	return m.writeLocked('C', 0, es)
}

func (m *Sent) recordLocked(es []sentEntry) {
	for _, e := range es {
		m.delta[e.h] = e.t
	}
	m.dirty = true
	if len(m.delta) > deltaMerge {
		m.mergeLocked()
	}
}

// Taken notes the versions in a batch the destination took under ticket (a key that names
// it across restarts) without confirming it yet: they are not delivered, but Prove(ticket)
// after a restart makes them so. Call it before the ticket can reach the checkpoint.
func (m *Sent) Taken(ticket string, vs []Version) error {
	if len(vs) == 0 {
		return nil
	}
	es, th := entries(vs), ticketHash(ticket)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.taken[th] = es
	return m.writeLocked('T', th, es)
}

// Settled forgets a ticket of this process whose batch has its final outcome (its versions
// are recorded by Confirm, or not delivered).
func (m *Sent) Settled(ticket string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.taken, ticketHash(ticket))
}

// Prove records as delivered the versions taken under ticket before a restart, now that the
// destination says that batch was confirmed. It reports how many it recorded.
func (m *Sent) Prove(ticket string) (int, error) {
	th := ticketHash(ticket)
	m.mu.Lock()
	defer m.mu.Unlock()
	es, ok := m.earlier[th]
	if !ok {
		return 0, nil
	}
	delete(m.earlier, th)
	m.recordLocked(es)
	return len(es), m.writeLocked('C', 0, es)
}

// ForgetEarlier drops the tickets taken before the restart that were not proved: the
// batches they name are read and sent again.
func (m *Sent) ForgetEarlier() {
	m.mu.Lock()
	defer m.mu.Unlock()
	clear(m.earlier)
}

// ticketHash names a ticket in the journal (the ticket itself may carry a load balancer's
// cookies, which have no business in another file). Never 0: 0 marks a 'C' frame.
func ticketHash(ticket string) uint64 { return sentHash(ticket) | 1 }

// restartJournalLocked starts the journal over once the memory's file holds everything:
// only the tickets still taken are carried. It closes the old file first (Windows cannot
// replace a file that is open).
func (m *Sent) restartJournalLocked() error {
	path := journalPath(m.path)
	if m.journal != nil {
		m.journal.Close()
		m.journal = nil
	}
	b := []byte(journalMagic)
	for th, es := range m.taken {
		b = appendFrame(b, 'T', th, es)
	}
	for th, es := range m.earlier {
		b = appendFrame(b, 'T', th, es)
	}
	err := writeAtomic(path, b)
	f, ferr := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0o600)
	if ferr != nil {
		m.journalErr = fmt.Errorf("the journal of alerts sent, %s, cannot be opened: %w", path, ferr)
		return m.journalErr
	}
	m.journal = f
	if err != nil {
		// The old journal is still in place, whole: keep appending to it.
		return err
	}
	m.journalErr, m.journaled = nil, false
	return nil
}

// Close closes the journal (Save first to keep what it holds in the memory's file).
func (m *Sent) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	if m.journal == nil {
		return nil
	}
	err := m.journal.Close()
	m.journal = nil
	return err
}

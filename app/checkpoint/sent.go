package checkpoint

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
)

// Sent is a memory of the item versions delivered, beyond the checkpoint's overlap: for each
// item id, the time of the newest version delivered. The incidents feed keeps one of the
// alerts nested in incidents, so that an incident update that leaves an alert unchanged does
// not send that alert again.
//
// The rule that keeps it from losing anything: a version is recorded only once its event is
// confirmed, and a caller sends every version the memory does not hold. Forgetting (the age
// horizon, the size cap, a crash before a save) can only cause a version to be sent again.
//
// It holds 16 bytes per item (a 64-bit hash of the id and the time in nanoseconds) in a sorted
// array, with a small map of what changed since the array was last rebuilt; on disk it is the
// array (the file SentPath names), written whole and atomically by Save.
type Sent struct {
	path    string
	horizon time.Duration // versions older than this (by their own time) are forgotten at Save
	limit   int           // most items kept; the oldest go first
	now     func() time.Time

	mu    sync.Mutex
	base  []sentEntry      // sorted by hash, one per hash
	delta map[uint64]int64 // changes since base was rebuilt
	dirty bool             // base and delta differ from the file

	// The journal (sentjournal.go) and the batches taken but not confirmed, by ticket hash:
	// this process's, and an earlier one's until ForgetEarlier.
	journal    *os.File
	journalErr error // a write failed: nothing more is appended until Save starts it over
	// Restarted names the journal when OpenSent found its start damaged (cut short or zeros,
	// as a power cut can leave a new file) and started it over: the caller warns.
	Restarted string
	closed    bool // Close was called: Save writes nothing more
	journaled bool // frames were appended since the journal was started over
	taken     map[uint64][]sentEntry
	earlier   map[uint64][]sentEntry
}

type sentEntry struct {
	h uint64
	t int64
}

const (
	sentMagic  = "defender_alerts sent v1\n"
	sentBytes  = 16
	deltaMerge = 1 << 16 // the map is folded into the array when it grows past this
)

// SentPath is where the Sent memory of the input whose checkpoint s is lives (its journal is
// the same name with ".journal" added).
func (s *Store) SentPath() string { return strings.TrimSuffix(s.path, ".json") + ".sent" }

// OpenSent loads the memory at path (an absent file is an empty memory), then replays its
// journal, which it keeps open: Close it. A file that cannot be read whole (cut short,
// altered) is an error that names it: the caller may remove it, which costs only alerts sent
// again.
func OpenSent(path string, horizon time.Duration, limit int, now func() time.Time) (*Sent, error) {
	if now == nil {
		now = time.Now
	}
	m := &Sent{path: path, horizon: horizon, limit: limit, now: now, delta: map[uint64]int64{},
		taken: map[uint64][]sentEntry{}, earlier: map[uint64][]sentEntry{}}
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("the memory of alerts sent, %s, cannot be read: %w", path, err)
	default:
		base, err := parseSent(b)
		if err != nil {
			return nil, fmt.Errorf("the memory of alerts sent, %s, cannot be read (%w); removing it costs only alerts sent again", path, err)
		}
		m.base = base
	}
	if err := m.openJournal(); err != nil {
		return nil, err
	}
	return m, nil
}

// parseSent reads a memory file: the magic line, then 16-byte entries in increasing hash
// order, then a CRC-32C of what precedes it.
func parseSent(b []byte) ([]sentEntry, error) {
	if !bytes.HasPrefix(b, []byte(sentMagic)) {
		return nil, errors.New("not a memory of alerts sent")
	}
	body := b[len(sentMagic):]
	if len(body) < 4 || (len(body)-4)%sentBytes != 0 {
		return nil, errors.New("cut short")
	}
	data, sum := body[:len(body)-4], binary.LittleEndian.Uint32(body[len(body)-4:])
	if crc32.Checksum(b[:len(b)-4], castagnoli) != sum {
		return nil, errors.New("checksum mismatch")
	}
	out := make([]sentEntry, len(data)/sentBytes)
	for i := range out {
		o := data[i*sentBytes:]
		out[i] = sentEntry{binary.LittleEndian.Uint64(o), int64(binary.LittleEndian.Uint64(o[8:]))}
		if i > 0 && out[i].h <= out[i-1].h {
			return nil, errors.New("entries out of order")
		}
	}
	return out, nil
}

// Has reports whether the version of id at t was recorded as delivered.
func (m *Sent) Has(id string, t time.Time) bool {
	h, ns := sentHash(id), t.UnixNano()
	m.mu.Lock()
	defer m.mu.Unlock()
	if v, ok := m.delta[h]; ok {
		return v == ns
	}
	if i, ok := m.find(h); ok {
		return m.base[i].t == ns
	}
	return false
}

func (m *Sent) find(h uint64) (int, bool) {
	return slices.BinarySearchFunc(m.base, h, func(e sentEntry, h uint64) int {
		switch {
		case e.h < h:
			return -1
		case e.h > h:
			return 1
		}
		return 0
	})
}

// Record notes the version of id at t as delivered, like Confirm.
func (m *Sent) Record(id string, t time.Time) error { return m.Confirm([]Version{{id, t}}) }

// Len is the number of items remembered.
func (m *Sent) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.mergeLocked()
	return len(m.base)
}

// mergeLocked folds the map into the array, then forgets what is past the horizon and, over
// the size limit, the oldest.
func (m *Sent) mergeLocked() {
	if len(m.delta) > 0 {
		add := make([]sentEntry, 0, len(m.delta))
		for h, t := range m.delta {
			add = append(add, sentEntry{h, t})
		}
		slices.SortFunc(add, func(a, b sentEntry) int { return cmpU64(a.h, b.h) })
		merged := make([]sentEntry, 0, len(m.base)+len(add))
		i, j := 0, 0
		for i < len(m.base) || j < len(add) {
			switch {
			case j == len(add) || (i < len(m.base) && m.base[i].h < add[j].h):
				merged = append(merged, m.base[i])
				i++
			case i == len(m.base) || add[j].h < m.base[i].h:
				merged = append(merged, add[j])
				j++
			default: // the same item: the newer record replaces the older
				merged = append(merged, add[j])
				i++
				j++
			}
		}
		m.base = merged
		clear(m.delta)
	}
	if m.horizon > 0 {
		oldest := m.now().Add(-m.horizon).UnixNano()
		m.base = slices.DeleteFunc(m.base, func(e sentEntry) bool { return e.t < oldest })
	}
	if m.limit > 0 && len(m.base) > m.limit {
		times := make([]int64, len(m.base))
		for i, e := range m.base {
			times[i] = e.t
		}
		slices.Sort(times)
		cut := times[len(times)-m.limit] // keep the newest limit (ties at the cut may keep a few fewer)
		m.base = slices.DeleteFunc(m.base, func(e sentEntry) bool { return e.t < cut })
		if len(m.base) > m.limit {
			m.base = m.base[:m.limit] // ties: drop by hash order, any will do
		}
	}
}

// Save writes the memory if it changed since the last save, atomically, readable only by
// the owner, then starts the journal over. It holds the memory meanwhile, so that nothing
// recorded between the two writes is lost with the old journal.
func (m *Sent) Save() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed || (!m.dirty && !m.journaled) { // closed: the files may be another process's now
		return nil
	}
	if m.dirty {
		m.mergeLocked()
		b := make([]byte, 0, len(sentMagic)+len(m.base)*sentBytes+4)
		b = append(b, sentMagic...)
		for _, e := range m.base {
			b = binary.LittleEndian.AppendUint64(b, e.h)
			b = binary.LittleEndian.AppendUint64(b, uint64(e.t))
		}
		b = binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
		if err := writeAtomic(m.path, b); err != nil {
			return &FixError{err}
		}
		m.dirty = false
	}
	if err := m.restartJournalLocked(); err != nil {
		return &FixError{err}
	}
	return nil
}

// sentHash is FNV-1a over the id, then mixed (MurmurHash3's finalizer). It must never change:
// memory files hold its values. Two ids sharing a hash (about one chance in 2^64 per pair)
// would make one version look sent when the other's time matches it exactly.
func sentHash(id string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(id); i++ {
		h ^= uint64(id[i])
		h *= 1099511628211
	}
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}

func cmpU64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

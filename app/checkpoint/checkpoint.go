// Package checkpoint keeps one input's place on disk: a small versioned JSON document, written
// atomically (temp file, fsync, rename, fsync the folder) with mode 0600 (and, between such
// saves, quick saves to side files without fsync: quick.go), and locked so that
// two processes never run the same input. A missing file means a first run; a corrupt or
// unknown file is an error that names the path and what to do, never a silent reset.
package checkpoint

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"ta-defender-alerts/app/statedir"
)

// formatVersion is the format this code writes and reads.
const formatVersion = 1

// Key names one alert version: its id and lastUpdateTime.
type Key struct {
	ID         string
	LastUpdate time.Time
}

// MarshalJSON writes a key as ["id","time"] to keep files small.
func (k Key) MarshalJSON() ([]byte, error) {
	return json.Marshal([2]string{k.ID, k.LastUpdate.UTC().Format(time.RFC3339Nano)})
}

// UnmarshalJSON reads ["id","time"].
func (k *Key) UnmarshalJSON(b []byte) error {
	var v [2]string
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	t, err := time.Parse(time.RFC3339Nano, v[1])
	if err != nil {
		return err
	}
	if v[0] == "" {
		return errors.New("empty alert id")
	}
	k.ID, k.LastUpdate = v[0], t.UTC()
	return nil
}

// Window is a window being read when the checkpoint was written.
type Window struct {
	From     time.Time       `json:"from"`
	To       time.Time       `json:"to"`
	Position json.RawMessage `json:"position,omitempty"` // the reader's, opaque here
}

// State is what the checkpoint holds.
type State struct {
	Version int `json:"version"`
	// Watermark: every alert version with lastUpdateTime before it has been delivered and
	// confirmed, except versions that become visible late (the overlap re-reads those).
	Watermark time.Time `json:"watermark"`
	// Delivered lists versions confirmed with lastUpdateTime inside the overlap, so that
	// re-reading the overlap sends none of them twice.
	Delivered []Key `json:"delivered"`
	// Window is set while a window is read part-way.
	Window *Window `json:"window,omitempty"`
	// Held is set while the checkpoint stays before a run of alerts Splunk refused, until
	// what is sent after them shows whether the refusal is systematic.
	Held *Held `json:"held,omitempty"`
	// Pending is the run of batches, right after the window's Position, that the destination
	// took (and may have confirmed) when the checkpoint was written: a restart asks the
	// destination about them before sending them again. Only set with Window, never with Held.
	Pending []Pending `json:"pending,omitempty"`
	Updated time.Time `json:"updated"`
}

// Pending is one batch after the checkpoint's position that the destination took, in the
// order of the records: the first starts right after Window.Position, each next one right
// after the one before.
type Pending struct {
	N         int               `json:"n"`                   // records in the batch
	Position  json.RawMessage   `json:"position,omitempty"`  // the source position of its last record
	Keys      []Key             `json:"keys,omitempty"`      // its records' keys inside the overlap (go to Delivered)
	Tickets   []json.RawMessage `json:"tickets,omitempty"`   // the sink's, opaque: any one confirmed confirms the batch
	Confirmed bool              `json:"confirmed,omitempty"` // confirmed whole, nothing refused
	// Marshaled says Position and Tickets come from json.Marshal (valid, compact, escaped):
	// Save writes them as they are instead of checking them again at every save.
	Marshaled bool `json:"-"`
	// Encoded, when Marshaled and not nil, is the batch's JSON as AppendJSON writes it,
	// which Save copies instead of encoding the batch again: a pump keeps it while nothing
	// in the batch changes (a batch is saved with every checkpoint until it is confirmed).
	Encoded []byte `json:"-"`
}

// Held counts a run of refused alerts across runs, so that a refusal that goes on through
// several polls is seen as one run. The alerts themselves are read and sent again on every
// run, since the checkpoint stays before them.
type Held struct {
	// Batches counts the batches Splunk refused whole in the run so far, each counted once
	// although the run is sent again every time.
	Batches int `json:"batches"`
	// Records counts the refused alerts in the run as the last run ended.
	Records int `json:"records"`
	// Through is the end of the last window read: alert versions updated before it were
	// counted already.
	Through time.Time `json:"through"`
	// Quiet counts the runs in a row that ended with the run held and not grown.
	Quiet int `json:"quiet"`
}

// Store is one input's checkpoint file, locked for this process.
type Store struct {
	path  string
	lock  *lockFile
	base  string // digest of the checkpoint's bytes on disk ("" before it exists): see quick.go
	quick quickSlots
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// FileName turns an input name into a safe file name.
func FileName(input string) string {
	if nameRE.MatchString(input) {
		return input + ".json"
	}
	var b []byte
	for _, r := range []byte(input) {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			b = append(b, r)
		} else {
			b = append(b, '_')
		}
	}
	if len(b) > 100 {
		b = b[:100]
	}
	return fmt.Sprintf("%s-%x.json", b, fnv(input))
}

func fnv(s string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h ^= uint32(s[i])
		h *= 16777619
	}
	return h
}

// errLocked means another process runs this input.
var errLocked = errors.New("checkpoint is locked by another process")

// Open locks the checkpoint of input in dir, creating dir (0700) if needed. It fails, naming
// the holder, if another process has it (errLocked), and refuses a folder that others can
// write to (statedir.Prepare).
func Open(dir, input string) (*Store, error) {
	if err := statedir.Prepare(dir); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, FileName(input))
	lk, err := acquire(path + ".lock")
	if err != nil {
		return nil, err
	}
	return &Store{path: path, lock: lk}, nil
}

// Path is the checkpoint file.
func (s *Store) Path() string { return s.path }

// Close releases the lock.
func (s *Store) Close() error {
	s.closeQuick()
	return s.lock.release()
}

// Load reads the checkpoint, or the newer quick save that follows it (quick.go). A missing
// file gives (nil, nil): a first run.
func (s *Store) Load() (*State, error) {
	b, err := os.ReadFile(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, &FixError{fmt.Errorf("checkpoint %s cannot be read: %w", s.path, err)}
	}
	st, err := Parse(b)
	if err != nil {
		return nil, &FixError{fmt.Errorf("checkpoint %s %w", s.path, err)}
	}
	s.base = digest(b)
	if q := s.loadQuick(); q != nil {
		return q, nil
	}
	return st, nil
}

// Peek reads the checkpoint at path as Load does, with the newest quick save that follows it,
// without taking its lock: for tools that watch a running collector. A missing file gives
// (nil, nil).
func Peek(path string) (*State, error) {
	s := &Store{path: path}
	return s.Load()
}

// FixError is a checkpoint problem that only a person can solve (a file that cannot be read
// or is corrupt, a folder that cannot be written): a collector stops on it and says so,
// rather than trying again and again.
type FixError struct{ Err error }

func (e *FixError) Error() string { return e.Err.Error() }
func (e *FixError) Unwrap() error { return e.Err }

// Retryable is false: trying again does not help until someone fixes the file or the folder
// (the collector's stop rule, see retry.Classified).
func (e *FixError) Retryable() bool { return false }

// Parse reads a checkpoint document. Its errors start with what is wrong and end with what
// to do, for Load to prefix with the path.
func Parse(b []byte) (*State, error) {
	var head struct {
		Version *int `json:"version"`
	}
	if err := json.Unmarshal(b, &head); err != nil || head.Version == nil {
		return nil, errors.New(corrupt("is not a checkpoint document"))
	}
	if *head.Version != formatVersion {
		return nil, fmt.Errorf("has format version %d, which this defender_alerts (format %d) does not know: "+
			"run the defender_alerts version that wrote it, or move the file away to start over (that re-sends the alerts of DEFENDER_START)",
			*head.Version, formatVersion)
	}
	var st State
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&st); err != nil {
		return nil, errors.New(corrupt(err.Error()))
	}
	if dec.More() {
		return nil, errors.New(corrupt("has data after the document"))
	}
	if st.Watermark.IsZero() {
		return nil, errors.New(corrupt("has no watermark"))
	}
	if w := st.Window; w != nil && (w.To.Before(w.From) || w.From.IsZero()) {
		return nil, errors.New(corrupt("has a window that ends before it starts"))
	}
	if h := st.Held; h != nil && (h.Batches < 0 || h.Records < 0 || h.Quiet < 0) {
		return nil, errors.New(corrupt("has a negative count of refused alerts"))
	}
	for _, e := range st.Pending {
		if e.N <= 0 {
			return nil, errors.New(corrupt("has a pending batch without records"))
		}
	}
	return &st, nil
}

func corrupt(what string) string {
	return "is corrupt (" + what + "): restore it from a backup, or move it away to start over from DEFENDER_START ago (that re-sends those alerts); the file was left as it is"
}

// Save writes st atomically: a temp file in the same folder, fsync, rename over the old file,
// fsync the folder. A crash leaves either the old or the new document, never a mix.
func (s *Store) Save(st *State) error {
	st.Version = formatVersion
	b := append(st.appendJSON(make([]byte, 0, 256+64*len(st.Delivered))), '\n')
	if err := writeAtomic(s.path, b); err != nil {
		return &FixError{err}
	}
	s.base = digest(b) // the quick saves before it are of another checkpoint now
	s.quick.chained = false
	return nil
}

// writeAtomic is a seam for tests that inject write failures.
var writeAtomic = func(path string, b []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("checkpoint %s cannot be written: %w", path, err)
	}
	tmp := f.Name()
	fail := func(err error) error {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("checkpoint %s cannot be written: %w", path, err)
	}
	if err := f.Chmod(0o600); err != nil {
		return fail(err)
	}
	if _, err := f.Write(b); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("checkpoint %s cannot be written: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("checkpoint %s cannot be written: %w", path, err)
	}
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("checkpoint %s: folder sync: %w", path, err)
	}
	return nil
}

package checkpoint

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func sample() *State {
	t0 := time.Date(2026, 3, 1, 8, 0, 0, 123456700, time.UTC)
	return &State{
		Watermark: t0,
		Delivered: []Key{{"da637000000000000001_1", t0.Add(-time.Minute)}, {"da637000000000000002_2", t0.Add(-2 * time.Second)}},
		Window:    &Window{From: t0.Add(-10 * time.Minute), To: t0.Add(time.Hour), Position: json.RawMessage(`{"page":{"upper":"2026-03-01T08:30:00Z"}}`)},
	}
}

func TestFirstRunSaveLoad(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	s, err := Open(dir, "tenant1")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	st, err := s.Load()
	if err != nil || st != nil {
		t.Fatalf("first run: %v %v, want nil, nil", st, err)
	}
	want := sample()
	if err := s.Save(want); err != nil {
		t.Fatal(err)
	}
	got, err := s.Load()
	if err != nil {
		t.Fatal(err)
	}
	if !got.Watermark.Equal(want.Watermark) || len(got.Delivered) != 2 || got.Delivered[1] != want.Delivered[1] ||
		!got.Window.To.Equal(want.Window.To) || string(got.Window.Position) != string(want.Window.Position) {
		t.Errorf("round trip changed the state:\n got %+v\nwant %+v", got, want)
	}
	fi, err := os.Stat(s.Path())
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Errorf("temp file left behind: %s", e.Name())
		}
	}
}

func TestBadFilesAreLeftAlone(t *testing.T) {
	tests := []struct {
		name, give, want string
	}{
		{"garbage", "{not json", "is corrupt"},
		{"empty", "", "is corrupt"},
		{"truncated", `{"version":1,"watermark":"2026-03-01T08:00:00Z","deliv`, "is corrupt"},
		{"future version", `{"version":2,"watermark":"2026-03-01T08:00:00Z"}`, "format version 2"},
		{"no watermark", `{"version":1,"delivered":[]}`, "no watermark"},
		{"bad key", `{"version":1,"watermark":"2026-03-01T08:00:00Z","delivered":[["x","yesterday"]]}`, "is corrupt"},
		{"unknown field", `{"version":1,"watermark":"2026-03-01T08:00:00Z","cursor":5}`, "is corrupt"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			s, err := Open(dir, "in")
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if err := os.WriteFile(s.Path(), []byte(tt.give), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err = s.Load()
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), s.Path()) {
				t.Fatalf("err = %v, want %q naming the path", err, tt.want)
			}
			if !strings.Contains(err.Error(), "move") {
				t.Errorf("the error does not say what to do: %v", err)
			}
			after, _ := os.ReadFile(s.Path())
			if string(after) != tt.give {
				t.Error("the bad file was changed")
			}
		})
	}
}

func TestLockNamesTheHolder(t *testing.T) {
	dir := t.TempDir()
	a, err := Open(dir, "tenant1")
	if err != nil {
		t.Fatal(err)
	}
	_, err = Open(dir, "tenant1")
	if !errors.Is(err, errLocked) || !strings.Contains(err.Error(), fmt.Sprintf("pid %d", os.Getpid())) {
		t.Fatalf("second open: %v, want errLocked naming pid %d", err, os.Getpid())
	}
	// Another input in the same folder (Splunk's shared checkpoint_dir) is not blocked.
	b, err := Open(dir, "tenant2")
	if err != nil {
		t.Fatalf("another input: %v", err)
	}
	b.Close()
	a.Close()
	c, err := Open(dir, "tenant1")
	if err != nil {
		t.Fatalf("after close: %v", err)
	}
	c.Close()
}

func TestWriteFailureKeepsOldCheckpoint(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, "in")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Save(sample()); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(s.Path())
	orig := writeAtomic
	defer func() { writeAtomic = orig }()
	writeAtomic = func(path string, b []byte) error {
		return fmt.Errorf("checkpoint %s cannot be written: %w", path, errors.New("no space left on device"))
	}
	next := sample()
	next.Watermark = next.Watermark.Add(time.Hour)
	if err := s.Save(next); err == nil || !strings.Contains(err.Error(), "no space left") {
		t.Fatalf("err = %v", err)
	}
	after, _ := os.ReadFile(s.Path())
	if string(after) != string(before) {
		t.Error("a failed save changed the checkpoint")
	}
}

func TestFolderThatCannotExist(t *testing.T) {
	file := filepath.Join(t.TempDir(), "plain-file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Open(filepath.Join(file, "state"), "in")
	if err == nil || !strings.Contains(err.Error(), "cannot be created") {
		t.Fatalf("err = %v", err)
	}
}

func TestFileName(t *testing.T) {
	tests := []struct{ give, want string }{
		{"tenant1", "tenant1.json"},
		{"contoso.onmicrosoft.com", "contoso.onmicrosoft.com.json"},
	}
	for _, tt := range tests {
		if got := FileName(tt.give); got != tt.want {
			t.Errorf("FileName(%q) = %q", tt.give, got)
		}
	}
	for _, bad := range []string{"../../etc/passwd", "a/b", "", "tenant 1", strings.Repeat("x", 300)} {
		got := FileName(bad)
		if strings.ContainsAny(got, `/\ `) || strings.HasPrefix(got, ".") || len(got) > 120 || FileName(bad+"z") == got {
			t.Errorf("FileName(%q) = %q is not a safe, distinct name", bad, got)
		}
	}
}

func FuzzParse(f *testing.F) {
	b, _ := json.Marshal(sample())
	f.Add(b)
	f.Add([]byte(`{"version":1,"watermark":"2026-03-01T08:00:00Z","delivered":[]}`))
	f.Add([]byte(`{"version":9}`))
	b, _ = json.Marshal(withPending())
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := Parse(b)
		if err != nil {
			return
		}
		// What parses writes back and parses to the same state.
		st.Version = formatVersion
		again, err := json.Marshal(st)
		if err != nil {
			t.Fatal(err)
		}
		st2, err := Parse(again)
		if err != nil || !st2.Watermark.Equal(st.Watermark) || len(st2.Delivered) != len(st.Delivered) || len(st2.Pending) != len(st.Pending) {
			t.Fatalf("round trip failed: %v", err)
		}
		// The hand-written encoder writes pending batches (the sink's JSON in them
		// included) exactly as encoding/json does.
		for _, e := range st.Pending {
			want, err := json.Marshal(e)
			if err != nil {
				t.Fatal(err)
			}
			if got := e.AppendJSON(nil); string(got) != string(want) {
				t.Fatalf("pending batch encoded as\n%s\nwant\n%s", got, want)
			}
		}
	})
}

// The hand-written encoder writes exactly what encoding/json would.
func TestEncoderMatchesEncodingJSON(t *testing.T) {
	held := sample()
	held.Held = &Held{Batches: 2, Records: 60, Through: time.Date(2026, 3, 1, 9, 0, 0, 100, time.UTC), Quiet: 1}
	for _, st := range []*State{sample(), held, withPending(), {Version: 1, Watermark: time.Now()}, {Version: 1, Watermark: time.Unix(0, 1).UTC(),
		Delivered: []Key{{`odd "id" \ <&>`, time.Date(2026, 1, 2, 3, 4, 5, 600, time.UTC)}, {"é", time.Unix(5, 0).UTC()}}, Updated: time.Now().UTC()}} {
		st.Version = formatVersion
		want, err := json.Marshal(st)
		if err != nil {
			t.Fatal(err)
		}
		if got := st.appendJSON(nil); string(got) != string(want) {
			t.Errorf("encoder:\n got %s\nwant %s", got, want)
		}
	}
}

func BenchmarkSave1000Keys(b *testing.B) {
	st := sample()
	for i := 0; i < 1000; i++ {
		st.Delivered = append(st.Delivered, Key{fmt.Sprintf("da637000000000%06d_%d", i, i), time.Now().UTC()})
	}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		_ = st.appendJSON(nil)
	}
}

// A held run's counts survive a save and load; negative counts are refused as corrupt.
func TestHeldRoundTrip(t *testing.T) {
	s, err := Open(t.TempDir(), "tenant1")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	want := sample()
	want.Held = &Held{Batches: 2, Records: 60, Through: time.Date(2026, 3, 1, 9, 0, 0, 100, time.UTC), Quiet: 2}
	if err := s.Save(want); err != nil {
		t.Fatal(err)
	}
	got, err := s.Load()
	if err != nil {
		t.Fatal(err)
	}
	if h, w := got.Held, want.Held; h == nil || h.Batches != w.Batches || h.Records != w.Records || h.Quiet != w.Quiet || !h.Through.Equal(w.Through) {
		t.Errorf("held %+v, want %+v", got.Held, want.Held)
	}
	if _, err := Parse([]byte(`{"version":1,"watermark":"2026-03-01T08:00:00Z","delivered":[],"held":{"batches":-1,"records":0,"through":"2026-03-01T08:00:00Z","quiet":0}}`)); err == nil || !strings.Contains(err.Error(), "corrupt") {
		t.Errorf("negative count: %v, want corrupt", err)
	}
}

// withPending is sample() with batches after its position awaiting confirmation: one with two
// tickets (sent twice), one confirmed.
func withPending() *State {
	st := sample()
	st.Pending = []Pending{
		{N: 3, Position: json.RawMessage(`{"page":{"upper":"2026-03-01T08:31:00Z"}}`), Keys: []Key{{"da637000000000000003_1", st.Watermark.Add(-time.Second)}},
			Tickets: []json.RawMessage{json.RawMessage(`{"url":"https://hec:8088","channel":"c1","ack_id":7}`), json.RawMessage(`{ "url": "https://hec:8088", "channel": "c2", "ack_id": 0, "cookies": ["<lb>=a&b"] }`)}},
		{N: 1, Position: json.RawMessage(`{"page":{"upper":"2026-03-01T08:32:00Z"}}`), Confirmed: true},
	}
	return st
}

// Pending batches survive a save and load as they were; a file written before they existed
// (no "pending") still loads; a pending batch without records is refused as corrupt.
func TestPendingRoundTrip(t *testing.T) {
	s, err := Open(t.TempDir(), "tenant1")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	want := withPending()
	if err := s.Save(want); err != nil {
		t.Fatal(err)
	}
	got, err := s.Load()
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Pending) != 2 {
		t.Fatalf("pending %+v, want 2 batches", got.Pending)
	}
	g, w := got.Pending[0], want.Pending[0]
	if g.N != 3 || string(g.Position) != string(w.Position) || len(g.Keys) != 1 || g.Keys[0] != w.Keys[0] || g.Confirmed ||
		len(g.Tickets) != 2 || string(g.Tickets[0]) != string(w.Tickets[0]) {
		t.Errorf("first pending batch %+v, want %+v", g, w)
	}
	var second struct {
		Channel string   `json:"channel"`
		Cookies []string `json:"cookies"`
	}
	if err := json.Unmarshal(g.Tickets[1], &second); err != nil || second.Channel != "c2" || len(second.Cookies) != 1 || second.Cookies[0] != "<lb>=a&b" {
		t.Errorf("second ticket %s (%v): not what was saved", g.Tickets[1], err)
	}
	if g := got.Pending[1]; g.N != 1 || !g.Confirmed || len(g.Tickets) != 0 {
		t.Errorf("second pending batch %+v, want 1 record confirmed", g)
	}

	old := `{"version":1,"watermark":"2026-03-01T08:00:00Z","delivered":[],"window":{"from":"2026-03-01T07:50:00Z","to":"2026-03-01T09:00:00Z","position":{"page":1}},"updated":"2026-03-01T08:00:01Z"}`
	if st, err := Parse([]byte(old)); err != nil || st.Pending != nil || st.Window == nil {
		t.Errorf("a checkpoint without pending batches: %+v, %v", st, err)
	}
	bad := `{"version":1,"watermark":"2026-03-01T08:00:00Z","delivered":[],"pending":[{"n":0,"tickets":[{}]}]}`
	if _, err := Parse([]byte(bad)); err == nil || !strings.Contains(err.Error(), "pending batch without records") {
		t.Errorf("a pending batch of 0 records: %v, want corrupt", err)
	}
}

// The hand-written time format is AppendFormat's RFC3339Nano, byte for byte, for any time.
func FuzzRFC3339Nano(f *testing.F) {
	for _, s := range []int64{0, 1, -1, 1764547200, 253402300799, 253402300800, -62135596800, -62135596801} {
		f.Add(s, int64(0), true)
		f.Add(s, int64(123456700), true)
		f.Add(s, int64(999999999), false)
	}
	est := time.FixedZone("EST", -5*3600)
	f.Fuzz(func(t *testing.T, sec, nsec int64, utc bool) {
		tm := time.Unix(sec, nsec).UTC()
		if !utc {
			tm = tm.In(est)
		}
		want := tm.AppendFormat(nil, time.RFC3339Nano)
		if got := appendRFC3339Nano(nil, tm); string(got) != string(want) {
			t.Fatalf("%s: %s, want %s", tm, got, want)
		}
	})
}

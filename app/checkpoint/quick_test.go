package checkpoint

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// reopen closes s and opens the input again, as a new process does.
func reopen(t *testing.T, s *Store, dir string) *Store {
	t.Helper()
	s.Close()
	s2, err := Open(dir, "tenant1")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s2.Close() })
	return s2
}

func at(st *State, d time.Duration) *State {
	c := *st
	c.Watermark = st.Watermark.Add(d)
	return &c
}

func TestQuickSaves(t *testing.T) {
	base := sample()
	cases := []struct {
		name string
		// after a durable save of base and quick saves of base+1s, base+2s, …, base+n s
		quick int
		then  func(t *testing.T, s *Store, dir string)
		want  time.Duration // Load's watermark, after base's; -1: no checkpoint
	}{
		{name: "the newest quick save is loaded", quick: 3, want: 3 * time.Second},
		{name: "one quick save", quick: 1, want: time.Second},
		{name: "a durable save after them wins", quick: 3, want: 10 * time.Second, then: func(t *testing.T, s *Store, _ string) {
			if err := s.Save(at(base, 10*time.Second)); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "quick saves after a durable one follow it", quick: 2, want: 12 * time.Second, then: func(t *testing.T, s *Store, _ string) {
			if err := s.Save(at(base, 10*time.Second)); err != nil {
				t.Fatal(err)
			}
			if err := s.SaveQuick(at(base, 11*time.Second)); err != nil {
				t.Fatal(err)
			}
			if err := s.SaveQuick(at(base, 12*time.Second)); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "a torn newest quick save falls back to the one before", quick: 3, want: 2 * time.Second, then: func(t *testing.T, s *Store, _ string) {
			// the third went to slot a (b, a, b, …: the first goes to b)
			p := s.QuickPaths()[s.quick.last]
			b, _ := os.ReadFile(p)
			if err := os.WriteFile(p, b[:len(b)-40], 0o600); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "a killed write in place leaves the tail of the older save", quick: 3, want: 2 * time.Second, then: func(t *testing.T, s *Store, _ string) {
			p := s.QuickPaths()[s.quick.last]
			b, _ := os.ReadFile(p)
			b[len(b)/2] ^= 1 // as if only part of the new bytes reached the file
			if err := os.WriteFile(p, b, 0o600); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "both torn: the checkpoint itself", quick: 2, want: 0, then: func(t *testing.T, s *Store, _ string) {
			for _, p := range s.QuickPaths() {
				if err := os.WriteFile(p, []byte("defender_alerts quick checkpoint after"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
		}},
		{name: "checkpoint moved away: a first run, whatever quick files remain", quick: 2, want: -1, then: func(t *testing.T, s *Store, _ string) {
			if err := os.Rename(s.Path(), s.Path()+".moved"); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "checkpoint restored from a backup: quick saves of the other one are not used", quick: 2, want: 20 * time.Second, then: func(t *testing.T, s *Store, dir string) {
			other, err := Open(filepath.Join(dir, "elsewhere"), "tenant1")
			if err != nil {
				t.Fatal(err)
			}
			if err := other.Save(at(base, 20*time.Second)); err != nil {
				t.Fatal(err)
			}
			other.Close()
			b, _ := os.ReadFile(other.Path())
			if err := os.WriteFile(s.Path(), b, 0o600); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "state")
			s, err := Open(dir, "tenant1")
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Save(base); err != nil {
				t.Fatal(err)
			}
			for i := 1; i <= tc.quick; i++ {
				if err := s.SaveQuick(at(base, time.Duration(i)*time.Second)); err != nil {
					t.Fatal(err)
				}
			}
			if tc.then != nil {
				tc.then(t, s, dir)
			}
			s = reopen(t, s, dir)
			got, err := s.Load()
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case tc.want < 0 && got != nil:
				t.Fatalf("loaded watermark %v, want no checkpoint", got.Watermark)
			case tc.want < 0:
			case got == nil:
				t.Fatal("no checkpoint loaded")
			case !got.Watermark.Equal(base.Watermark.Add(tc.want)):
				t.Fatalf("loaded watermark +%v, want +%v", got.Watermark.Sub(base.Watermark), tc.want)
			}
			for _, p := range s.QuickPaths() {
				if fi, err := os.Stat(p); err == nil && fi.Mode().Perm() != 0o600 {
					t.Errorf("%s has mode %v, want 0600", p, fi.Mode().Perm())
				}
			}
		})
	}
}

// After a load that took a quick save, the next quick save goes to the other file: the one
// loaded stays whole if that write is cut short.
func TestQuickSaveAfterLoadKeepsTheLoadedOne(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	s, err := Open(dir, "tenant1")
	if err != nil {
		t.Fatal(err)
	}
	base := sample()
	if err := s.Save(base); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 3; i++ {
		if err := s.SaveQuick(at(base, time.Duration(i)*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	s = reopen(t, s, dir)
	if _, err := s.Load(); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveQuick(at(base, 4*time.Second)); err != nil {
		t.Fatal(err)
	}
	p := s.QuickPaths()[s.quick.last]
	if err := os.WriteFile(p, []byte("torn"), 0o600); err != nil {
		t.Fatal(err)
	}
	s = reopen(t, s, dir)
	got, err := s.Load()
	if err != nil || got == nil || !got.Watermark.Equal(base.Watermark.Add(3*time.Second)) {
		t.Fatalf("loaded %v %v, want the quick save of +3s", got, err)
	}
}

// SaveQuick before any durable save is a durable save (nothing to follow yet).
func TestFirstQuickSaveIsDurable(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	s, err := Open(dir, "tenant1")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.SaveQuick(sample()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(s.Path()); err != nil {
		t.Fatalf("no checkpoint file after the first quick save: %v", err)
	}
}

// A quick file is read at every start: whatever bytes it holds, Load never panics, and it
// returns either the checkpoint itself or a state that parses.
func FuzzLoadQuick(f *testing.F) {
	dir := filepath.Join(f.TempDir(), "state")
	s, err := Open(dir, "tenant1")
	if err != nil {
		f.Fatal(err)
	}
	base := sample()
	if err := s.Save(base); err != nil {
		f.Fatal(err)
	}
	if err := s.SaveQuick(at(base, time.Second)); err != nil {
		f.Fatal(err)
	}
	good, _ := os.ReadFile(s.QuickPaths()[s.quick.last])
	c := newChainSim(1)
	for range 8 { // a whole save and deltas after it
		if err := s.SaveQuick(c.step()); err != nil {
			f.Fatal(err)
		}
	}
	chain, _ := os.ReadFile(s.QuickPaths()[s.quick.last])
	s.Close()
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add(chain)
	f.Add(chain[:len(chain)-9])
	f.Add([]byte("defender_alerts quick checkpoint after x #1 len -5 crc 00000000\n{}"))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := Open(dir, "tenant1")
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		paths := s.QuickPaths()
		if err := os.WriteFile(paths[0], b, 0o600); err != nil {
			t.Fatal(err)
		}
		_ = os.Remove(paths[1])
		st, err := s.Load()
		if err != nil || st == nil {
			t.Fatalf("load: %v %v, want the checkpoint or a quick save", st, err)
		}
		if _, err := Parse(st.appendJSON(nil)); err != nil {
			t.Fatalf("a loaded quick save does not parse back: %v", err)
		}
	})
}

// A pending batch's Encoded is what a save writes for it when the batch is Marshaled (the
// pump's cache), and is ignored otherwise.
func TestPendingEncodedIsWrittenAsItIs(t *testing.T) {
	st := withPending()
	cached := Pending{N: 9, Position: json.RawMessage(`{"page":9}`), Confirmed: true}
	enc := cached.AppendJSON(nil)
	st.Pending[1].Marshaled, st.Pending[1].Encoded = true, enc
	got := st.appendJSON(nil)
	if !bytes.Contains(got, enc) || bytes.Contains(got, []byte(`08:32:00Z`)) {
		t.Fatalf("a Marshaled batch with Encoded not written from it:\n%s", got)
	}
	st.Pending[1].Marshaled = false
	if got := st.appendJSON(nil); bytes.Contains(got, enc) || !bytes.Contains(got, []byte(`08:32:00Z`)) {
		t.Fatalf("Encoded used for a batch not Marshaled:\n%s", got)
	}
}

// Quick saves that shrink: a smaller save after a larger one loads as itself, from this
// process and the next, and a file stays within four times the largest whole save in it plus
// 64 KiB (deltas are appended to it until then).
func TestQuickSavesThatShrink(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, "tenant1")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	base := sample()
	if err := s.Save(base); err != nil {
		t.Fatal(err)
	}
	big := at(base, time.Second)
	for i := range 2000 {
		big.Delivered = append(big.Delivered, Key{fmt.Sprintf("da6370000000000%05d_1", i), big.Watermark})
	}
	small := at(base, 3*time.Second)
	largest := 0
	for i, st := range []*State{big, at(big, time.Second), small, at(base, 4*time.Second)} {
		largest = max(largest, len(st.appendJSON(nil)))
		if err := s.SaveQuick(st); err != nil {
			t.Fatal(err)
		}
		if i == 2 {
			s = reopen(t, s, dir)
			got, err := s.Load()
			if err != nil || !got.Watermark.Equal(small.Watermark) || len(got.Delivered) != len(small.Delivered) {
				t.Fatalf("after a small quick save over a large one: %+v, %v", got, err)
			}
		}
	}
	got, err := reopen(t, s, dir).Load()
	if err != nil || !got.Watermark.Equal(base.Watermark.Add(4*time.Second)) {
		t.Fatalf("newest quick save not loaded: %+v, %v", got, err)
	}
	for _, p := range s.QuickPaths() {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() > 4*int64(largest)+64<<10+200 {
			t.Errorf("%s is %d bytes after saves of at most %d", filepath.Base(p), fi.Size(), largest)
		}
	}
}

// A whole quick save cuts its file after it; and bytes an older chain left after it (a
// process killed between the write and the cut) are never read as its deltas.
func TestQuickSaveOverLeftoverBytes(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, "tenant1")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	c := newChainSim(5)
	if err := s.Save(&c.st); err != nil {
		t.Fatal(err)
	}
	for range 30 {
		if err := s.SaveQuick(c.step()); err != nil {
			t.Fatal(err)
		}
	}
	slot := s.quick.last
	old, err := os.ReadFile(s.QuickPaths()[slot])
	if err != nil || !bytes.Contains(old, []byte(deltaMagic)) {
		t.Fatalf("no deltas after 30 quick saves (%v): the test does not exercise what it is meant to", err)
	}
	// Two whole saves (a durable save in between ends each chain): the second is in slot again.
	var last *State
	for range 2 {
		st := c.step()
		if err := s.Save(st); err != nil {
			t.Fatal(err)
		}
		last = c.step()
		if err := s.SaveQuick(last); err != nil {
			t.Fatal(err)
		}
	}
	if s.quick.last != slot {
		t.Fatalf("the second whole save went to slot %d, want %d", s.quick.last, slot)
	}
	now, _ := os.ReadFile(s.QuickPaths()[slot])
	if bytes.Contains(now, []byte(deltaMagic)) || int64(len(now)) != s.quick.full {
		t.Fatalf("a whole save of %d bytes left a file of %d with deltas: not cut", s.quick.full, len(now))
	}
	// As if killed before the cut: the old chain's deltas right after the new save.
	stale := old[bytes.Index(old, []byte(deltaMagic)):]
	if err := os.WriteFile(s.QuickPaths()[slot], append(now, stale...), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := Peek(s.Path())
	if err != nil {
		t.Fatal(err)
	}
	if g, w := encoded(t, got), encoded(t, last); g != w {
		t.Fatalf("with an older chain's bytes after the newest save: loaded\n%s\nwant\n%s", g, w)
	}
}

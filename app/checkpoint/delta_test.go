package checkpoint

import (
	"bytes"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Every quick save, delta or whole, loads back as exactly the state saved, in this process's
// files as a restart reads them; and deltas make the bytes written a small part of whole saves.
func TestQuickDeltasRoundTrip(t *testing.T) {
	for seed := range uint64(4) {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) {
			dir := t.TempDir()
			s, err := Open(dir, "tenant1")
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			c := newChainSim(seed)
			c.reuse = seed%2 == 0
			if err := s.Save(&c.st); err != nil {
				t.Fatal(err)
			}
			written, whole, fulls := 0, 0, 0
			for i := range 600 {
				st := c.step()
				before := s.quick.seq
				wasEnd, wasLast := s.quick.end, s.quick.last
				if err := s.SaveQuick(st); err != nil {
					t.Fatal(err)
				}
				if s.quick.seq != before+1 {
					t.Fatalf("save %d: sequence %d after %d", i, s.quick.seq, before)
				}
				if s.quick.last != wasLast || s.quick.end <= wasEnd {
					fulls++
					written += int(s.quick.full)
				} else {
					written += int(s.quick.end - wasEnd)
				}
				whole += len(st.appendJSON(nil))
				if i%7 == 0 || i > 590 {
					got, err := Peek(s.Path())
					if err != nil {
						t.Fatal(err)
					}
					if g, w := encoded(t, got), encoded(t, st); g != w {
						t.Fatalf("save %d (%d whole so far) loads as\n%s\nwant\n%s", i, fulls, g, w)
					}
				}
				if i%100 == 99 { // a durable save now and then, as the pump's saver makes
					if err := s.Save(st); err != nil {
						t.Fatal(err)
					}
				}
			}
			t.Logf("600 quick saves: %d bytes written (%d whole saves), %d bytes had every save been whole", written, fulls, whole)
			if fulls < 6 || written*3 > whole {
				t.Fatalf("deltas not used: %d bytes written in %d whole saves, %d whole", written, fulls, whole)
			}
		})
	}
}

// A delta cut short at any byte (a power loss while it was written) leaves the save before it,
// whole; bytes after a cut, or left by an older chain, are never read as a delta.
func TestQuickDeltaCutShort(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, "tenant1")
	if err != nil {
		t.Fatal(err)
	}
	c := newChainSim(9)
	if err := s.Save(&c.st); err != nil {
		t.Fatal(err)
	}
	var states []*State
	for range 12 {
		st := c.step()
		if err := s.SaveQuick(st); err != nil {
			t.Fatal(err)
		}
		states = append(states, st)
	}
	path := s.QuickPaths()[s.quick.last]
	end := s.quick.end
	s.Close()
	b, err := os.ReadFile(path)
	if err != nil || int64(len(b)) != end {
		t.Fatalf("file %d bytes, save ends at %d: %v", len(b), end, err)
	}
	lastLen := len(b) - bytes.LastIndex(b[:len(b)-1], []byte("\n"+deltaMagic)) - 1
	if lastLen <= 0 || lastLen >= len(b) {
		t.Fatal("the last save is not a delta: the test does not exercise what it is meant to")
	}
	want, prev := encoded(t, states[len(states)-1]), encoded(t, states[len(states)-2])
	for cut := 0; cut <= lastLen; cut++ {
		torn := append([]byte(nil), b[:len(b)-cut]...)
		if cut > 0 && cut < lastLen {
			torn = append(torn, bytes.Repeat([]byte{0}, cut/2)...) // a torn page
		}
		if err := os.WriteFile(path, torn, 0o600); err != nil {
			t.Fatal(err)
		}
		got, err := Peek(filepath.Join(dir, FileName("tenant1")))
		if err != nil {
			t.Fatal(err)
		}
		w := prev
		if cut == 0 {
			w = want
		}
		if g := encoded(t, got); g != w {
			t.Fatalf("cut %d bytes from the last delta: loaded\n%s\nwant\n%s", cut, g, w)
		}
	}
	// A delta whose document changed (still valid JSON, of the right chain) is not read.
	k := bytes.LastIndex(b, []byte(`"watermark":"2`))
	if k < len(b)-lastLen {
		t.Fatal("no watermark in the last delta")
	}
	changed := append([]byte(nil), b...)
	changed[k+len(`"watermark":"`)] = '3'
	if err := os.WriteFile(path, changed, 0o600); err != nil {
		t.Fatal(err)
	}
	if got, err := Peek(filepath.Join(dir, FileName("tenant1"))); err != nil || encoded(t, got) != prev {
		t.Fatalf("a delta with a byte changed was read (%v)", err)
	}
	// A delta of the right chain after a damaged one is not read.
	i := bytes.LastIndex(b[:len(b)-1], []byte("\n"+deltaMagic)) + 1
	j := bytes.LastIndex(b[:i-1], []byte("\n"+deltaMagic)) + 1
	damaged := append(append(append([]byte(nil), b[:j]...), bytes.Repeat([]byte("x"), i-j)...), b[i:]...)
	if err := os.WriteFile(path, damaged, 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := Peek(filepath.Join(dir, FileName("tenant1")))
	if err != nil {
		t.Fatal(err)
	}
	if g := encoded(t, got); g != encoded(t, states[len(states)-3]) {
		t.Fatalf("with the delta before the last damaged: loaded\n%s", g)
	}
}

// runs and applyRuns agree for lists changed at random, and applyRuns refuses runs that do
// not fit.
func TestRuns(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for range 2000 {
		prev := make([]int, r.IntN(12))
		for i := range prev {
			prev[i] = r.IntN(20)
		}
		cur := append([]int(nil), prev[r.IntN(len(prev)+1):]...)
		for i := range cur {
			if r.IntN(4) == 0 {
				cur[i] = 100 + r.IntN(5)
			}
		}
		for range r.IntN(4) {
			cur = append(cur, 200+r.IntN(5))
		}
		ops, fresh := runs(len(prev), len(cur), func(j, i int) bool { return prev[j] == cur[i] })
		var lit []int
		for _, i := range fresh {
			lit = append(lit, cur[i])
		}
		got, ok := applyRuns(ops, prev, lit)
		if !ok || fmt.Sprint(got) != fmt.Sprint(cur) {
			t.Fatalf("prev %v cur %v: runs %v fresh %v give %v %v", prev, cur, ops, lit, got, ok)
		}
	}
	for _, tc := range []struct {
		ops  []int
		want string // "" refused
	}{
		{[]int{-1, 1}, "[9]"},
		{[]int{0, 1, -1, 1, 2, 1}, "[1 9 3]"},
		{[]int{1, 2, -1, 1, 0, 1}, ""}, // a run back: an entry could be taken twice
		{nil, ""},                      // the new entry not taken
		{[]int{0}, ""},                 // half a run
		{[]int{0, 0}, ""},
		{[]int{2, 2}, ""}, // past the end
		{[]int{3, 1, -1, 1}, ""},
		{[]int{-2, 1}, ""},
		{[]int{0, 1, -1, 2}, ""},       // two new of one
		{[]int{-1, 1, -1, 1}, ""},      // the same
		{[]int{0, 3}, ""},              // the new entry not taken
		{[]int{0, 3, 0, 3, -1, 1}, ""}, // prev twice
	} {
		got, ok := applyRuns(tc.ops, []int{1, 2, 3}, []int{9})
		if (tc.want == "") == ok || (ok && fmt.Sprint(got) != tc.want) {
			t.Errorf("runs %v over [1 2 3] and [9]: %v %v, want %q", tc.ops, got, ok, tc.want)
		}
	}
}

// BenchmarkQuickSaveChain: quick saves while 146 batches await acks (the chain seen at acks
// after 1 s, 64 batches in flight, 100,000 alerts), each save after one change as a pump
// makes them; it reports the bytes a save writes, against a whole save's.
func BenchmarkQuickSaveChain(b *testing.B) {
	s, err := Open(b.TempDir(), "tenant1")
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	c := newChainSim(11)
	for len(c.st.Pending) < 146 {
		c.st.Pending = append(c.st.Pending, c.batch())
	}
	for i := range 300 {
		c.st.Delivered = append(c.st.Delivered, Key{fmt.Sprintf("da63700000000%07d_1", i), c.clock})
	}
	if err := s.Save(&c.st); err != nil {
		b.Fatal(err)
	}
	states := make([]*State, 4096)
	for i := range states {
		states[i] = c.step()
		for len(c.st.Pending) < 140 { // the window stays full: batches come as others leave
			c.st.Pending = append(c.st.Pending, c.batch())
		}
	}
	whole := len(states[0].appendJSON(nil))
	var written int64
	b.ResetTimer()
	for i := range b.N {
		q := &s.quick
		end, last := q.end, q.last
		if err := s.SaveQuick(states[i%len(states)]); err != nil {
			b.Fatal(err)
		}
		if q.last != last || q.end <= end {
			written += q.full
		} else {
			written += q.end - end
		}
	}
	b.ReportMetric(float64(written)/float64(b.N), "B/save")
	b.ReportMetric(float64(whole), "B/whole")
}

// A whole quick save whose header was torn so as to give the save before it the new number
// is refused: the checksum covers the header.
func TestQuickWholeSaveHeaderChecked(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, "tenant1")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	base := sample()
	if err := s.Save(base); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveQuick(at(base, time.Second)); err != nil {
		t.Fatal(err)
	}
	p := s.QuickPaths()[s.quick.last]
	b, _ := os.ReadFile(p)
	forged := bytes.Replace(b, []byte(" #1 len "), []byte(" #7 len "), 1)
	if bytes.Equal(forged, b) {
		t.Fatalf("no save #1 in %q", b[:80])
	}
	if err := os.WriteFile(p, forged, 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := Peek(s.Path())
	if err != nil || !got.Watermark.Equal(base.Watermark) {
		t.Fatalf("a whole save with its number changed was read: %v %v", got, err)
	}
	// One written before deltas (its checksum over the document alone) is still read.
	_, doc, _ := bytes.Cut(b, []byte("\n"))
	old := fmt.Sprintf("%s after %s #1 len %d crc %08x\n", quickMagic, s.base, len(doc), crc32.Checksum(doc, castagnoli))
	if err := os.WriteFile(p, append([]byte(old), doc...), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err = Peek(s.Path())
	if err != nil || !got.Watermark.Equal(base.Watermark.Add(time.Second)) {
		t.Fatalf("a quick save of the format before deltas not read: %v %v", got, err)
	}
}

// After a Load (every drain starts with one), the next quick save is whole: the save it
// would follow may not be the one loaded.
func TestQuickSaveAfterLoadIsWhole(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, "tenant1")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c := newChainSim(2)
	if err := s.Save(&c.st); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		if err := s.SaveQuick(c.step()); err != nil {
			t.Fatal(err)
		}
	}
	if !s.quick.chained || s.quick.end == s.quick.full {
		t.Fatal("no delta after five quick saves: the test does not exercise what it is meant to")
	}
	if _, err := s.Load(); err != nil {
		t.Fatal(err)
	}
	last := s.quick.last
	if err := s.SaveQuick(c.step()); err != nil {
		t.Fatal(err)
	}
	if s.quick.last == last || s.quick.end != s.quick.full {
		t.Fatalf("the quick save after a Load was a delta (slot %d → %d, end %d, whole %d)", last, s.quick.last, s.quick.end, s.quick.full)
	}
}

// A file of deltas that each take the previous list over and over is refused, not loaded
// into an ever longer list.
func TestQuickDeltaRunsCannotRepeat(t *testing.T) {
	prev := make([]Key, 1000)
	ops := []int{0, 1000, 0, 1000}
	if got, ok := applyRuns(ops, prev, nil); ok {
		t.Fatalf("runs taking the previous list twice accepted: %d keys", len(got))
	}
}

package checkpoint

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// chainSim changes a state the way a pump does while batches await acks: the frontier takes
// confirmed batches off the front of the chain (their keys go to Delivered, whose oldest keys
// leave the overlap), acks confirm batches anywhere in it, and new batches join its end. Its
// batches carry Encoded as the pump's do (a new slice whenever one changes), except every
// seventh, which is encoded by the save.
type chainSim struct {
	r     *rand.Rand
	st    State
	next  int
	clock time.Time
}

func newChainSim(seed uint64) *chainSim {
	c := &chainSim{r: rand.New(rand.NewPCG(seed, 7)), st: *sample(), clock: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)}
	c.st.Delivered = append([]Key(nil), c.st.Delivered...)
	for i := range 30 {
		c.st.Delivered = append(c.st.Delivered, Key{fmt.Sprintf("da6370000000000%05d_1", i), c.clock})
	}
	for range 20 {
		c.st.Pending = append(c.st.Pending, c.batch())
	}
	return c
}

func (c *chainSim) batch() Pending {
	c.next++
	p := Pending{N: 1 + c.r.IntN(300), Marshaled: c.next%7 != 0,
		Position: json.RawMessage(fmt.Sprintf(`{"page":{"upper":"2026-03-01T09:%02d:%02dZ","done":["da%018d_1"]}}`, c.next/60%60, c.next%60, c.next))}
	if c.r.IntN(3) == 0 {
		p.Keys = []Key{{fmt.Sprintf("da%018d_1", c.next), c.clock.Add(time.Duration(c.next) * time.Millisecond)}}
	}
	p.Tickets = []json.RawMessage{json.RawMessage(fmt.Sprintf(`{"url":"https://hec:8088/services/collector/event","channel":"c1","ack_id":%d}`, c.next))}
	return c.encode(p)
}

func (c *chainSim) encode(p Pending) Pending {
	p.Encoded = nil
	if p.Marshaled {
		p.Encoded = p.AppendJSON(nil)
	}
	return p
}

// step makes one change and returns the state to save (its own slices, as a pump's stateAt).
func (c *chainSim) step() *State {
	st := &c.st
	switch k := c.r.IntN(10); {
	case k < 4 || len(st.Pending) == 0: // a request goes
		st.Pending = append(st.Pending, c.batch())
	case k < 7: // an ack confirms one
		i := c.r.IntN(len(st.Pending))
		p := st.Pending[i]
		p.Confirmed = true
		st.Pending[i] = c.encode(p)
	case k < 9: // the frontier moves over the front
		n := 1 + c.r.IntN(min(len(st.Pending), 5))
		for _, p := range st.Pending[:n] {
			st.Delivered = append(st.Delivered, p.Keys...)
		}
		w := *st.Window
		w.Position = st.Pending[n-1].Position
		st.Window = &w
		st.Pending = append([]Pending(nil), st.Pending[n:]...)
		if len(st.Pending) == 0 {
			st.Pending = nil
		}
		if len(st.Delivered) > 40 {
			st.Delivered = append([]Key(nil), st.Delivered[c.r.IntN(10):]...)
		}
	default: // a ticket is void: the batch is sent again
		i := c.r.IntN(len(st.Pending))
		p := st.Pending[i]
		p.Tickets = nil
		st.Pending[i] = c.encode(p)
	}
	st.Watermark = st.Watermark.Add(time.Millisecond)
	out := *st
	out.Pending = append([]Pending(nil), st.Pending...)
	out.Delivered = append([]Key(nil), st.Delivered...)
	return &out
}

func encoded(t *testing.T, st *State) string {
	t.Helper()
	if st == nil {
		t.Fatal("no state")
	}
	c := *st
	c.Version = formatVersion
	return string(c.appendJSON(nil))
}

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
		{[]int{1, 2, -1, 1, 0, 1}, "[2 3 9 1]"},
		{nil, ""},      // the new entry not taken
		{[]int{0}, ""}, // half a run
		{[]int{0, 0}, ""},
		{[]int{2, 2}, ""}, // past the end
		{[]int{3, 1, -1, 1}, ""},
		{[]int{-2, 1}, ""},
		{[]int{0, 1, -1, 2}, ""},  // two new of one
		{[]int{-1, 1, -1, 1}, ""}, // the same
		{[]int{0, 3}, ""},         // the new entry not taken
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

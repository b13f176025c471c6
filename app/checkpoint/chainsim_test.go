package checkpoint

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
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
	// reuse: each state handed out reuses the lists of the one before, as the pump's saver
	// does (a state is then good only until the next step).
	reuse bool
	keys  []Key
	chain []Pending
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
	default: // a ticket is void: the batch is sent again; and a later version of an alert
		i := c.r.IntN(len(st.Pending))
		p := st.Pending[i]
		p.Tickets = nil
		st.Pending[i] = c.encode(p)
		if len(st.Delivered) > 0 {
			k := st.Delivered[c.r.IntN(len(st.Delivered))]
			k.LastUpdate = k.LastUpdate.Add(time.Second)
			if c.r.IntN(2) == 0 {
				st.Delivered = append(st.Delivered, k) // both versions in the overlap
			} else {
				st.Delivered[c.r.IntN(len(st.Delivered))].LastUpdate = k.LastUpdate // same id, other time
			}
		}
	}
	st.Watermark = st.Watermark.Add(time.Millisecond)
	out := *st
	if c.reuse {
		out.Pending = append(c.chain[:0], st.Pending...)
		out.Delivered = append(c.keys[:0], st.Delivered...)
		c.chain, c.keys = out.Pending, out.Delivered
	} else {
		out.Pending = append([]Pending(nil), st.Pending...)
		out.Delivered = append([]Key(nil), st.Delivered...)
	}
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

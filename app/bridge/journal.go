package bridge

import (
	"encoding/json"
	"slices"
	"sort"

	"ta-defender-alerts/app/checkpoint"
)

// The journal keeps, for the window being delivered, the batches after the frontier that the
// sink reported taken (Pending, with a ticket) or confirmed: the checkpoint saves the chain
// of them that starts right after the frontier (checkpoint.State.Pending), so that a restart
// can ask the destination about them (recoverPending) instead of sending them again. It is
// kept under the pump's lock, and decides nothing about the frontier.

// batchNote is what the journal knows of one batch: records first … last.
type batchNote struct {
	last      uint64
	n         int
	pos       json.RawMessage   // the Position of its last record
	keys      []checkpoint.Key  // its records' keys that the next overlap needs (from p.recent)
	tickets   []json.RawMessage // one per time the destination took it
	confirmed bool              // confirmed whole, nothing refused
	refused   bool              // a record of it was refused: the chain ends before it
	enc       []byte            // its checkpoint.Pending JSON while none of the above changes; nil: not made
}

// noteLocked files what an outcome says of its batch, records first … t.seq, and reports
// whether the checkpoint's chain of pending batches changed. Pending outcomes add a ticket;
// clean final ones confirm the batch; final ones with refusals end the chain before it. An
// outcome without a Position (a Source that saves none) is not kept: resuming after it
// would start the window over.
func (p *Pump) noteLocked(o Outcome, first uint64) bool {
	t := o.Last
	if t.pos == nil || first <= p.front.at || o.Err != nil {
		return false
	}
	e := p.journal[first]
	if o.Void {
		if e == nil || e.last != t.seq || len(e.tickets) == 0 {
			return false
		}
		e.tickets, e.enc = nil, nil // the chain holds it as not proven, unless it is confirmed later
		p.needDurable = true
		return p.inChainLocked(first)
	}
	if len(o.Rejected) > 0 {
		// Also when the frontier takes it now: the checkpoint may hold it as taken, and must
		// not any more.
		in := e != nil && p.inChainLocked(first)
		if e == nil {
			e = &batchNote{last: t.seq, n: o.N}
			p.journal[first] = e
		}
		e.refused = true
		return in
	}
	if e != nil && (e.last != t.seq || e.refused) {
		return false // not the batch noted before, or one known refused: never trust it
	}
	if !o.Pending && first == p.front.scanned+1 {
		return false // the frontier takes it now
	}
	if o.Pending && !json.Valid(o.Ticket) {
		return false // nothing to ask about later: the batch is sent again after a restart
	}
	if e == nil {
		pos := positionJSON(t.pos)
		if pos == nil {
			return false
		}
		e = &batchNote{last: t.seq, n: o.N, pos: pos, keys: p.keysLocked(first, t.seq)}
		p.journal[first] = e
	}
	if o.Pending {
		e.tickets = append(e.tickets, slices.Clone(o.Ticket))
	} else {
		e.confirmed = true
	}
	e.enc = nil
	return p.inChainLocked(first)
}

// keysLocked copies the keys p.recent holds for records first … last.
func (p *Pump) keysLocked(first, last uint64) []checkpoint.Key {
	i := sort.Search(len(p.recent), func(i int) bool { return p.recent[i].seq >= first })
	var keys []checkpoint.Key
	for ; i < len(p.recent) && p.recent[i].seq <= last; i++ {
		keys = append(keys, p.recent[i].key)
	}
	return keys
}

// pendingSafeLocked reports whether a checkpoint at the frontier may carry pending batches:
// not while refused records are held (at the frontier, or carried from an earlier drain, or
// at the end of an earlier window), where the checkpoint must stay exactly before them.
func (p *Pump) pendingSafeLocked() bool {
	return p.boundary == 0 && len(p.front.held) == 0 && p.front.carry.Through.IsZero()
}

// inChainLocked reports whether the batch starting at first is in the chain the checkpoint
// saves.
func (p *Pump) inChainLocked(first uint64) bool {
	if !p.pendingSafeLocked() {
		return false
	}
	for next := p.front.at + 1; next <= first; {
		e := p.journal[next]
		if e == nil || e.refused {
			return false
		}
		if next == first {
			return true
		}
		next = e.last + 1
	}
	return false
}

// chainLocked appends to out the checkpoint's chain: the batches noted, one right after the
// other from the frontier on, up to the first gap or refusal.
func (p *Pump) chainLocked(out []checkpoint.Pending) []checkpoint.Pending {
	if !p.pendingSafeLocked() {
		return out
	}
	for next := p.front.at + 1; ; {
		e := p.journal[next]
		if e == nil || e.refused {
			return out
		}
		pe := checkpoint.Pending{N: e.n, Position: e.pos, Keys: e.keys, Tickets: e.tickets, Confirmed: e.confirmed,
			Marshaled: true} // positionJSON and the sink's tickets, checked by noteLocked
		if e.enc == nil {
			// Made once per change of the batch, not at every save (a save comes before
			// every request while up to a window of batches awaits acks).
			e.enc = pe.AppendJSON(nil)
		}
		pe.Encoded = e.enc
		out = append(out, pe)
		next = e.last + 1
	}
}

// forgetLocked drops the batches the frontier has moved over.
func (p *Pump) forgetLocked() {
	for first, e := range p.journal {
		if e.last <= p.front.at {
			delete(p.journal, first)
		}
	}
}

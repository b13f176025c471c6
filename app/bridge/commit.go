package bridge

import (
	"encoding/json"
	"time"

	"ta-defender-alerts/app/checkpoint"
)

// stageLocked records the state up to the frontier as the one to save next, and starts the
// saver unless it runs: states staged while it writes coalesce into the newest.
func (p *Pump) stageLocked() {
	p.tags.dropBefore(p.front.at) // keep the frontier's tag
	p.forgetLocked()
	if p.boundary > 0 {
		return // inside an earlier window whose run is held: its checkpoint stays (a failure stopped the release)
	}
	if t := p.tags.at(p.front.at); t != nil && t.gen == p.gen {
		if t.pos != nil {
			p.win.Position = positionJSON(t.pos)
		}
		// Else it has none: let go (forgetPositions, its batch's end refused by a later
		// send), or none given by the source. The one staged before is earlier (or the
		// window's start), and resuming from it skips the versions delivered since (the
		// checkpoint's keys) or, below the next window's start, sends them again. Nothing
		// is lost.
	} else {
		p.win.Position = nil // the frontier is the end of the earlier window: this one starts
	}
	p.kickLocked()
}

// kickLocked stages a save of the state at the frontier as it stands (the chain of pending
// batches changed, or the frontier moved) and starts the saver unless it runs.
func (p *Pump) kickLocked() {
	if p.boundary > 0 {
		return
	}
	p.dirty = true
	if !p.saving {
		p.saving = true
		go p.saver()
	}
}

// positionJSON is what the checkpoint holds of a Position.
func positionJSON(pos Position) json.RawMessage {
	if pos == nil {
		return nil
	}
	if a, ok := pos.(jsonAppender); ok {
		return a.AppendJSON(nil) // compact already: no second pass (a save after every batch)
	}
	b, _ := json.Marshal(pos)
	return b
}

// jsonAppender is a Position that writes its own compact JSON (defender.Position does).
type jsonAppender interface{ AppendJSON(b []byte) []byte }

// durableEvery is the longest time between two durable saves of the saver's snapshots: the
// quick ones between them are lost only to a power loss, which then re-sends at most what
// was confirmed or taken in that time.
const durableEvery = time.Second

// saver writes the newest staged state; states staged while it writes coalesce.
func (p *Pump) saver() {
	p.mu.Lock()
	for p.dirty && p.saveErr == nil {
		p.dirty = false
		st := p.stateInto(p.saveKeys[:0], p.front.at, false)
		st.Pending = p.chainLocked(p.saveChain[:0])
		p.saveKeys, p.saveChain = st.Delivered, st.Pending
		if len(st.Delivered) == 0 {
			st.Delivered = nil // written null, as before the buffer was kept
		}
		p.saveTaken++
		id := p.saveTaken
		save := p.cfg.Store.SaveQuick
		if now := time.Now(); p.needDurable || now.Sub(p.lastDurable) >= durableEvery {
			// A void ticket must not come back after a power loss: its channel may hand
			// its ack id to another request.
			save, p.needDurable, p.lastDurable = p.cfg.Store.Save, false, now
		}
		p.mu.Unlock()
		err := save(st)
		p.mu.Lock()
		if err != nil {
			p.saveErr = err
		} else {
			p.committedLocked()
		}
		p.saveDone = id
		p.cond.Broadcast()
	}
	p.saving = false
	p.cond.Broadcast()
	p.mu.Unlock()
}

// committedLocked counts a checkpoint saved.
func (p *Pump) committedLocked() {
	p.stats.Commits++
	p.stats.LastCommit = time.Now()
}

// stateAt builds the checkpoint with the records up to upTo delivered: done means the
// window is finished.
func (p *Pump) stateAt(upTo uint64, done bool) *checkpoint.State {
	return p.stateInto(nil, upTo, done)
}

// stateInto is stateAt with the delivered keys appended to keys.
func (p *Pump) stateInto(keys []checkpoint.Key, upTo uint64, done bool) *checkpoint.State {
	st := &checkpoint.State{Watermark: p.mark, Updated: p.cfg.Now().UTC(), Delivered: keys}
	keep := p.win.From
	if done {
		keep = p.floor
	}
	for _, k := range p.prior {
		if !k.LastUpdate.Before(keep) {
			st.Delivered = append(st.Delivered, k)
		}
	}
	for _, sk := range p.recent {
		if sk.seq <= upTo && !sk.key.LastUpdate.Before(keep) {
			st.Delivered = append(st.Delivered, sk.key)
		}
	}
	if done {
		st.Watermark = p.win.To
	} else {
		w := *p.win
		st.Window = &w
	}
	return st
}

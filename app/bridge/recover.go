package bridge

import (
	"context"
	"encoding/json"
	"fmt"

	"ta-defender-alerts/app/checkpoint"
)

// recoverPending settles the batches an earlier process left pending in the checkpoint (see
// journal.go) before anything is read: those the sink confirms now, in an unbroken run from
// the window's position on, are committed as if their outcomes had come (the window's
// position moves to the last of them, their overlap keys join Delivered), and only what
// follows is read and sent again. It asks the sink (a Recoverer) once, about every ticket
// that can matter. If it cannot ask (no Recoverer), only batches confirmed before the
// restart count; if asking fails or the drain is stopped meanwhile, the checkpoint stays as
// it was: the batches are sent again (duplicates, never a loss). Only a failed save is an
// error.
func (p *Pump) recoverPending(ctx context.Context, st *checkpoint.State) (*checkpoint.State, error) {
	pend := st.Pending
	st.Pending = nil
	if len(pend) == 0 || st.Window == nil || st.Held != nil {
		return st, nil // nothing to do, or not a state that may carry pending batches
	}
	// The run can only reach as far as the first batch with nothing to confirm it.
	reach := 0
	var tickets []json.RawMessage
	var owner []int // the batch each ticket belongs to
	for i, e := range pend {
		if len(e.Position) == 0 || (!e.Confirmed && len(e.Tickets) == 0) {
			break
		}
		reach = i + 1
		if !e.Confirmed {
			for _, t := range e.Tickets {
				tickets, owner = append(tickets, t), append(owner, i)
			}
		}
	}
	confirmed := make([]bool, reach)
	for i := range reach {
		confirmed[i] = pend[i].Confirmed
	}
	// HEC answers an ack id true only once: what each round proves is saved at once (as
	// confirmed in the pending chain), so that a crash during the recovery loses none of it.
	proved := func(ks []int) {
		for _, k := range ks {
			confirmed[owner[k]] = true
		}
		keep := *st
		keep.Pending = make([]checkpoint.Pending, len(pend))
		copy(keep.Pending, pend)
		for i := range reach {
			keep.Pending[i].Confirmed = confirmed[i]
		}
		if err := p.cfg.Store.Save(&keep); err != nil {
			p.cfg.Log.Warn("could not save the batches confirmed so far while asking about them", "err", err)
		}
	}
	if rc, ok := p.sink.(Recoverer); ok && len(tickets) > 0 {
		acked, err := ask(ctx, rc, tickets, proved)
		if err != nil {
			p.cfg.Log.Warn("could not ask whether the batches pending before the restart were confirmed; they are sent again",
				"batches", len(pend), "err", err)
			return st, nil
		}
		for k, ok := range acked {
			if ok {
				confirmed[owner[k]] = true
			}
		}
	}
	n, alerts := 0, 0
	for n < reach && confirmed[n] {
		alerts += pend[n].N
		n++
	}
	p.cfg.Log.Info("batches pending before the restart: those confirmed are not sent again",
		"batches_recovered", n, "alerts_recovered", alerts, "batches_to_send_again", len(pend)-n)
	if n == 0 {
		return st, nil
	}
	next := *st
	w := *st.Window
	w.Position = pend[n-1].Position
	next.Window = &w
	next.Delivered = append([]checkpoint.Key(nil), st.Delivered...)
	for _, e := range pend[:n] {
		for _, k := range e.Keys {
			if !k.LastUpdate.Before(w.From) {
				next.Delivered = append(next.Delivered, k)
			}
		}
	}
	next.Updated = p.cfg.Now().UTC()
	if err := p.cfg.Store.Save(&next); err != nil {
		return nil, err
	}
	p.mu.Lock()
	p.stats.Recovered += alerts
	p.committedLocked()
	p.mu.Unlock()
	return &next, nil
}

// ask is the sink's answer about tickets: an error if it cannot give one.
func ask(ctx context.Context, rc Recoverer, tickets []json.RawMessage, proved func([]int)) ([]bool, error) {
	acked, err := rc.Recover(ctx, tickets, proved)
	if err == nil {
		err = ctx.Err() // stopped while asking: the answers may be cut short
	}
	if err != nil {
		return nil, err
	}
	if len(acked) != len(tickets) {
		return nil, fmt.Errorf("the destination answered for %d of %d batches", len(acked), len(tickets))
	}
	return acked, nil
}

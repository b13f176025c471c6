package bridge

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"ta-defender-alerts/app/checkpoint"
)

// Without a crash, a Pending outcome changes nothing the pump counts or decides: it does not
// confirm, fail or commit, the batches' final outcomes do, and the checkpoint after the
// window holds nothing pending.
func TestPendingThenConfirmed(t *testing.T) {
	dir := t.TempDir()
	store, err := checkpoint.Open(dir, "tenant1")
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	var p *Pump
	var during Stats
	var left *checkpoint.State
	sink := &scripted{onFlush: func(s *scripted) error {
		for b := recBatch - 1; b < len(s.tags); b += recBatch {
			s.report(Outcome{Last: s.tags[b], N: recBatch, Pending: true, Ticket: ticket(b/recBatch+1, 1)})
		}
		p.mu.Lock()
		for p.saving {
			p.cond.Wait()
		}
		p.mu.Unlock()
		during = p.Stats()
		left, _ = store.Load()
		for b := len(s.tags) - 1; b > 0; b -= recBatch { // the last batch first
			s.report(Outcome{Last: s.tags[b], N: recBatch})
		}
		return nil
	}}
	p = New(recoverConfig(store, dir), newTimedSource(4*recBatch, time.Now().Add(-5*time.Minute)), sink.open)
	if err := p.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	if during.Confirmed != 0 || during.Commits == 0 {
		t.Errorf("after the Pending outcomes: confirmed %d, %d commits; want 0 confirmed and the pending batches saved", during.Confirmed, during.Commits)
	}
	if left == nil || left.Window == nil || len(left.Window.Position) != 0 || len(left.Pending) != 4 || len(left.Pending[3].Keys) != recBatch {
		t.Errorf("checkpoint while the batches were pending: %+v, want the window at its start and 4 pending batches", left)
	}
	cp, err := store.Load()
	if err != nil || cp.Window != nil || len(cp.Pending) != 0 || p.Stats().Confirmed != 4*recBatch {
		t.Errorf("after the window: %+v (%v), confirmed %d; want it committed, nothing pending, all 20 confirmed", cp, err, p.Stats().Confirmed)
	}
}

// While refused records are held, the checkpoint must stay exactly before them: a Pending
// outcome then saves nothing, and no state saved carries pending batches.
func TestNoPendingWhileHeld(t *testing.T) {
	tests := []struct {
		name  string
		setup func(p *Pump, r *pass)
	}{
		{"a run carried from the last drain", func(p *Pump, _ *pass) {
			p.front.carry = checkpoint.Held{Batches: 1, Records: 5, Through: time.Now(), Quiet: 1}
		}},
		{"an earlier window's run", func(p *Pump, _ *pass) { p.boundary = 1 }},
		{"a run held at the frontier", func(p *Pump, r *pass) {
			p.mu.Unlock()
			t1 := takeWithPositions(p, r, recBatch)
			p.report(Outcome{Last: t1, N: recBatch, Sent: 1, Rejected: []Rejected{{ID: "x", Index: recBatch - 1, Refused: 1}}})
			p.mu.Lock()
			for p.saving {
				p.cond.Wait()
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, r, _ := newBarePump(t)
			p.mu.Lock()
			tt.setup(p, r)
			commits := p.stats.Commits
			p.mu.Unlock()
			for b := range 3 {
				last := takeWithPositions(p, r, recBatch)
				for k := range 2 {
					p.report(Outcome{Last: last, N: recBatch, Pending: true, Ticket: ticket(b, k)})
				}
			}
			p.mu.Lock()
			for p.saving {
				p.cond.Wait()
			}
			chain, saved := p.chainLocked(nil), p.stats.Commits-commits
			p.mu.Unlock()
			if len(chain) != 0 || saved != 0 {
				t.Errorf("pending batches %+v, %d saves; want none", chain, saved)
			}
		})
	}
}

// takeWithPositions hands the pump n records, each with a position, and returns the last
// one's tag.
func takeWithPositions(p *Pump, r *pass, n int) *Tag {
	var t *Tag
	for range n {
		p.mu.Lock()
		seq := p.nextSeq
		p.mu.Unlock()
		t = p.take(r, Record{ID: fmt.Sprint("r", seq), Time: time.Now(), Data: []byte(`{}`)}, testPos(seq))
	}
	return t
}

// A Void outcome (HEC forgot the channel the batch's tickets were on) empties the batch's saved
// tickets before the report returns, so a crash from then on cannot take them for proof.
func TestVoidEmptiesTheSavedTickets(t *testing.T) {
	dir := t.TempDir()
	store, err := checkpoint.Open(dir, "tenant1")
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	var before, after, durable *checkpoint.State
	sink := &scripted{onFlush: func(s *scripted) error {
		for b := recBatch - 1; b < len(s.tags); b += recBatch {
			s.report(Outcome{Last: s.tags[b], N: recBatch, Pending: true, Ticket: ticket(b/recBatch+1, 1)})
		}
		before, _ = store.Load()
		s.report(Outcome{Last: s.tags[2*recBatch-1], N: recBatch, Pending: true, Void: true})
		after, _ = store.Load() // the report returned: the save is on disk
		// and it was a durable one: after a power loss the quick saves are gone, and the
		// checkpoint itself must not hold the void ticket
		if b, err := os.ReadFile(store.Path()); err == nil {
			durable, _ = checkpoint.Parse(b)
		}
		for b := len(s.tags) - 1; b > 0; b -= recBatch {
			s.report(Outcome{Last: s.tags[b], N: recBatch})
		}
		return nil
	}}
	p := New(recoverConfig(store, dir), newTimedSource(3*recBatch, time.Now().Add(-5*time.Minute)), sink.open)
	if err := p.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	if before == nil || len(before.Pending) != 3 || len(before.Pending[1].Tickets) != 1 {
		t.Fatalf("before the void: %+v, want 3 pending batches with a ticket each", before)
	}
	if after == nil || len(after.Pending) != 3 || len(after.Pending[1].Tickets) != 0 || len(after.Pending[0].Tickets) != 1 || len(after.Pending[2].Tickets) != 1 {
		t.Fatalf("after the void: %+v, want the second batch's tickets gone, the others kept", after)
	}
	if durable == nil || len(durable.Pending) != 3 || len(durable.Pending[1].Tickets) != 0 {
		t.Fatalf("the checkpoint file itself after the void: %+v, want it written (not only a quick save) without the void ticket", durable)
	}
}

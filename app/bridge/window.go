package bridge

import (
	"context"
	"errors"
	"fmt"
	"time"

	"ta-defender-alerts/app/checkpoint"
)

// pass is one window's run: what its steps hand each other.
type pass struct {
	w       checkpoint.Window
	gen     uint64
	first   uint64    // the window's first record
	last    uint64    // its last, once reading is over
	through time.Time // records updated before it were counted in the carried run
	final   bool      // the drain's last window: it reaches now

	ctx      context.Context // the caller's: its end stops reading at once, delivery after Grace
	read     context.Context // reading: ends with ctx, or with a failure
	send     context.Context // delivery: ends Grace after ctx, or with a failure
	stopRead context.CancelFunc
	stopSend context.CancelFunc

	stats    SourceStats
	base     Stats // the pump's counts when the window began: its log line counts from them
	readErr  error
	flushErr error

	// What await found.
	pending  *checkpoint.State // (not final) the state after the window, its last records held
	refuser  string            // (pending) what refused them, for the log (frontier.refuser)
	carry    *checkpoint.State // (final) the checkpoint before a held run, with the run's counts
	failed   error
	saveErr  error
	complete bool // the frontier reached the window's last record
}

// window reads and delivers one window and returns the committed state after it. With
// cont, the window before it ended with a run of refused alerts held: the run stays held,
// ahead of this window's alerts, and st is the earlier window's state once the run is
// settled. final is the drain's last window (it reaches now). held reports that the
// window (not final) ended with a run held: the state returned is not committed yet.
func (p *Pump) window(ctx context.Context, st *checkpoint.State, w checkpoint.Window, cont, final bool) (next *checkpoint.State, held bool, err error) {
	r := p.begin(ctx, st, w, cont, final)
	p.startLanes(r)
	defer r.stopRead()
	defer r.stopSend()
	p.read(r, st.Delivered)
	r.flushErr = p.sink.Flush(r.send)
	p.await(r)
	return p.finish(r)
}

// begin opens the window's generation: outcomes of earlier windows are ignored from now on.
// A window that does not continue a held run starts the frontier and the record numbers
// over.
func (p *Pump) begin(ctx context.Context, st *checkpoint.State, w checkpoint.Window, cont, final bool) *pass {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.gen++
	if !cont {
		p.nextSeq = 1
		p.front.reset()
		p.tags.reset()
		clear(p.journal)
		p.boundary, p.pendState = 0, nil
		p.stats.Watermark = st.Watermark
	}
	p.failed, p.saveErr = nil, nil
	p.win = &checkpoint.Window{From: w.From, To: w.To, Position: w.Position}
	p.mark = st.Watermark
	p.prior = st.Delivered
	p.recent = p.recent[:0]
	p.floor = w.To.Add(-p.cfg.Overlap)
	return &pass{w: w, gen: p.gen, first: p.nextSeq, through: p.front.carry.Through, final: final, ctx: ctx, base: p.stats}
}

// startLanes makes the window's two contexts and the goroutines that end them. Reading ends
// with the caller's context. Delivery outlives it by Grace, so that in-flight batches can
// confirm. A failure (the sink's, or a save's) ends both at once: the window ends with it,
// so nothing more may wait for the sink (a batch waiting for its turn would start its own
// give-up time).
func (p *Pump) startLanes(r *pass) {
	r.read, r.stopRead = context.WithCancel(r.ctx)
	r.send, r.stopSend = context.WithCancel(context.WithoutCancel(r.ctx))
	// The end of delivery wakes await even when the sink never answers again.
	context.AfterFunc(r.send, func() { p.mu.Lock(); p.cond.Broadcast(); p.mu.Unlock() })
	go func() {
		select {
		case <-r.ctx.Done():
			t := time.NewTimer(p.cfg.Grace)
			defer t.Stop()
			select {
			case <-t.C:
				r.stopSend()
			case <-r.send.Done():
			}
		case <-r.send.Done():
		}
	}()
	go func() {
		p.mu.Lock()
		for p.failed == nil && p.saveErr == nil && r.read.Err() == nil {
			p.cond.Wait()
		}
		failed := p.failed != nil || p.saveErr != nil
		p.mu.Unlock()
		r.stopRead()
		if failed {
			r.stopSend()
		}
	}()
	// Wake the watcher when reading ends (window's deferred stopRead guarantees it does).
	context.AfterFunc(r.read, func() { p.mu.Lock(); p.cond.Broadcast(); p.mu.Unlock() })
}

// versionKey is a version's key as a map key.
type versionKey struct {
	id string
	t  int64
}

// read hands the window's records from the source to the sink, each numbered and tagged.
func (p *Pump) read(r *pass, delivered []checkpoint.Key) {
	done := make(map[versionKey]struct{}, len(delivered))
	for _, k := range delivered {
		done[versionKey{k.ID, k.LastUpdate.UnixNano()}] = struct{}{}
	}
	r.stats, r.readErr = p.source.Read(r.read, Window{
		From: r.w.From, To: r.w.To, Resume: r.w.Position,
		Delivered: func(id string, t time.Time) bool {
			_, ok := done[versionKey{id, t.UnixNano()}]
			return ok
		},
	}, func(rec Record, pos Position) error {
		t, err := p.takeWithRoom(r, rec, pos)
		if err != nil {
			return err
		}
		return p.sink.Add(r.send, rec, t)
	})
	p.mu.Lock()
	p.stats.Skipped += r.stats.Skipped
	p.mu.Unlock()
}

// takeWithRoom is take once there is room: reading waits while it is MaxAhead records
// ahead of the first record the sink has not answered for (see Config.MaxAhead), and gives
// up when reading ends; it also stops waiting when delivery fails or ends.
func (p *Pump) takeWithRoom(r *pass, rec Record, pos Position) (*Tag, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.nextSeq-1 >= p.front.scanned+uint64(p.cfg.MaxAhead) && p.failed == nil && r.send.Err() == nil && r.read.Err() == nil {
		p.cond.Wait()
	}
	if err := r.read.Err(); err != nil {
		return nil, err
	}
	return p.takeLocked(r, rec, pos), nil
}

// take numbers a record and keeps what committing it will need: its tag, and its key if it
// lies inside the next window's overlap.
func (p *Pump) take(r *pass, rec Record, pos Position) *Tag {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.takeLocked(r, rec, pos)
}

// takeLocked is take with p.mu held.
func (p *Pump) takeLocked(r *pass, rec Record, pos Position) *Tag {
	seq := p.nextSeq
	p.nextSeq++
	if !rec.Nested && !rec.Time.Before(p.floor) {
		p.recent = append(p.recent, seqKey{seq, checkpoint.Key{ID: rec.ID, LastUpdate: rec.Time}})
	}
	t := &Tag{gen: r.gen, seq: seq, pos: pos, old: rec.Time.Before(r.through)}
	p.tags.add(t)
	p.stats.Read++
	return t
}

// await waits until the sink has answered for every record taken, or failed, or delivery
// ended; then it settles a run of refusals still held at the window's end (pendLocked,
// endLocked), waits for the saver, and notes how the window ended.
func (p *Pump) await(r *pass) {
	p.mu.Lock()
	defer p.mu.Unlock()
	r.last = p.nextSeq - 1
	for p.front.scanned < r.last && p.failed == nil && r.send.Err() == nil {
		p.cond.Wait()
	}
	// A run of refused alerts still held at the end: what follows it decides.
	if p.front.scanned == r.last && p.failed == nil && len(p.front.held) > 0 && r.readErr == nil && r.flushErr == nil && r.ctx.Err() == nil {
		if !r.final {
			r.pending, r.refuser = p.pendLocked(), p.front.refuser()
		} else {
			r.carry = p.endLocked(r.w.To)
		}
	}
	for p.saving {
		p.cond.Wait()
	}
	r.failed, r.saveErr, r.complete = p.failed, p.saveErr, p.front.at == r.last
}

// finish turns how the window ended into its result: a failure; a window whose last records
// are held until the next one settles them; a run carried to the next drain; a stop; or,
// every record confirmed, the committed state after the window.
func (p *Pump) finish(r *pass) (next *checkpoint.State, held bool, err error) {
	switch {
	case r.saveErr != nil:
		return nil, false, r.saveErr
	case r.failed != nil && !errors.Is(r.failed, context.Canceled):
		return nil, false, fmt.Errorf("delivery failed: %w", r.failed)
	case r.readErr != nil && r.ctx.Err() == nil && !errors.Is(r.readErr, context.Canceled):
		if errors.Is(r.readErr, ErrPosition) {
			return nil, false, fmt.Errorf("checkpoint %s: %w: move the file away to start over", p.cfg.Store.Path(), r.readErr)
		}
		return nil, false, r.readErr
	case r.flushErr != nil && r.ctx.Err() == nil:
		return nil, false, r.flushErr
	case r.pending != nil:
		p.cfg.Log.Info("window read; "+r.refuser+" refused its last alerts: they are held back until what follows shows whether the refusal is systematic",
			"from", r.w.From, "to", r.w.To, "alerts", r.last-r.first+1)
		return r.pending, true, nil
	case r.carry != nil:
		if err := p.cfg.Store.Save(r.carry); err != nil {
			return nil, false, err
		}
		p.mu.Lock()
		p.committedLocked()
		p.mu.Unlock()
		return nil, false, nil
	case r.ctx.Err() != nil:
		return nil, false, r.ctx.Err()
	case !r.complete:
		return nil, false, errors.New("delivery stopped before every alert was confirmed")
	}
	return p.commit(r)
}

// commit saves the state after a window whose every record is confirmed: the watermark moves
// to its end.
func (p *Pump) commit(r *pass) (*checkpoint.State, bool, error) {
	p.mu.Lock()
	next := p.stateAt(r.last, true)
	p.mu.Unlock()
	if err := p.cfg.Store.Save(next); err != nil {
		return nil, false, err
	}
	p.mu.Lock()
	p.stats.Windows++
	p.committedLocked()
	p.stats.Watermark = next.Watermark
	s := p.stats
	p.mu.Unlock()
	// The counts are this window's, lag_s how far the checkpoint is behind this host's now: the
	// health dashboard and saved searches (default/data/ui/views, savedsearches.conf) read them.
	p.cfg.Log.Info("window delivered", "from", r.w.From, "to", r.w.To, "alerts", r.last-r.first+1,
		"calls", r.stats.Calls, "skipped_as_delivered", r.stats.Skipped,
		"delivered", s.Confirmed-r.base.Confirmed, "dead_lettered", s.Rejected-r.base.Rejected, "resent", s.Resent-r.base.Resent,
		"watermark", next.Watermark.Format(time.RFC3339), "lag_s", int64(p.cfg.Now().Sub(next.Watermark)/time.Second))
	return next, false, nil
}

// pendLocked is the end of a window, not the drain's last, whose last alerts are held: the
// next window decides what they were. It returns the state the window commits once they are
// settled; until then the checkpoint stays before them.
func (p *Pump) pendLocked() *checkpoint.State {
	p.boundary = p.front.scanned
	p.pendState = p.stateAt(p.front.at, false)
	return p.stateAt(p.front.scanned, true)
}

// endLocked is the end of the drain's last window (it reaches now) with a run still held:
// nothing sent after it was indexed, and it is not yet systematic. Ending a window proves
// nothing about the run, so the checkpoint stays before it and its counts are saved with
// the checkpoint (the state endLocked returns): the next drain reads and sends the run again,
// after it what is new, and goes on counting. Only a run that has ended quietDrains drains in a
// row without growing is released as rare bad alerts (endLocked returns nil).
func (p *Pump) endLocked(to time.Time) *checkpoint.State {
	h := p.front.carried(to)
	if h.Quiet >= quietDrains {
		p.cfg.Log.Warn(p.front.refuser()+" refused the last alerts read, and nothing newer has come to be sent after them for several polls: "+
			"they count as rare bad alerts and go to the dead-letter file", "alerts", h.Records, "polls", h.Quiet)
		if err := p.front.release(p.settleLocked); err != nil {
			p.failed = err
		}
		p.settledLocked()
		return nil
	}
	st := p.pendState
	if st == nil {
		st = p.stateAt(p.front.at, false)
	}
	st.Held = &h
	p.stats.Held = h.Records
	who := p.front.refuser()
	p.cfg.Log.Warn(who+" refused the last alerts read; they are held back, neither committed nor dead-lettered, and sent again "+
		"with the next poll: if "+who+" then takes a newer alert, they go to the dead-letter file as rare bad alerts; if it goes "+
		"on refusing, delivery stops", "alerts", h.Records, "refused_whole_batches", h.Batches, "polls", h.Quiet)
	return st
}

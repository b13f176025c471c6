// Package bridge joins the Defender reader to a Splunk sink: read a window, shape events,
// send, confirm, and only then commit the checkpoint. It is the only package that knows both
// sides.
package bridge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"ta-defender-alerts/app/checkpoint"
	"ta-defender-alerts/app/defender"
	"ta-defender-alerts/app/hec"
	"ta-defender-alerts/app/statedir"
)

// Sink takes records and confirms them later through the Outcome callback it was made with.
type Sink interface {
	// Add queues a record; it may block (backpressure).
	Add(ctx context.Context, r hec.Record, tag any) error
	// Flush sends what is queued.
	Flush(ctx context.Context) error
}

// Reader is the Defender side (a *defender.Client).
type Reader interface {
	ReadWindow(ctx context.Context, w defender.Window, fn func(defender.Alert, *defender.Progress) error) (defender.WindowStats, error)
}

// Pump moves alerts from a Reader to a Sink for one input.
type Pump struct {
	Reader  Reader
	Store   *checkpoint.Store
	Log     *slog.Logger
	Start   time.Duration // how far back a first run reads
	Overlap time.Duration // how far back each window re-reads
	Now     func() time.Time
	// Clock, if set, is the source's clock (Microsoft's time): windows end at its "now", so
	// a host clock that is off neither skips alerts nor delays them. Default Now.
	Clock func(ctx context.Context) (time.Time, error)
	// Grace is how long in-flight batches may take to confirm after a stop; default 5s.
	Grace time.Duration
	// DeadLetter is the file rejected records go to (JSON lines, 0600).
	DeadLetter string

	sink Sink

	mu        sync.Mutex
	cond      *sync.Cond
	gen       uint64          // window generation
	nextSeq   uint64          // seq of the next record added
	frontier  uint64          // every record with seq <= frontier is confirmed
	scanned   uint64          // every record with seq <= scanned has its outcome (frontier <= scanned)
	confirmed map[uint64]done // first seq → the confirmed batch, for batches beyond scanned
	tags      map[uint64]*tag // last seq of a confirmed batch → its tag
	held      []done          // batches held back from frontier+1 to scanned: a run of refused alerts
	halted    bool            // a systematic refusal stopped the window
	failed    error
	stats     Stats

	win     *checkpoint.Window
	pos     *defender.Position // the reader's position up to the frontier, for the next save
	prior   []checkpoint.Key   // delivered keys from earlier windows (lut >= window start)
	recent  []seqKey           // keys handed on in this window, inside the next overlap
	floor   time.Time          // next window's start: keys below it are not kept
	dirty   bool               // a newer confirmed state awaits saving
	saving  bool
	saveErr error

	skewWarned bool
	skewLogged time.Duration
}

// done is a batch the sink has answered for.
type done struct {
	last     uint64
	n        int
	rejected []hec.Rejected
}

// A run of batches refused whole is systematic, not a rare bad alert, once it spans this many
// batches and records: delivery stops there rather than empty itself into the dead-letter file.
const (
	refusedBatches = 3
	refusedRecords = 50
)

// ErrRefusedAll is in the error of a window stopped because Splunk refused every alert of
// several batches in a row.
var ErrRefusedAll = errors.New("Splunk refused every alert of several batches in a row")

type seqKey struct {
	seq uint64
	key checkpoint.Key
}

// tag travels with each record and comes back with its batch.
type tag struct {
	gen uint64 // the window it belongs to: a late outcome of an abandoned window is ignored
	seq uint64
	pos defender.Position
}

// Stats count a pump's work.
type Stats struct {
	Read       int // alerts handed on by the reader
	Confirmed  int // alerts confirmed by the sink
	Rejected   int // alerts Splunk refused, written to the dead-letter file
	Resent     int // alerts sent again after a lost reply or ack
	Skipped    int // versions dropped as delivered before (overlap)
	Windows    int
	Commits    int
	LastCommit time.Time
	Watermark  time.Time
}

// SetSink attaches the sink; make it with p.Outcome as its callback.
func (p *Pump) SetSink(s Sink) { p.sink = s }

// Stats returns a copy of the counters.
func (p *Pump) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stats
}

// Outcome is the HEC sink's callback for a batch.
func (p *Pump) Outcome(o hec.Outcome) {
	p.confirm(o.Batch.Len(), o.Batch.Tag, o.Rejected, o.Resent, o.Err)
}

// Confirmed is the callback of other sinks: the n records up to the one tagged lastTag are
// confirmed, or err says they cannot be.
func (p *Pump) Confirmed(n int, lastTag any, err error) { p.confirm(n, lastTag, nil, 0, err) }

func (p *Pump) confirm(n int, lastTag any, rejected []hec.Rejected, resent int, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	t, ok := lastTag.(*tag)
	if ok && t.gen != p.gen {
		return // a batch of a window this pump already gave up on
	}
	p.stats.Resent += resent // sent again, confirmed or not: Splunk may hold them twice
	if err != nil || !ok {
		if err == nil {
			err = errors.New("a sink confirmed records without their tag")
		}
		if p.failed == nil {
			p.failed = err
		}
		p.cond.Broadcast()
		return
	}
	last := t.seq
	first := last - uint64(n) + 1
	p.confirmed[first] = done{last: last, n: n, rejected: rejected}
	p.tags[last] = t
	p.stats.Confirmed += n - len(rejected)
	p.advanceLocked()
	p.cond.Broadcast()
}

// advanceLocked takes the answered batches in order and moves the frontier over them. A run
// of refused alerts (from a batch whose last alerts were refused, through batches refused
// whole) is held back, neither dead-lettered nor committed, until an indexed alert follows
// (then they were rare bad alerts) or the run turns out systematic.
func (p *Pump) advanceLocked() {
	from := p.frontier
	for !p.halted {
		d, ok := p.confirmed[p.scanned+1]
		if !ok {
			break
		}
		delete(p.confirmed, p.scanned+1)
		p.scanned = d.last
		if d.n > 0 && len(d.rejected) == d.n {
			p.held = append(p.held, d)
			if batches, records := wholeRefused(p.held); batches >= refusedBatches && records >= refusedRecords {
				p.halted = true
				p.failed = refusedAll(p.held, batches, records)
			}
			continue
		}
		// An indexed alert ends the run.
		if !p.releaseLocked() {
			break
		}
		if d.endsRefused() {
			p.held = append(p.held, d) // it may start the next run
			continue
		}
		if !p.admitLocked(d) {
			break
		}
	}
	if p.frontier != from {
		p.stageLocked(p.tags[p.frontier])
		for s := range p.tags {
			if s <= p.frontier {
				delete(p.tags, s)
			}
		}
	}
}

// releaseLocked admits the held batches: Splunk took what followed them, so theirs were rare
// bad alerts.
func (p *Pump) releaseLocked() bool {
	for len(p.held) > 0 {
		if !p.admitLocked(p.held[0]) {
			return false
		}
		p.held = p.held[1:]
	}
	return true
}

// admitLocked writes a batch's refused alerts to the dead-letter file and moves the frontier
// over it.
func (p *Pump) admitLocked(d done) bool {
	if len(d.rejected) > 0 {
		if err := p.deadLetter(d.rejected); err != nil {
			p.failed = err
			return false
		}
		for _, r := range d.rejected {
			p.Log.Error("Splunk refused an alert as malformed; it was written to the dead-letter file",
				"alert_id", r.ID, "hec_code", r.Code, "hec_text", r.Text, "file", p.DeadLetter)
		}
		p.stats.Rejected += len(d.rejected)
	}
	p.frontier = d.last
	return true
}

// endLocked is the end of the window's outcomes: batches still held were refused whole but
// too few to be systematic, so they were rare bad alerts.
func (p *Pump) endLocked() {
	if p.failed != nil || len(p.held) == 0 {
		return
	}
	if p.releaseLocked() {
		p.stageLocked(p.tags[p.frontier])
	}
}

// endsRefused reports whether the batch's last alert was refused.
func (d done) endsRefused() bool {
	for _, r := range d.rejected {
		if r.Index == d.n-1 {
			return true
		}
	}
	return false
}

// wholeRefused counts the held batches refused whole, and their alerts.
func wholeRefused(held []done) (batches, records int) {
	for _, d := range held {
		if len(d.rejected) == d.n {
			batches++
			records += d.n
		}
	}
	return batches, records
}

// refusedAll says what Splunk refused and what to check.
func refusedAll(held []done, batches, records int) error {
	r := held[len(held)-1].rejected[0]
	return fmt.Errorf("%w: it refused all %d alerts of the last %d batches as malformed (for example alert %s: HEC code %d %q). "+
		"That is not a rare bad alert, so delivery stops instead of filling the dead-letter file. Check for a proxy or gateway "+
		"between this host and HEC that alters request bodies, and the index, sourcetype, source and host settings (Splunk may "+
		"refuse one of them, or the token may not allow it). These alerts were not written to the dead-letter file and the "+
		"checkpoint stays before them: they are sent again once the cause is fixed",
		ErrRefusedAll, records, batches, r.ID, r.Code, r.Text)
}

// stageLocked records the state up to the frontier as the one to save next. The position is
// encoded when it is saved: positions staged while a save runs are never encoded (inside a
// tie group or an unordered window they list versions, and can be large).
func (p *Pump) stageLocked(t *tag) {
	p.pos = &t.pos
	p.dirty = true
	if !p.saving {
		p.saving = true
		go p.saver()
	}
}

// saver writes the newest staged state; states staged while it writes coalesce.
func (p *Pump) saver() {
	p.mu.Lock()
	for p.dirty && p.saveErr == nil {
		p.dirty = false
		st := p.stateLocked(false)
		p.mu.Unlock()
		err := p.Store.Save(st)
		p.mu.Lock()
		if err != nil {
			p.saveErr = err
		} else {
			p.stats.Commits++
			p.stats.LastCommit = time.Now()
		}
	}
	p.saving = false
	p.cond.Broadcast()
	p.mu.Unlock()
}

// stateLocked builds the checkpoint: done means the window is finished.
func (p *Pump) stateLocked(done bool) *checkpoint.State {
	st := &checkpoint.State{Watermark: p.stats.Watermark, Updated: p.Now().UTC()}
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
		if sk.seq <= p.frontier && !sk.key.LastUpdate.Before(keep) {
			st.Delivered = append(st.Delivered, sk.key)
		}
	}
	if done {
		st.Watermark = p.win.To
	} else {
		w := *p.win
		if p.pos != nil {
			w.Position = p.pos.AppendJSON(nil)
		}
		st.Window = &w
	}
	return st
}

func (p *Pump) deadLetter(rs []hec.Rejected) error {
	f, err := statedir.OpenFile(p.DeadLetter, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("dead-letter file %s cannot be opened: %w", p.DeadLetter, err)
	}
	for _, r := range rs {
		line, _ := json.Marshal(struct {
			Time     time.Time       `json:"time"`
			ID       string          `json:"alert_id"`
			Code     int             `json:"hec_code"`
			Text     string          `json:"hec_text"`
			Envelope json.RawMessage `json:"envelope"`
		}{time.Now().UTC(), r.ID, r.Code, r.Text, r.Envelope})
		if _, err := f.Write(append(line, '\n')); err != nil {
			f.Close()
			return fmt.Errorf("dead-letter file %s cannot be written: %w", p.DeadLetter, err)
		}
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("dead-letter file %s cannot be written: %w", p.DeadLetter, err)
	}
	return f.Close()
}

// Drain reads everything up to now, delivers it, waits for confirmation and commits. A
// window left part-way by an earlier run is finished first. On ctx's end it stops reading,
// lets in-flight batches confirm for up to Grace, commits what was confirmed, and returns
// ctx's error.
func (p *Pump) Drain(ctx context.Context) error {
	if p.cond == nil {
		p.cond = newCond(p)
	}
	if p.Grace == 0 {
		p.Grace = 5 * time.Second
	}
	if p.Now == nil {
		p.Now = time.Now
	}
	st, err := p.Store.Load()
	if err != nil {
		return err
	}
	now, err := p.sourceNow(ctx)
	if err != nil {
		return err
	}
	if st == nil {
		st = &checkpoint.State{Watermark: now.Add(-p.Start).Truncate(defender.Tick)}
		p.Log.Info("first run: reading alerts updated since the start time", "start", st.Watermark, "checkpoint", p.Store.Path())
	}
	for {
		var w checkpoint.Window
		var resume *defender.Position
		fresh := st.Window == nil
		if !fresh {
			w = *st.Window
			if len(w.Position) > 0 {
				resume = new(defender.Position)
				if err := json.Unmarshal(w.Position, resume); err != nil {
					return fmt.Errorf("checkpoint %s: the saved position cannot be read (%v): move the file away to start over", p.Store.Path(), err)
				}
			}
			p.Log.Info("finishing a window left part-way", "from", w.From, "to", w.To)
		} else {
			// A clock that stepped back never moves the checkpoint back: the window then ends
			// at the watermark (it re-reads the overlap, and delivers nothing twice).
			to := now.Truncate(defender.Tick)
			if to.Before(st.Watermark) {
				if st.Watermark.Sub(to) > time.Minute {
					p.Log.Warn("the checkpoint's watermark lies ahead of Microsoft's clock (a host clock that ran ahead before this version followed Microsoft's); it is kept, so alerts updated until Microsoft's clock reaches it may be missed: move the checkpoint's watermark back, or set it aside to start over",
						"watermark", st.Watermark.Format(time.RFC3339), "microsoft_time", now.Format(time.RFC3339), "checkpoint", p.Store.Path())
				}
				to = st.Watermark
			}
			w = checkpoint.Window{From: st.Watermark.Add(-p.Overlap), To: to}
		}
		next, err := p.window(ctx, st, w, resume)
		if err != nil {
			return err
		}
		st = next
		if fresh {
			return nil // a fresh window reaching now is done
		}
	}
}

// sourceNow is the source's time (Clock), else the host's. A difference of more than a minute
// between the two is logged as a warning, again whenever it changes by more than a minute.
func (p *Pump) sourceNow(ctx context.Context) (time.Time, error) {
	host := p.Now().UTC()
	if p.Clock == nil {
		return host, nil
	}
	now, err := p.Clock(ctx)
	if err != nil {
		return time.Time{}, err
	}
	now = now.UTC()
	skew := now.Sub(host)
	if skew.Abs() > time.Minute && (!p.skewWarned || (skew-p.skewLogged).Abs() > time.Minute) {
		p.Log.Warn("this host's clock differs from Microsoft's; windows follow Microsoft's clock, but fix the host's time (NTP)",
			"host_time", host.Format(time.RFC3339), "microsoft_time", now.Format(time.RFC3339), "host_behind_by", skew.Round(time.Second).String())
		p.skewWarned, p.skewLogged = true, skew
	}
	return now, nil
}

// window reads and delivers one window and returns the committed state after it.
func (p *Pump) window(ctx context.Context, st *checkpoint.State, w checkpoint.Window, resume *defender.Position) (*checkpoint.State, error) {
	p.mu.Lock()
	p.gen++
	gen := p.gen
	p.nextSeq, p.frontier, p.scanned = 1, 0, 0
	p.confirmed, p.tags = map[uint64]done{}, map[uint64]*tag{}
	p.held, p.halted = nil, false
	p.failed, p.saveErr = nil, nil
	p.win = &checkpoint.Window{From: w.From, To: w.To, Position: w.Position}
	p.pos = nil
	p.prior = st.Delivered
	p.recent = p.recent[:0]
	p.floor = w.To.Add(-p.Overlap)
	p.stats.Watermark = st.Watermark
	p.mu.Unlock()

	type dk struct {
		id string
		t  int64
	}
	delivered := make(map[dk]struct{}, len(st.Delivered))
	for _, k := range st.Delivered {
		delivered[dk{k.ID, k.LastUpdate.UnixNano()}] = struct{}{}
	}
	readCtx, stopRead := context.WithCancel(ctx)
	defer stopRead()
	// Delivery outlives a stop by Grace, so that in-flight batches can confirm.
	sendCtx, stopSend := context.WithCancel(context.WithoutCancel(ctx))
	defer stopSend()
	go func() {
		select {
		case <-ctx.Done():
			t := time.NewTimer(p.Grace)
			defer t.Stop()
			select {
			case <-t.C:
				stopSend()
			case <-sendCtx.Done():
			}
		case <-sendCtx.Done():
		}
	}()
	// A failed delivery stops the reading, and the sending too: the window ends with the
	// failure, so nothing more may wait for the sink (a batch waiting for its turn would start
	// its own give-up time).
	go func() {
		p.mu.Lock()
		for p.failed == nil && p.saveErr == nil && readCtx.Err() == nil {
			p.cond.Wait()
		}
		failed := p.failed != nil || p.saveErr != nil
		p.mu.Unlock()
		stopRead()
		if failed {
			stopSend()
		}
	}()
	// Wake the watcher when reading ends (the deferred stopRead guarantees it does).
	context.AfterFunc(readCtx, func() { p.mu.Lock(); p.cond.Broadcast(); p.mu.Unlock() })

	ws, readErr := p.Reader.ReadWindow(readCtx, defender.Window{
		From: w.From, To: w.To, Resume: resume,
		Delivered: func(id string, t time.Time) bool {
			_, ok := delivered[dk{id, t.UnixNano()}]
			return ok
		},
	}, func(a defender.Alert, pr *defender.Progress) error {
		p.mu.Lock()
		seq := p.nextSeq
		p.nextSeq++
		if !a.LastUpdate.Before(p.floor) {
			p.recent = append(p.recent, seqKey{seq, checkpoint.Key{ID: a.ID, LastUpdate: a.LastUpdate}})
		}
		p.stats.Read++
		p.mu.Unlock()
		return p.sink.Add(sendCtx, hec.Record{Time: a.LastUpdate, Event: a.Raw, ID: a.ID}, &tag{gen: gen, seq: seq, pos: pr.Position()})
	})
	p.mu.Lock()
	p.stats.Skipped += ws.Delivered
	p.mu.Unlock()
	flushErr := p.sink.Flush(sendCtx)

	// Wait for every record handed on to be confirmed, or for a failure.
	p.mu.Lock()
	last := p.nextSeq - 1
	for p.scanned < last && p.failed == nil && sendCtx.Err() == nil {
		p.cond.Wait()
	}
	if p.scanned == last {
		p.endLocked()
	}
	for p.saving {
		p.cond.Wait()
	}
	failed, saveErr, complete := p.failed, p.saveErr, p.frontier == last
	p.mu.Unlock()

	switch {
	case saveErr != nil:
		return nil, saveErr
	case failed != nil && !errors.Is(failed, context.Canceled):
		return nil, fmt.Errorf("delivery failed: %w", failed)
	case readErr != nil && ctx.Err() == nil && !errors.Is(readErr, context.Canceled):
		return nil, readErr
	case flushErr != nil && ctx.Err() == nil:
		return nil, flushErr
	case ctx.Err() != nil || !complete:
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, errors.New("delivery stopped before every alert was confirmed")
	}
	// The whole window is confirmed: move the watermark.
	p.mu.Lock()
	next := p.stateLocked(true)
	p.mu.Unlock()
	if err := p.Store.Save(next); err != nil {
		return nil, err
	}
	p.mu.Lock()
	p.stats.Windows++
	p.stats.Commits++
	p.stats.LastCommit = time.Now()
	p.stats.Watermark = next.Watermark
	p.mu.Unlock()
	p.Log.Info("window delivered", "from", w.From, "to", w.To, "alerts", last, "calls", ws.Calls, "skipped_as_delivered", ws.Delivered)
	return next, nil
}

// DeadLetterPath is the dead-letter file beside an input's checkpoint.
func DeadLetterPath(stateDir, input string) string {
	name := checkpoint.FileName(input)
	return filepath.Join(stateDir, name[:len(name)-len(".json")]+".deadletter.jsonl")
}

func newCond(p *Pump) *sync.Cond { return sync.NewCond(&p.mu) }

// Package bridge joins the Defender reader to a Splunk sink: read a window, shape events,
// send, confirm, and only then commit the checkpoint. It is the only package that knows both
// sides.
package bridge

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
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
	tagBuf    []*tag          // the tags of records tagFirst, tagFirst+1, …: the frontier's and later ones
	tagFirst  uint64
	held      []done // batches (or their ends) held back from frontier+1 to scanned: a run of refused alerts
	heldAt    uint64 // the latest refusal among them, on the sink's event count (hec.Outcome.Sent)
	halted    bool   // a systematic refusal stopped the window
	failed    error
	stats     Stats

	// A run of refused alerts outlives the window that ends with it (see endLocked).
	carry     checkpoint.Held   // the run's counts from earlier drains; zero: a new run
	boundary  uint64            // last seq of the earlier window of this drain whose run is held; 0: none
	pendState *checkpoint.State // that window's state, the checkpoint before its run

	win     *checkpoint.Window
	mark    time.Time        // the watermark of the states saved during this window
	prior   []checkpoint.Key // delivered keys from earlier windows (lut >= window start)
	recent  []seqKey         // keys handed on in this window, inside the next overlap
	floor   time.Time        // next window's start: keys below it are not kept
	dirty   bool             // a newer confirmed state awaits saving
	saving  bool
	saveErr error

	skewWarned bool
	skewLogged time.Duration
}

// done is a batch the sink has answered for, or the end of one.
type done struct {
	last     uint64
	n        int
	rejected []hec.Rejected // in record order
	sent     uint64         // when the last request that indexed some of its records was sent
	whole    bool           // the batch was refused whole
	old      bool           // (whole batches) every alert in it was counted by an earlier drain
}

// A run of batches refused whole is systematic, not a rare bad alert, once it spans this many
// batches and records: delivery stops there rather than empty itself into the dead-letter file.
const (
	refusedBatches = 3
	refusedRecords = 50
)

// quietDrains is how many drains in a row may end with a run of refused alerts held, nothing
// sent after it and the run not growing, before the run counts as rare bad alerts after all:
// a quiet tenant's last alert may be a bad one, and nothing newer comes to show that Splunk
// takes the rest. A systematic refusal shows itself sooner in a tenant with alerts to send:
// its next alerts are refused too.
const quietDrains = 3

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
	old bool // counted in a held run by an earlier drain (updated before carry.Through)
}

// Stats count a pump's work.
type Stats struct {
	Read       int // alerts handed on by the reader
	Confirmed  int // alerts confirmed by the sink
	Rejected   int // alerts Splunk refused, written to the dead-letter file
	Resent     int // alerts sent again after a lost reply or ack
	Skipped    int // versions dropped as delivered before (overlap)
	Held       int // alerts Splunk refused, held back at the end of the last drain (see Drain)
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
	p.confirm(o.Batch.Len(), o.Batch.Tag, o.Rejected, o.Sent, o.Resent, o.Err)
}

// Confirmed is the callback of other sinks: the n records up to the one tagged lastTag are
// confirmed, or err says they cannot be.
func (p *Pump) Confirmed(n int, lastTag any, err error) { p.confirm(n, lastTag, nil, 0, 0, err) }

func (p *Pump) confirm(n int, lastTag any, rejected []hec.Rejected, sent uint64, resent int, err error) {
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
	rejected = slices.Clone(rejected)
	slices.SortFunc(rejected, func(a, b hec.Rejected) int { return cmp.Compare(a.Index, b.Index) })
	p.confirmed[first] = done{last: last, n: n, rejected: rejected, sent: sent, whole: n > 0 && len(rejected) == n}
	p.stats.Confirmed += n - len(rejected)
	p.advanceLocked()
	p.cond.Broadcast()
}

// advanceLocked takes the answered batches in order and moves the frontier over them. A run
// of refused alerts (the refused end of a batch, then batches refused whole) is held back,
// neither dead-lettered nor committed, until an alert sent after them is indexed (then they
// were rare bad alerts) or the run turns out systematic. "After" is the order of sending, not
// of the records: with several batches in flight, a batch sent before Splunk began refusing
// may be indexed although it comes later in the window; it proves nothing about the refused
// ones and is held with them.
func (p *Pump) advanceLocked() {
	from := p.frontier
	for !p.halted {
		d, ok := p.confirmed[p.scanned+1]
		if !ok {
			break
		}
		delete(p.confirmed, p.scanned+1)
		p.scanned = d.last
		if d.whole {
			d.old = p.oldLocked(d)
			p.holdLocked(d)
			if batches, records := p.runLocked(); batches >= refusedBatches && records >= refusedRecords {
				p.halted = true
				p.failed = refusedAll(p.held, batches, records)
			}
			continue
		}
		if len(p.held) > 0 {
			if d.sent <= p.heldAt {
				p.holdLocked(d) // sent before Splunk refused the held alerts
				continue
			}
			// An indexed alert sent after them ends the run.
			if !p.releaseLocked() {
				break
			}
		}
		// The batch's own refused alerts before an indexed one are rare bad ones (a batch's
		// records go in order, each part after the reply to the one before); a refused end may
		// start the next run.
		head, tail := d.split()
		if !p.admitLocked(head) {
			break
		}
		if tail.n > 0 {
			p.holdLocked(tail)
		}
	}
	if p.frontier != from {
		p.stageLocked()
	}
}

// split cuts a batch that is not refused whole before its refused end, if it has one.
func (d done) split() (head, tail done) {
	k := len(d.rejected)
	for k > 0 && d.rejected[k-1].Index == d.n-len(d.rejected)+k-1 {
		k--
	}
	t := len(d.rejected) - k // the refused end's length
	head = done{last: d.last - uint64(t), n: d.n - t, rejected: d.rejected[:k], sent: d.sent}
	tail = done{last: d.last, n: t, rejected: d.rejected[k:]}
	return head, tail
}

func (p *Pump) holdLocked(d done) {
	p.held = append(p.held, d)
	for _, r := range d.rejected {
		p.heldAt = max(p.heldAt, r.Refused)
	}
}

// oldLocked reports whether every alert of a batch was counted in the held run by an earlier
// drain: the run is read and sent again on every drain, and counts only once.
func (p *Pump) oldLocked(d done) bool {
	if p.carry.Through.IsZero() {
		return false
	}
	for s := d.last - uint64(d.n) + 1; s <= d.last; s++ {
		if t := p.tagAt(s); t == nil || !t.old {
			return false
		}
	}
	return true
}

// runLocked counts the held run: batches refused whole (with those of earlier drains), and
// their alerts.
func (p *Pump) runLocked() (batches, records int) {
	batches = p.carry.Batches
	for _, d := range p.held {
		if d.whole {
			records += d.n
			if !d.old {
				batches++
			}
		}
	}
	return batches, records
}

// releaseLocked admits the held batches: Splunk took what was sent after them, so theirs
// were rare bad alerts.
func (p *Pump) releaseLocked() bool {
	for len(p.held) > 0 {
		if !p.admitLocked(p.held[0]) {
			return false
		}
		p.held = p.held[1:]
	}
	p.held, p.heldAt = nil, 0
	return true
}

// admitLocked writes a batch's refused alerts to the dead-letter file and moves the frontier
// over it.
func (p *Pump) admitLocked(d done) bool {
	if d.n == 0 {
		return true
	}
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
	p.carry = checkpoint.Held{} // a run held by an earlier drain is settled
	if p.boundary > 0 && p.frontier >= p.boundary {
		// The earlier window's run is settled: that window is delivered.
		p.boundary, p.pendState = 0, nil
		p.stats.Windows++
		p.stats.Watermark = p.mark
	}
	return true
}

// pendLocked is the end of a window, not the drain's last, whose last alerts are held: the
// next window decides what they were. It returns the state the window commits once they are
// settled; until then the checkpoint stays before them.
func (p *Pump) pendLocked() *checkpoint.State {
	p.boundary = p.scanned
	p.pendState = p.stateAt(p.frontier, false)
	return p.stateAt(p.scanned, true)
}

// endLocked is the end of the drain's last window (it reaches now) with a run still held:
// nothing sent after it was indexed, and it is not yet systematic. Ending a window proves
// nothing about the run, so the checkpoint stays before it and its counts are saved with
// the checkpoint (the state endLocked returns): the next drain reads and sends the run again,
// after it what is new, and goes on counting. Only a run that has ended quietDrains drains in a
// row without growing is released as rare bad alerts (endLocked returns nil).
func (p *Pump) endLocked(to time.Time) *checkpoint.State {
	batches, _ := p.runLocked()
	n := 0
	for _, d := range p.held {
		n += len(d.rejected)
	}
	h := checkpoint.Held{Batches: batches, Records: n, Through: to, Quiet: 1}
	if !p.carry.Through.IsZero() && batches == p.carry.Batches && n <= p.carry.Records {
		h.Quiet = p.carry.Quiet + 1 // nothing new joined the run
	}
	if h.Quiet >= quietDrains {
		p.Log.Warn("Splunk refused the last alerts read, and nothing newer has come to be sent after them for several polls: "+
			"they count as rare bad alerts and go to the dead-letter file", "alerts", n, "polls", h.Quiet)
		p.releaseLocked()
		return nil
	}
	st := p.pendState
	if st == nil {
		st = p.stateAt(p.frontier, false)
	}
	st.Held = &h
	p.stats.Held = n
	p.Log.Warn("Splunk refused the last alerts read; they are held back, neither committed nor dead-lettered, and sent again "+
		"with the next poll: if Splunk then takes a newer alert, they go to the dead-letter file as rare bad alerts; if it goes "+
		"on refusing, delivery stops", "alerts", n, "refused_whole_batches", batches, "polls", h.Quiet)
	return st
}

// tagAt returns the tag of record seq, if it is still kept.
func (p *Pump) tagAt(seq uint64) *tag {
	if seq < p.tagFirst || seq-p.tagFirst >= uint64(len(p.tagBuf)) {
		return nil
	}
	return p.tagBuf[seq-p.tagFirst]
}

// refusedAll says what Splunk refused and what to check.
func refusedAll(held []done, batches, records int) error {
	var r hec.Rejected
	for _, d := range held {
		if d.whole {
			r = d.rejected[0]
		}
	}
	return fmt.Errorf("%w: it refused all %d alerts of the last %d batches as malformed (for example alert %s: HEC code %d %q). "+
		"That is not a rare bad alert, so delivery stops instead of filling the dead-letter file. Check for a proxy or gateway "+
		"between this host and HEC that alters request bodies, and the index, sourcetype, source and host settings (Splunk may "+
		"refuse one of them, or the token may not allow it). These alerts were not written to the dead-letter file and the "+
		"checkpoint stays before them: they are sent again once the cause is fixed",
		ErrRefusedAll, records, batches, r.ID, r.Code, r.Text)
}

// stageLocked records the state up to the frontier as the one to save next.
func (p *Pump) stageLocked() {
	if p.frontier > p.tagFirst { // keep the frontier's tag, drop those before it
		k := min(p.frontier-p.tagFirst, uint64(len(p.tagBuf)))
		p.tagBuf = p.tagBuf[k:]
		p.tagFirst += k
	}
	if p.boundary > 0 {
		return // inside an earlier window whose run is held: its checkpoint stays (a failure stopped the release)
	}
	if t := p.tagAt(p.frontier); t != nil && t.gen == p.gen {
		p.win.Position, _ = json.Marshal(t.pos)
	} else {
		p.win.Position = nil // the frontier is the end of the earlier window: this one starts
	}
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
		st := p.stateAt(p.frontier, false)
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

// stateAt builds the checkpoint with the records up to upTo delivered: done means the
// window is finished.
func (p *Pump) stateAt(upTo uint64, done bool) *checkpoint.State {
	st := &checkpoint.State{Watermark: p.mark, Updated: p.Now().UTC()}
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
//
// If Splunk refused the last alerts read, Drain returns nil with the checkpoint before them
// and their count saved in it (Stats.Held): the next drain sends them again, and what came
// after them, and so finds out whether they were rare bad alerts or the start of a
// systematic refusal (see endLocked).
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
	p.mu.Lock()
	p.carry = checkpoint.Held{}
	if st.Held != nil {
		p.carry = *st.Held
	}
	p.stats.Held = 0
	p.mu.Unlock()
	held := false // the last window ended with a run of refused alerts held
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
				to = st.Watermark
			}
			w = checkpoint.Window{From: st.Watermark.Add(-p.Overlap), To: to}
		}
		next, h, err := p.window(ctx, st, w, resume, held, fresh)
		if err != nil {
			return err
		}
		if fresh {
			return nil // a fresh window reaching now is done
		}
		st, held = next, h
		if !held {
			p.mu.Lock()
			p.carry = checkpoint.Held{} // the run the checkpoint held is gone from its window
			p.mu.Unlock()
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

// window reads and delivers one window and returns the committed state after it. With
// cont, the window before it ended with a run of refused alerts held: the run stays held,
// ahead of this window's alerts, and st is the earlier window's state once the run is
// settled. final is the drain's last window (it reaches now). held reports that the
// window (not final) ended with a run held: the state returned is not committed yet.
func (p *Pump) window(ctx context.Context, st *checkpoint.State, w checkpoint.Window, resume *defender.Position, cont, final bool) (next *checkpoint.State, held bool, err error) {
	p.mu.Lock()
	p.gen++
	gen := p.gen
	if !cont {
		p.nextSeq, p.frontier, p.scanned = 1, 0, 0
		p.confirmed = map[uint64]done{}
		p.tagBuf, p.tagFirst = nil, 1
		p.held, p.heldAt, p.halted = nil, 0, false
		p.boundary, p.pendState = 0, nil
		p.stats.Watermark = st.Watermark
	}
	firstSeq := p.nextSeq
	p.failed, p.saveErr = nil, nil
	p.win = &checkpoint.Window{From: w.From, To: w.To, Position: w.Position}
	p.mark = st.Watermark
	p.prior = st.Delivered
	p.recent = p.recent[:0]
	p.floor = w.To.Add(-p.Overlap)
	through := p.carry.Through
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
		t := &tag{gen: gen, seq: seq, pos: pr.Position(), old: a.LastUpdate.Before(through)}
		p.tagBuf = append(p.tagBuf, t)
		p.stats.Read++
		p.mu.Unlock()
		return p.sink.Add(sendCtx, hec.Record{Time: a.LastUpdate, Event: a.Raw, ID: a.ID}, t)
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
	// A run of refused alerts still held at the end: what follows it decides.
	var pending, carry *checkpoint.State
	if p.scanned == last && p.failed == nil && len(p.held) > 0 && readErr == nil && flushErr == nil && ctx.Err() == nil {
		if !final {
			pending = p.pendLocked()
		} else {
			carry = p.endLocked(w.To)
		}
	}
	for p.saving {
		p.cond.Wait()
	}
	failed, saveErr, complete := p.failed, p.saveErr, p.frontier == last
	p.mu.Unlock()

	switch {
	case saveErr != nil:
		return nil, false, saveErr
	case failed != nil && !errors.Is(failed, context.Canceled):
		return nil, false, fmt.Errorf("delivery failed: %w", failed)
	case readErr != nil && ctx.Err() == nil && !errors.Is(readErr, context.Canceled):
		return nil, false, readErr
	case flushErr != nil && ctx.Err() == nil:
		return nil, false, flushErr
	case pending != nil:
		p.Log.Info("window read; Splunk refused its last alerts: they are held back until what follows shows whether the refusal is systematic",
			"from", w.From, "to", w.To, "alerts", last-firstSeq+1)
		return pending, true, nil
	case carry != nil:
		if err := p.Store.Save(carry); err != nil {
			return nil, false, err
		}
		p.mu.Lock()
		p.stats.Commits++
		p.stats.LastCommit = time.Now()
		p.mu.Unlock()
		return nil, false, nil
	case ctx.Err() != nil || !complete:
		if ctx.Err() != nil {
			return nil, false, ctx.Err()
		}
		return nil, false, errors.New("delivery stopped before every alert was confirmed")
	}
	// The whole window is confirmed: move the watermark.
	p.mu.Lock()
	next = p.stateAt(last, true)
	p.mu.Unlock()
	if err := p.Store.Save(next); err != nil {
		return nil, false, err
	}
	p.mu.Lock()
	p.stats.Windows++
	p.stats.Commits++
	p.stats.LastCommit = time.Now()
	p.stats.Watermark = next.Watermark
	p.mu.Unlock()
	p.Log.Info("window delivered", "from", w.From, "to", w.To, "alerts", last-firstSeq+1, "calls", ws.Calls, "skipped_as_delivered", ws.Delivered)
	return next, false, nil
}

// DeadLetterPath is the dead-letter file beside an input's checkpoint.
func DeadLetterPath(stateDir, input string) string {
	name := checkpoint.FileName(input)
	return filepath.Join(stateDir, name[:len(name)-len(".json")]+".deadletter.jsonl")
}

func newCond(p *Pump) *sync.Cond { return sync.NewCond(&p.mu) }

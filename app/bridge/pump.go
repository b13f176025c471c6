package bridge

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"ta-defender-alerts/app/checkpoint"
)

// Config is how a pump runs. Store and Log are required.
type Config struct {
	Store   *checkpoint.Store
	Log     *slog.Logger
	Start   time.Duration // how far back a first run reads
	Overlap time.Duration // how far back each window re-reads
	// TimeResolution is the Source's (defender.TimeResolution): windows, and so the
	// watermarks saved, end on it. 0: no rounding.
	TimeResolution time.Duration
	// Clock, if set, is the source's clock (Microsoft's time): windows end at its "now", so
	// a host clock that is off neither skips alerts nor delays them. Default Now.
	Clock func(ctx context.Context) (time.Time, error)
	Now   func() time.Time // the host's clock; default time.Now
	// Grace is how long in-flight batches may take to confirm after a stop; default 5s.
	Grace time.Duration
	// DeadLetter is the file rejected records go to (JSON lines, 0600).
	DeadLetter string
	// MaxAhead bounds how many records reading may run ahead of the first one the sink has
	// not answered for: while one batch waits (a lost ack, a retry), later ones confirm and
	// leave the sink's window, but the pump keeps every record's tag until the checkpoint
	// can pass them (and its position until the destination takes its batch whole: Taken).
	// Default 65,536 (about 30 MiB of them at worst, positions and all: a lost ack with acks
	// after 1 s holds the checkpoint about 10 s while some 60,000 alerts are read).
	// It counts from the first record not answered for, not from the checkpoint: a held run
	// of refused records (a few batches at most) sits between them, and only later answers
	// release it. See Sink for what a sink must do so that the wait always ends.
	MaxAhead int
}

// Pump moves records from a Source to a Sink for one input and commits what is confirmed.
// See the package comment for how its goroutines meet.
type Pump struct {
	cfg    Config
	source Source
	sink   Sink

	mu      sync.Mutex
	cond    *sync.Cond // broadcast whenever anything below changes that a waiter waits on
	gen     uint64     // window generation
	nextSeq uint64     // seq of the next record taken
	front   frontier
	tags    tagBuf                // the tags of the frontier's record and later ones
	journal map[uint64]*batchNote // batches after the frontier taken or confirmed, by first seq (journal.go)
	failed  error                 // the first failure the sink reported, or the frontier's stop
	stats   Stats

	// A window, not the drain's last, whose last records are held (see pendLocked): the next
	// window settles them.
	boundary  uint64            // its last seq; 0: none
	pendState *checkpoint.State // its state before them, what the checkpoint keeps meanwhile

	// The window being read, and what its checkpoints hold (see stateAt).
	win     *checkpoint.Window
	mark    time.Time        // the watermark of the states saved during this window
	prior   []checkpoint.Key // delivered keys from earlier windows (lut >= window start)
	recent  []seqKey         // keys handed on in this window, inside the next overlap
	floor   time.Time        // next window's start: keys below it are not kept
	dirty   bool             // a newer confirmed state awaits saving
	saving  bool             // the saver goroutine runs
	saveErr error
	// Snapshots the saver took and wrote, counted: a Pending report waits for its own.
	saveTaken, saveDone uint64
	// The saver's snapshots go as quick saves (checkpoint.Store.SaveQuick: no fsync) between
	// durable ones, at least every durableEvery, and at once when a ticket was declared void.
	lastDurable time.Time
	needDurable bool
	// The saver's lists, reused from one snapshot to the next (it takes one at a time, and
	// the checkpoint keeps nothing of them after a save returns).
	saveKeys  []checkpoint.Key
	saveChain []checkpoint.Pending

	skewWarned bool
	skewLogged time.Duration
}

// quietDrains is how many drains in a row may end with a run of refused alerts held, nothing
// sent after it and the run not growing, before the run counts as rare bad alerts after all:
// a quiet tenant's last alert may be a bad one, and nothing newer comes to show that Splunk
// takes the rest. A systematic refusal shows itself sooner in a tenant with alerts to send:
// its next alerts are refused too.
const quietDrains = 3

type seqKey struct {
	seq uint64
	key checkpoint.Key
}

// Stats count a pump's work.
type Stats struct {
	Read       int // alerts handed on by the reader
	Confirmed  int // alerts confirmed by the sink
	Rejected   int // alerts Splunk refused, written to the dead-letter file
	Resent     int // alerts sent again after a lost reply or ack
	Skipped    int // versions dropped as delivered before (overlap)
	Held       int // alerts Splunk refused, held back at the end of the last drain (see Drain)
	Recovered  int // alerts an earlier process left pending that the sink confirmed after a restart
	Windows    int
	Commits    int
	LastCommit time.Time
	Watermark  time.Time
}

// New makes a pump that reads src and delivers to the sink open makes with the pump's
// report.
func New(cfg Config, src Source, open OpenSink) *Pump {
	if cfg.MaxAhead <= 0 {
		cfg.MaxAhead = 65536
	}
	if cfg.Grace == 0 {
		cfg.Grace = 5 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	p := &Pump{cfg: cfg, source: src}
	p.cond = sync.NewCond(&p.mu)
	p.front.reset()
	p.tags.reset()
	p.journal = map[uint64]*batchNote{}
	p.sink = open(p.report)
	return p
}

// Close ends the pump's part in a collection: an outcome that comes later is ignored, and
// Close returns once a checkpoint being written is on disk. Call it after the sink's
// deliveries are done (their outcomes may still move the checkpoint) and before the
// checkpoint is released, so that no save runs while another process could take the lock.
func (p *Pump) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.gen++
	for p.saving {
		p.cond.Wait()
	}
}

// Stats returns a copy of the counters.
func (p *Pump) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stats
}

// report is the sink's callback: what became of a batch.
func (p *Pump) report(o Outcome) {
	p.mu.Lock()
	defer p.mu.Unlock()
	t := o.Last
	if t != nil && t.gen != p.gen {
		return // a batch of a window this pump already gave up on
	}
	if o.Taken {
		if t != nil {
			p.tags.forgetPositions(t.seq-uint64(o.N)+1, t.seq)
		}
		return
	}
	if o.Pending {
		// Taken, not confirmed: only the journal hears of it. The report returns once the
		// checkpoint holding it is on disk, so that a sink that waits for it before sending
		// more loses, in a crash, at most what it had not yet reported.
		if t != nil && o.Err == nil && p.noteLocked(o, t.seq-uint64(o.N)+1) {
			p.kickLocked()
			want := p.saveTaken + 1 // the next snapshot holds it
			for p.saveDone < want && p.saveErr == nil && p.gen == t.gen && (p.saving || p.dirty) {
				p.cond.Wait()
			}
		}
		return
	}
	p.stats.Resent += o.Resent // sent again, confirmed or not: Splunk may hold them twice
	if o.Err != nil || t == nil {
		err := o.Err
		if err == nil {
			err = errors.New("a sink confirmed records without their tag")
		}
		if p.failed == nil {
			p.failed = err
		}
		p.cond.Broadcast()
		return
	}
	first := t.seq - uint64(o.N) + 1
	a := newAnswer(t.seq, o.N, o.Rejected, o.Sent)
	a.counted = a.whole && p.tags.allOld(first, t.seq)
	noted := p.noteLocked(o, first)
	p.front.add(first, a)
	p.stats.Confirmed += o.N - len(a.rejected)
	from := p.front.at
	if err := p.front.advance(p.settleLocked); err != nil {
		p.failed = err
	}
	if p.front.at != from {
		p.settledLocked()
		p.stageLocked()
	} else if noted {
		p.kickLocked()
	}
	p.cond.Broadcast()
}

// settleLocked writes a settled batch's refused records to the dead-letter file: they were
// rare bad alerts.
func (p *Pump) settleLocked(d answer) error {
	if len(d.rejected) == 0 {
		return nil
	}
	if err := p.deadLetter(d.rejected); err != nil {
		return err
	}
	for _, r := range d.rejected {
		if r.By != "" {
			p.cfg.Log.Error("the "+r.By+" could not send an alert ("+r.Text+"); it was written to the dead-letter file",
				"alert_id", r.ID, "file", p.cfg.DeadLetter)
			continue
		}
		p.cfg.Log.Error("Splunk refused an alert as malformed; it was written to the dead-letter file",
			"alert_id", r.ID, "hec_code", r.Code, "hec_text", r.Text, "file", p.cfg.DeadLetter)
	}
	p.stats.Rejected += len(d.rejected)
	return nil
}

// settledLocked follows a frontier that moved: past the end of an earlier window whose last
// records were held, that window is delivered.
func (p *Pump) settledLocked() {
	if p.boundary > 0 && p.front.at >= p.boundary {
		p.boundary, p.pendState = 0, nil
		p.stats.Windows++
		p.stats.Watermark = p.mark
	}
}

// tagBuf keeps the tags of records first, first+1, …
type tagBuf struct {
	buf   []*Tag
	first uint64
}

func (b *tagBuf) reset()     { b.buf, b.first = nil, 1 }
func (b *tagBuf) add(t *Tag) { b.buf = append(b.buf, t) }

// at returns the tag of record seq, if it is still kept.
func (b *tagBuf) at(seq uint64) *Tag {
	if seq < b.first || seq-b.first >= uint64(len(b.buf)) {
		return nil
	}
	return b.buf[seq-b.first]
}

// dropBefore forgets the tags before record seq's.
func (b *tagBuf) dropBefore(seq uint64) {
	if seq > b.first {
		k := min(seq-b.first, uint64(len(b.buf)))
		clear(b.buf[:k]) // the array keeps its front until append moves it: let those tags go now
		b.buf = b.buf[k:]
		b.first += k
	}
}

// forgetPositions lets go of the positions of records first … last-1 (hundreds of bytes
// each, held for as long as acks take): last keeps its own.
func (b *tagBuf) forgetPositions(first, last uint64) {
	for s := max(first, b.first); s < last; s++ {
		if t := b.at(s); t != nil {
			t.pos = nil
		}
	}
}

// allOld reports whether records first … last were all counted in the carried run.
func (b *tagBuf) allOld(first, last uint64) bool {
	for s := first; s <= last; s++ {
		if t := b.at(s); t == nil || !t.old {
			return false
		}
	}
	return true
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
	st, err := p.cfg.Store.Load()
	if err != nil {
		return err
	}
	now, err := p.sourceNow(ctx)
	if err != nil {
		return err
	}
	if st == nil {
		st = &checkpoint.State{Watermark: now.Add(-p.cfg.Start).Truncate(p.cfg.TimeResolution)}
		p.cfg.Log.Info("first run: reading alerts updated since the start time", "start", st.Watermark, "checkpoint", p.cfg.Store.Path())
	} else if st, err = p.recoverPending(ctx, st); err != nil {
		return err
	}
	p.mu.Lock()
	p.front.carry = checkpoint.Held{}
	if st.Held != nil {
		p.front.carry = *st.Held
	}
	p.stats.Held = 0
	p.mu.Unlock()
	held := false // the last window ended with a run of refused alerts held
	for {
		var w checkpoint.Window
		fresh := st.Window == nil
		if !fresh {
			w = *st.Window
			p.cfg.Log.Info("finishing a window left part-way", "from", w.From, "to", w.To)
		} else {
			// A clock that stepped back never moves the checkpoint back: the window then ends
			// at the watermark (it re-reads the overlap, and delivers nothing twice).
			to := now.Truncate(p.cfg.TimeResolution)
			if to.Before(st.Watermark) {
				to = st.Watermark
			}
			w = checkpoint.Window{From: st.Watermark.Add(-p.cfg.Overlap), To: to}
		}
		next, h, err := p.window(ctx, st, w, held, fresh)
		if err != nil {
			return err
		}
		if fresh {
			return nil // a fresh window reaching now is done
		}
		st, held = next, h
		if !held {
			p.mu.Lock()
			p.front.carry = checkpoint.Held{} // the run the checkpoint held is gone from its window
			p.mu.Unlock()
		}
	}
}

// sourceNow is the source's time (Clock), else the host's. A difference of more than a minute
// between the two is logged as a warning, again whenever it changes by more than a minute.
func (p *Pump) sourceNow(ctx context.Context) (time.Time, error) {
	host := p.cfg.Now().UTC()
	if p.cfg.Clock == nil {
		return host, nil
	}
	now, err := p.cfg.Clock(ctx)
	if err != nil {
		return time.Time{}, err
	}
	now = now.UTC()
	skew := now.Sub(host)
	if skew.Abs() > time.Minute && (!p.skewWarned || (skew-p.skewLogged).Abs() > time.Minute) {
		p.cfg.Log.Warn("this host's clock differs from Microsoft's; windows follow Microsoft's clock, but fix the host's time (NTP)",
			"host_time", host.Format(time.RFC3339), "microsoft_time", now.Format(time.RFC3339), "host_behind_by", skew.Round(time.Second).String())
		p.skewWarned, p.skewLogged = true, skew
	}
	return now, nil
}

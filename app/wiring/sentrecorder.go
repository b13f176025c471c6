package wiring

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"sync"
	"time"

	"ta-defender-alerts/app/bridge"
	"ta-defender-alerts/app/checkpoint"
)

// sentRecorder wraps a sink so that the nested alerts it confirms are recorded in sent, and
// compacts the memory at most every saveEvery (and when asked, at the end). What it records
// reaches the memory's journal before the pump hears of the outcome, so before a checkpoint
// can move past it: a crash loses none of it. A batch the destination took but has not
// confirmed is noted under its ticket, so that a restart that finds it confirmed (Recover)
// counts its alerts as sent too.
func sentRecorder(open bridge.OpenSink, sent *checkpoint.Sent, log *slog.Logger) bridge.OpenSink {
	return func(report func(bridge.Outcome)) bridge.Sink {
		r := &recorder{sent: sent, at: map[*bridge.Tag]int{}, tickets: map[*bridge.Tag][]string{}, log: log}
		r.inner = open(func(o bridge.Outcome) {
			r.outcome(o)
			report(o)
		})
		if rc, ok := r.inner.(bridge.Recoverer); ok {
			return recoveringRecorder{r, rc}
		}
		return r
	}
}

const saveEvery = 30 * time.Second

type recorder struct {
	inner bridge.Sink
	sent  *checkpoint.Sent
	log   *slog.Logger

	mu        sync.Mutex
	base      int     // the number of the first entry in q
	q         []added // records added, in order, not yet answered for
	at        map[*bridge.Tag]int
	tickets   map[*bridge.Tag][]string // the tickets a batch not yet answered for was taken under
	lastSaved time.Time
	broken    bool // an Add failed: nothing is recorded until every entry up to brokenAt is answered for (see Add)
	brokenAt  int
	started   bool // an outcome came: the tickets of an earlier process are of no more use
	warned    bool // the journal failed and it was said
}

type added struct {
	id    string
	t     time.Time
	alert bool // a nested alert with a key: recorded once confirmed
	done  bool
	tag   *bridge.Tag
}

func (r *recorder) Add(ctx context.Context, rec bridge.Record, t *bridge.Tag) error {
	r.mu.Lock()
	at := r.base + len(r.q)
	r.at[t] = at
	r.q = append(r.q, added{id: rec.ID, t: rec.EventTime, alert: rec.Nested && rec.ID != "" && !rec.EventTime.IsZero(), tag: t})
	r.mu.Unlock()
	err := r.inner.Add(ctx, rec, t)
	if err != nil {
		// Whether the sink kept the record is not known, so the records an outcome covers
		// (counted back from its last) cannot be told apart: record nothing until every
		// entry up to this one is answered for. Then the sink kept this record and the
		// counts agree again. Had it dropped the record, the count of the batch around it
		// leaves an earlier entry unanswered for good and recording stays off: alerts may
		// be sent twice, never lost.
		r.mu.Lock()
		if r.base <= at {
			r.broken, r.brokenAt = true, max(r.brokenAt, at)
		}
		r.mu.Unlock()
	}
	return err
}

func (r *recorder) Flush(ctx context.Context) error { return r.inner.Flush(ctx) }

// outcome records the nested alerts of a confirmed batch: the N records up to Last. A failed
// batch's are answered for without being recorded; a batch taken with a ticket (Pending) is
// noted under it; one taken without (Taken) waits.
func (r *recorder) outcome(o bridge.Outcome) {
	if o.Last == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.started {
		r.started = true
		r.sent.ForgetEarlier()
	}
	end, ok := r.at[o.Last]
	if !ok {
		return
	}
	switch {
	case o.Pending && o.Void:
		for _, k := range r.tickets[o.Last] {
			r.sent.Settled(k)
		}
		delete(r.tickets, o.Last)
		return
	case o.Pending:
		if r.broken || len(o.Ticket) == 0 {
			return
		}
		var vs []checkpoint.Version
		for i := max(end-o.N+1, r.base); i <= end; i++ {
			if e := r.q[i-r.base]; e.alert && !e.done {
				vs = append(vs, checkpoint.Version{ID: e.id, T: e.t})
			}
		}
		k := ticketKey(o.Ticket)
		r.tickets[o.Last] = append(r.tickets[o.Last], k)
		r.warnLocked(r.sent.Taken(k, vs))
		return
	case !o.Final():
		return
	}
	refused := map[string]bool{}
	for _, x := range o.Rejected {
		refused[x.ID] = true
	}
	var vs []checkpoint.Version
	for i := max(end-o.N+1, r.base); i <= end; i++ {
		e := &r.q[i-r.base]
		if e.alert && !e.done && !refused[e.id] && o.Err == nil && !r.broken {
			vs = append(vs, checkpoint.Version{ID: e.id, T: e.t})
		}
		e.done = true
		delete(r.at, e.tag)
	}
	r.warnLocked(r.sent.Confirm(vs))
	for _, k := range r.tickets[o.Last] {
		r.sent.Settled(k)
	}
	delete(r.tickets, o.Last)
	n := 0
	for n < len(r.q) && r.q[n].done {
		n++
	}
	r.q, r.base = r.q[n:], r.base+n
	if r.broken && r.base > r.brokenAt {
		r.broken = false
	}
	if time.Since(r.lastSaved) >= saveEvery {
		r.lastSaved = time.Now()
		go r.save()
	}
}

func (r *recorder) warnLocked(err error) {
	if err != nil && !r.warned {
		r.warned = true
		r.log.Warn("the journal of incident alerts sent cannot be written; after a crash, alerts already sent may be sent again", "err", err)
	}
}

func (r *recorder) save() {
	if err := r.sent.Save(); err != nil {
		r.log.Warn("the memory of incident alerts sent cannot be saved; after a restart, alerts already sent may be sent again", "err", err)
		return
	}
	r.mu.Lock()
	r.warned = false
	r.mu.Unlock()
}

// ticketKey is a ticket in one spelling, whichever way the checkpoint wrote it back.
func ticketKey(raw json.RawMessage) string {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if dec.Decode(&v) == nil {
		if b, err := json.Marshal(v); err == nil {
			return string(b)
		}
	}
	return string(raw)
}

type recoveringRecorder struct {
	*recorder
	rc bridge.Recoverer
}

// Recover asks the sink, and records as sent the alerts of each batch it proves confirmed
// before the pump hears of it (the checkpoint then moves past that batch, unread).
func (r recoveringRecorder) Recover(ctx context.Context, tickets []json.RawMessage, proved func([]int)) ([]bool, error) {
	defer r.sent.ForgetEarlier()
	n := 0
	prove := func(k int) {
		got, err := r.sent.Prove(ticketKey(tickets[k]))
		n += got
		r.mu.Lock()
		r.warnLocked(err)
		r.mu.Unlock()
	}
	acked, err := r.rc.Recover(ctx, tickets, func(ks []int) {
		for _, k := range ks {
			prove(k)
		}
		if proved != nil {
			proved(ks)
		}
	})
	if err == nil && len(acked) == len(tickets) {
		for k, ok := range acked {
			if ok {
				prove(k)
			}
		}
	}
	if n > 0 {
		r.log.Info("incidents' alerts in batches confirmed before the restart are remembered as sent", "alerts", n)
	}
	return acked, err
}

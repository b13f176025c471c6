package bridge

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"time"

	"ta-defender-alerts/app/checkpoint"
)

// A run of batches refused whole is systematic, not a rare bad alert, once it spans this many
// batches and records: delivery stops there rather than empty itself into the dead-letter file.
const (
	refusedBatches = 3
	refusedRecords = 50
)

// errRefusedAll is in the error of a window stopped because Splunk refused every alert of
// several batches in a row.
var errRefusedAll = errors.New("Splunk refused every alert of several batches in a row")

// answer is a batch the sink has answered for, or the end of one: records last-n+1 … last.
type answer struct {
	last     uint64
	n        int
	rejected []Rejected // in record order
	sent     uint64     // when the last request that delivered some of its records was sent
	whole    bool       // the batch was refused whole
	counted  bool       // (whole batches) every record in it was read before the carried run's end
	old      bool       // (whole batches) counted by an earlier drain, in the run it carried
}

// newAnswer is the answer for the n records up to last; the sink lists their rejections in
// any order.
func newAnswer(last uint64, n int, rejected []Rejected, sent uint64) answer {
	rejected = slices.Clone(rejected)
	slices.SortFunc(rejected, func(a, b Rejected) int { return cmp.Compare(a.Index, b.Index) })
	return answer{last: last, n: n, rejected: rejected, sent: sent, whole: n > 0 && len(rejected) == n}
}

// split cuts a batch that is not refused whole before its refused end, if it has one.
func (d answer) split() (head, tail answer) {
	k := len(d.rejected)
	for k > 0 && d.rejected[k-1].Index == d.n-len(d.rejected)+k-1 {
		k--
	}
	t := len(d.rejected) - k // the refused end's length
	head = answer{last: d.last - uint64(t), n: d.n - t, rejected: d.rejected[:k], sent: d.sent}
	tail = answer{last: d.last, n: t, rejected: d.rejected[k:]}
	return head, tail
}

// frontier is the confirmation frontier of a drain's records, numbered from 1 in the order the
// source handed them on. The sink answers for batches in any order; the frontier takes them
// in record order and moves over each once it is settled: indexed, or its refused records
// shown to be rare bad ones. Everything up to the frontier may be committed.
//
// A run of refused records (the refused end of a batch, then batches refused whole) is held
// back, neither settled nor committed, until a record sent after them is indexed (then they
// were rare bad ones) or the run turns out systematic. "After" is the order of sending, not
// of the records: with several batches in flight, a batch sent before the refusals may be
// indexed although it comes later; it proves nothing about them and is held with them.
//
// The frontier does no I/O of its own (the settle function it is given writes the dead-letter
// file) and takes no lock: the pump calls it under its own.
type frontier struct {
	at       uint64            // every record with seq <= at is settled
	scanned  uint64            // every record with seq <= scanned is answered for (at <= scanned)
	answered map[uint64]answer // first seq → an answer beyond scanned
	held     []answer          // answers (or their ends) held back from at+1 to scanned: a run of refusals
	heldAt   uint64            // the latest refusal among them, on the sink's count
	halted   bool              // a run turned out systematic, or settle failed: the frontier moves no more
	// carry is the run an earlier drain ended with (the checkpoint's Held): its batches count
	// once although the run is sent again; zero: a new run.
	carry checkpoint.Held
}

// reset starts the frontier over for a new window; a carried run stays.
func (f *frontier) reset() {
	*f = frontier{answered: map[uint64]answer{}, carry: f.carry}
}

// add files the answer for records first … a.last.
func (f *frontier) add(first uint64, a answer) { f.answered[first] = a }

// advance takes the answers in record order as far as they go and moves the frontier. settle
// is called for each answer (or part) before the frontier moves over it; its error halts the
// frontier there. advance returns that error, or one wrapping errRefusedAll once the held run
// is systematic.
func (f *frontier) advance(settle func(answer) error) error {
	var err error
	for !f.halted {
		d, ok := f.answered[f.scanned+1]
		if !ok {
			break
		}
		delete(f.answered, f.scanned+1)
		f.scanned = d.last
		if d.whole {
			d.old = d.counted && !f.carry.Through.IsZero()
			f.hold(d)
			if batches, records := f.run(); batches >= refusedBatches && records >= refusedRecords {
				f.halted = true
				err = refusedAll(f.held, batches, records)
			}
			continue
		}
		if len(f.held) > 0 {
			if d.sent <= f.heldAt {
				f.hold(d) // sent before the held records were refused
				continue
			}
			// An indexed record sent after them ends the run.
			if err := f.release(settle); err != nil {
				return err
			}
		}
		// The batch's own refusals before an indexed record are rare bad ones (a batch's
		// records go in order, each part after the reply to the one before); a refused end
		// may start the next run.
		head, tail := d.split()
		if err := f.settle(head, settle); err != nil {
			return err
		}
		if tail.n > 0 {
			f.hold(tail)
		}
	}
	return err
}

func (f *frontier) hold(d answer) {
	f.held = append(f.held, d)
	for _, r := range d.rejected {
		f.heldAt = max(f.heldAt, r.Refused)
	}
}

// settle moves the frontier over d once settle has taken its refusals. If settle fails, the
// frontier halts there: a later answer must not carry it over refusals that were not
// dead-lettered.
func (f *frontier) settle(d answer, settle func(answer) error) error {
	if d.n == 0 {
		return nil
	}
	if err := settle(d); err != nil {
		f.halted = true
		return err
	}
	f.at = d.last
	f.carry = checkpoint.Held{} // a run carried from an earlier drain is settled
	return nil
}

// release settles the held run: what was sent after it was indexed, so its refusals were rare
// bad ones.
func (f *frontier) release(settle func(answer) error) error {
	for len(f.held) > 0 {
		if err := f.settle(f.held[0], settle); err != nil {
			return err
		}
		f.held = f.held[1:]
	}
	f.held, f.heldAt = nil, 0
	return nil
}

// run counts the held run: batches refused whole (with those of earlier drains), and their
// records.
func (f *frontier) run() (batches, records int) {
	batches = f.carry.Batches
	for _, d := range f.held {
		if d.whole {
			records += d.n
			if !d.old {
				batches++
			}
		}
	}
	return batches, records
}

// carried is the held run as a drain whose last window ended at to leaves it to the next
// drain. Quiet counts the drains in a row that ended with it and added nothing to it.
func (f *frontier) carried(to time.Time) checkpoint.Held {
	batches, _ := f.run()
	n := 0
	for _, d := range f.held {
		n += len(d.rejected)
	}
	h := checkpoint.Held{Batches: batches, Records: n, Through: to, Quiet: 1}
	if !f.carry.Through.IsZero() && batches == f.carry.Batches && n <= f.carry.Records {
		h.Quiet = f.carry.Quiet + 1 // nothing new joined the run
	}
	return h
}

// refuser names what refused the held run, for the log: the sink that could not send its
// records (Rejected.By), else Splunk.
func (f *frontier) refuser() string {
	for _, d := range f.held {
		for _, r := range d.rejected {
			if r.By != "" {
				return "the " + r.By
			}
		}
	}
	return "Splunk"
}

// refusedAll says what Splunk refused and what to check.
func refusedAll(held []answer, batches, records int) error {
	var r Rejected
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
		errRefusedAll, records, batches, r.ID, r.Code, r.Text)
}

package bridge

import (
	"context"
	"encoding/json"
	"errors"
	"time"
)

// Record is one version of one item a Source hands on: an alert as it was at one update.
type Record struct {
	ID   string    // the item's id; with Time, the version's key
	Time time.Time // the version's time (an alert's lastUpdateTime), also the event's time
	// Data is the item as the source sent it (a JSON object). It is only valid during the
	// call that hands it on: a Sink copies what it keeps.
	Data []byte
	// Sourcetype and EventTime, if set, are the event's own instead of the sink's sourcetype
	// and Time: a record that is part of another item's version (an alert nested in an
	// incident) is keyed by that version's time but indexed as itself.
	Sourcetype string
	EventTime  time.Time
	// Nested marks a record that is part of the version of the record after it (an alert
	// of an incident): it is delivered and confirmed like any other, and its Position is the
	// one before that version, but it is no version of its own: the overlap's dedupe does not
	// keep its key.
	Nested bool
}

// When is the event's time: EventTime if set, else Time.
func (r Record) When() time.Time {
	if !r.EventTime.IsZero() {
		return r.EventTime
	}
	return r.Time
}

// Position is where a Source stands inside a window, opaque to the pump: the pump keeps the
// one each record came with and saves the confirmation frontier's in the checkpoint, as its
// JSON, for the Source to resume from (Window.Resume). A nil Position saves none: a resume
// starts the window over.
type Position = json.Marshaler

// Window asks a Source for every version whose time is in [From, To).
type Window struct {
	From, To time.Time
	// Resume is the Position an earlier read of this window saved (its JSON); nil: from the
	// start. A Source that cannot read it returns an error wrapping ErrPosition.
	Resume json.RawMessage
	// Delivered reports versions confirmed by earlier windows (the overlap): a Source drops
	// them, and counts them in SourceStats.Skipped.
	Delivered func(id string, t time.Time) bool
}

// SourceStats count one read of a window.
type SourceStats struct {
	Calls   int // calls to the source's service
	Skipped int // versions dropped as delivered (Window.Delivered)
}

// Source is a feed: it reads a window, from a position, and hands every version in it to
// emit at most once, each with the Position that includes it. emit's error stops the read
// and is returned unchanged; emit may block (the sink is busy).
type Source interface {
	Read(ctx context.Context, w Window, emit func(Record, Position) error) (SourceStats, error)
}

// ErrPosition is in the error of a Source that cannot read Window.Resume.
var ErrPosition = errors.New("the saved position cannot be read")

// Tag travels with each record into the Sink, which hands back the tag of the last record of
// each batch it answers for (Outcome.Last). A Sink keeps it and nothing more.
type Tag struct {
	gen uint64 // the window it belongs to: a late outcome of an abandoned window is ignored
	seq uint64 // its number in the drain
	pos Position
	old bool // counted in a held run by an earlier drain (updated before the carried run's end)
}

// Outcome is what a Sink reports about a batch: the N records it took up to and including
// the one tagged Last. With Err nil every one of them is confirmed: delivered, or refused and
// listed in Rejected. With Err set none is, and the window stops.
//
// With Pending set, the outcome is not final: the destination took the whole batch and may
// confirm it later; Ticket is what to ask it about after a restart (see Recoverer). A Sink
// may report a batch Pending more than once (sent again: a new ticket, and either one
// confirms it), always before its final Outcome, which it reports as usual. A Pending
// outcome has no Err and no Rejected; it never moves the checkpoint by itself.
//
// With Taken set (and nothing else but Last and N), the outcome is not final either: the
// destination took every record of the batch in one request, so that request refused none,
// and the pump may let go of the positions of the records before Last (the frontier stops
// inside a batch only before a refused end). Sinks whose batches wait long for their
// confirmation report it to keep that memory small.
type Outcome struct {
	Last    *Tag
	N       int
	Pending bool
	Taken   bool
	Ticket  json.RawMessage // (Pending) the sink's, opaque to the pump: saved with the checkpoint
	// Void (with Pending): the destination forgot where the batch's earlier tickets were
	// taken (HEC restarted): they prove nothing, and the batch is being sent again.
	Void     bool
	Rejected []Rejected
	// Sent is when the last request that delivered records of the batch was sent (0: none
	// did), on the sink's own count of requests sent and refusals received (Rejected.Refused):
	// a batch sent after a refusal shows the destination took data after refusing it.
	Sent uint64
	// Resent counts records sent again after a lost reply or acknowledgement: the
	// destination may hold them twice.
	Resent int
	Err    error
}

// Final reports whether o is a batch's final outcome: not a Pending or Taken report, which
// only tell of a batch still waiting for its confirmation.
func (o Outcome) Final() bool { return !o.Pending && !o.Taken }

// Rejected is a record the destination refused as malformed, for the dead-letter file.
type Rejected struct {
	ID       string // the record's ID
	Index    int    // its place in its batch, from 0
	Envelope []byte // what was sent for it
	Code     int    // the destination's code and text for the refusal
	Text     string
	Refused  uint64 // when the refusal came, on the sink's count (see Outcome.Sent)
	// By names the sink that could not send the record, for the log and the dead-letter file
	// ("syslog output"); Text is then its reason and Code unused. Empty: Splunk refused it,
	// with HEC's Code and Text.
	By string
}

// Sink takes records and reports, through the function it was opened with, an Outcome for
// every batch of them, once, from any goroutine (from Add or Flush too, so it may not hold a
// lock the report needs). A sink must deliver what it holds without being given more: by
// itself (a timer), or by holding fewer than Config.MaxAhead records, since reading waits once
// it is that far ahead of the first record not answered for (the HEC sink holds at most a
// batch of 10,000 and sends it when its linger runs out; the stdout sink answers every 200).
type Sink interface {
	// Add queues a record; it may block (backpressure).
	Add(ctx context.Context, r Record, t *Tag) error
	// Flush sends what is queued.
	Flush(ctx context.Context) error
}

// Recoverer is a Sink that can tell, after a restart, whether batches an earlier process
// reported Pending were confirmed after all, so that they are not sent again.
type Recoverer interface {
	// Recover asks, after a restart, whether batches reported Pending by an earlier process
	// were confirmed. It never sends records. One bool per ticket; proved, if not nil, is
	// told the tickets proved so far as they are (the answers may not be asked twice).
	Recover(ctx context.Context, tickets []json.RawMessage, proved func(tickets []int)) ([]bool, error)
}

// OpenSink makes a Sink that reports through report: the pump opens its sink with its own.
type OpenSink func(report func(Outcome)) Sink

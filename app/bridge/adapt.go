package bridge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"ta-defender-alerts/app/defender"
	"ta-defender-alerts/app/hec"
)

// DefenderSource makes a Defender client a Source: an alert version is a Record (its
// lastUpdateTime its Time, its JSON its Data) and a defender.Position a Position.
func DefenderSource(c *defender.Client) Source { return defenderSource{c} }

type defenderSource struct{ c *defender.Client }

func (s defenderSource) Read(ctx context.Context, w Window, emit func(Record, Position) error) (SourceStats, error) {
	dw := defender.Window{From: w.From, To: w.To, Delivered: w.Delivered}
	if len(w.Resume) > 0 {
		dw.Resume = new(defender.Position)
		if err := json.Unmarshal(w.Resume, dw.Resume); err != nil {
			return SourceStats{}, fmt.Errorf("%w (%v)", ErrPosition, err)
		}
	}
	ws, err := s.c.ReadWindow(ctx, dw, func(a defender.Alert, pr *defender.Progress) error {
		return emit(Record{ID: a.ID, Time: a.LastUpdate, Data: a.Raw}, pr.Position())
	})
	return SourceStats{Calls: ws.Calls, Skipped: ws.Delivered}, err
}

// HECSink makes a HEC client a Sink: records go as hec.Records through a hec.BatchSender, which
// sends a batch when it is full or its first record has waited linger, and each batch's
// hec.Outcome comes back as an Outcome.
//
// With acks, every batch HEC takes whole is also reported Pending with its hec.Ticket (JSON),
// and the sink is a Recoverer: after a restart it asks HEC, on the earlier process's channel,
// about those tickets (hec.Client.Recover).
func HECSink(c *hec.Client, linger time.Duration) OpenSink {
	return func(report func(Outcome)) Sink {
		s := c.NewBatchSender(linger, func(o hec.Outcome) { report(fromHEC(o)) })
		s.OnTicket(func(b *hec.Batch, t hec.Ticket) {
			last, _ := b.Tag.(*Tag)
			if t.Void {
				if last != nil {
					report(Outcome{Last: last, N: b.Len(), Pending: true, Void: true})
				}
				return
			}
			raw, err := json.Marshal(t)
			if err != nil || last == nil {
				return // nothing to recover it by: it is sent again after a crash
			}
			report(Outcome{Last: last, N: b.Len(), Pending: true, Ticket: raw})
		})
		s.OnTaken(func(b *hec.Batch) {
			if last, _ := b.Tag.(*Tag); last != nil {
				report(Outcome{Last: last, N: b.Len(), Taken: true})
			}
		})
		return hecSink{s: s, c: c}
	}
}

type hecSink struct {
	s *hec.BatchSender
	c *hec.Client
}

// Recover asks HEC about tickets of an earlier process; one it cannot read is not confirmed.
func (h hecSink) Recover(ctx context.Context, tickets []json.RawMessage, proved func([]int)) ([]bool, error) {
	ts := make([]hec.Ticket, len(tickets))
	for i, raw := range tickets {
		if json.Unmarshal(raw, &ts[i]) != nil {
			ts[i] = hec.Ticket{} // no channel: answered false
		}
	}
	return h.c.RecoverEach(ctx, ts, proved)
}

func (h hecSink) Add(ctx context.Context, r Record, t *Tag) error {
	return h.s.Add(ctx, hec.Record{Time: r.When(), Event: r.Data, ID: r.ID, Sourcetype: r.Sourcetype}, t)
}

func (h hecSink) Flush(ctx context.Context) error { return h.s.Flush(ctx) }

// fromHEC is a hec.Outcome in the pump's words.
func fromHEC(o hec.Outcome) Outcome {
	last, _ := o.Batch.Tag.(*Tag)
	out := Outcome{Last: last, N: o.Batch.Len(), Sent: o.Sent, Resent: o.Resent, Err: o.Err}
	if len(o.Rejected) > 0 {
		out.Rejected = make([]Rejected, len(o.Rejected))
		for i, r := range o.Rejected {
			out.Rejected[i] = Rejected{ID: r.ID, Index: r.Index, Envelope: r.Envelope, Code: r.Code, Text: r.Text, Refused: r.Refused}
		}
	}
	return out
}

// Alarming reports whether a failure that clears by itself still deserves an ERROR line
// rather than a warning: HEC never acknowledged a batch, which is not a passing outage (a
// load balancer without sticky sessions, HEC restarting) and needs someone to look.
func Alarming(err error) bool { return errors.Is(err, hec.ErrNoAck) }

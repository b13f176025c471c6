package wiring

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"ta-defender-alerts/app/bridge"
	"ta-defender-alerts/app/checkpoint"
)

// takenSink takes each record as its own batch under a ticket (Pending), confirms those named
// in confirm, and answers a restart's question from acked.
type takenSink struct {
	report  func(bridge.Outcome)
	n       int
	confirm map[int]bool
	acked   map[string]bool // by ack_id
}

func (k *takenSink) open(report func(bridge.Outcome)) bridge.Sink {
	k.report = report
	return k
}

func (k *takenSink) Add(_ context.Context, _ bridge.Record, t *bridge.Tag) error {
	k.report(bridge.Outcome{Last: t, N: 1, Pending: true, Ticket: json.RawMessage(fmt.Sprintf(`{"channel":"c1","ack_id":%d}`, k.n))})
	if k.confirm[k.n] {
		k.report(bridge.Outcome{Last: t, N: 1})
	}
	k.n++
	return nil
}

func (k *takenSink) Flush(context.Context) error { return nil }

func (k *takenSink) Recover(_ context.Context, tickets []json.RawMessage, proved func([]int)) ([]bool, error) {
	out := make([]bool, len(tickets))
	var ks []int
	for i, raw := range tickets {
		var tk struct {
			AckID int `json:"ack_id"`
		}
		json.Unmarshal(raw, &tk)
		if out[i] = k.acked[fmt.Sprint(tk.AckID)]; out[i] {
			ks = append(ks, i)
		}
	}
	if proved != nil {
		proved(ks)
	}
	return out, nil
}

// A process killed before it saves its memory of alerts sent: the alerts of a batch it
// confirmed, and those of a batch HEC took and a restart proves confirmed, are remembered
// (the checkpoint is already past their incidents, so the next update of one would send them
// all again); those of a batch never confirmed are not (they would be lost).
func TestRecorderMemoryOutlivesACrash(t *testing.T) {
	path := filepath.Join(t.TempDir(), "in.incidents.sent")
	at := time.Date(2026, 12, 5, 9, 0, 0, 0, time.UTC)
	sent, err := checkpoint.OpenSent(path, SentHorizon, SentLimit, nil)
	if err != nil {
		t.Fatal(err)
	}
	k := &takenSink{confirm: map[int]bool{2: true}}
	s := sentRecorder(k.open, sent, quiet)(func(bridge.Outcome) {})
	s.(recoveringRecorder).lastSaved = time.Now() // no save: the process dies before one
	for i := range 3 {
		rec := bridge.Record{ID: fmt.Sprint("da", i), Time: at, EventTime: at, Nested: true, Data: []byte(`{}`)}
		if err := s.Add(context.Background(), rec, &bridge.Tag{}); err != nil {
			t.Fatal(err)
		}
	}

	// The restart: the checkpoint gives back tickets 0 and 1, spelt its own way; HEC says 0
	// was indexed, 1 not.
	back, err := checkpoint.OpenSent(path, SentHorizon, SentLimit, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !back.Has("da2", at) {
		t.Fatal("an alert confirmed before the crash is forgotten: its incident's next update sends it again")
	}
	k2 := &takenSink{acked: map[string]bool{"0": true}}
	s2 := sentRecorder(k2.open, back, quiet)(func(bridge.Outcome) {})
	tickets := []json.RawMessage{json.RawMessage(`{ "ack_id": 0, "channel": "c1" }`), json.RawMessage(`{"channel":"c1","ack_id":1}`)}
	acked, err := s2.(bridge.Recoverer).Recover(context.Background(), tickets, nil)
	if err != nil || len(acked) != 2 || !acked[0] || acked[1] {
		t.Fatalf("Recover answered %v, %v; want [true false]", acked, err)
	}
	if !back.Has("da0", at) {
		t.Error("the alert of a batch proved indexed after the restart is not remembered: the checkpoint moves past it, and its incident's next update sends it again")
	}
	if back.Has("da1", at) {
		t.Error("the alert of a batch HEC never confirmed counts as sent: an incident read again would leave it out (lost)")
	}
}

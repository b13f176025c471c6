package wiring

// Found by the session-24 review: the incident split and the recorder of alerts sent.

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"ta-defender-alerts/app/bridge"
	"ta-defender-alerts/app/checkpoint"
)

// defender.IncidentAlerts (which decides what is sent as ms365:defender:incident:alerts) reads
// the first member spelt exactly "alerts"; the split must not cut any other from the
// incident (a second "alerts" member, or one whose name is written with an escape), else an
// alert is neither its own event nor whole in the incident: such an incident goes whole.
func TestSplitCutsOnlyTheAlertsItSends(t *testing.T) {
	full := `{"alertId":"da1","lastUpdatedTime":"2026-11-30T10:00:00Z","title":"T","description":"EVIDENCE-THAT-MUST-SURVIVE","devices":[{"deviceDnsName":"h"}]}`
	for _, in := range []string{
		`{"incidentId":1,"lastUpdateTime":"2026-11-30T10:00:01Z","al\u0065rts":[` + full + `]}`,
		`{"incidentId":1,"lastUpdateTime":"2026-11-30T10:00:01Z","alerts":null,"alerts":[` + full + `]}`,
		`{"incidentId":1,"lastUpdateTime":"2026-11-30T10:00:01Z","alerts":[],"alerts":[` + full + `]}`,
	} {
		alerts, slim, err := splitIncident([]byte(in))
		if err != nil {
			continue // sent whole: nothing lost
		}
		kept := strings.Contains(string(slim), "EVIDENCE-THAT-MUST-SURVIVE")
		for _, a := range alerts {
			kept = kept || strings.Contains(string(a.raw), "EVIDENCE-THAT-MUST-SURVIVE")
		}
		if !kept {
			t.Errorf("input %s\n  alerts split out: %d, slim incident: %s\n  the alert's body is in neither event: lost", in, len(alerts), slim)
		}
	}
}

// errAfter is a sink that fails its first batch and confirms every later one, a record a batch.
type errAfter struct {
	report func(bridge.Outcome)
	n      int
}

func (k *errAfter) open(report func(bridge.Outcome)) bridge.Sink { k.report = report; return k }
func (k *errAfter) Add(_ context.Context, r bridge.Record, t *bridge.Tag) error {
	k.n++
	o := bridge.Outcome{Last: t, N: 1}
	if k.n == 1 {
		o.Err = context.DeadlineExceeded // HEC gave up on the batch
	}
	k.report(o)
	return nil
}
func (k *errAfter) Flush(context.Context) error { return nil }

// A batch that fails (Outcome.Err) is answered for in the recorder (nothing recorded), so its
// queue is trimmed: otherwise every record added afterwards, for the life of the process,
// would stay in it (with its *bridge.Tag, and through it its Position).
func TestRecorderForgetsAFailedBatch(t *testing.T) {
	sent, err := checkpoint.OpenSent(t.TempDir()+"/x.sent", SentHorizon, SentLimit, nil)
	if err != nil {
		t.Fatal(err)
	}
	k := &errAfter{}
	s := sentRecorder(k.open, sent, quiet)(func(bridge.Outcome) {})
	r := s.(*recorder)
	r.lastSaved = time.Now() // no save in the background to outlive the test
	const n = 10000
	for i := range n {
		rec := bridge.Record{ID: "da" + string(rune('a'+i%26)), Time: time.Now(), EventTime: time.Now(), Nested: true, Data: []byte(`{}`)}
		if err := s.Add(context.Background(), rec, &bridge.Tag{}); err != nil {
			t.Fatal(err)
		}
	}
	r.mu.Lock()
	q := len(r.q)
	r.mu.Unlock()
	if q > 10 {
		t.Errorf("after one failed batch and %d confirmed ones, the recorder still holds %d entries (want ~0): it grows for the life of the process", n-1, q)
	}
}

// hecLike is a sink that sends a batch once n records wait and the next arrives, as
// hec.BatchSender does: the send of batch failSend fails, its outcome says so, and the Add
// that set it off returns the error; keep says whether that Add's record stays queued.
type hecLike struct {
	n, failSend int
	keep        bool
	report      func(bridge.Outcome)
	buf         []string
	last        *bridge.Tag
	batches     int
	confirmed   map[string]bool
}

func (k *hecLike) open(report func(bridge.Outcome)) bridge.Sink { k.report = report; return k }

func (k *hecLike) Add(ctx context.Context, r bridge.Record, t *bridge.Tag) error {
	var err error
	if len(k.buf) == k.n {
		if err = k.send(); err != nil && !k.keep {
			return err
		}
	}
	k.buf, k.last = append(k.buf, r.ID), t
	return err
}

func (k *hecLike) send() error {
	k.batches++
	o := bridge.Outcome{Last: k.last, N: len(k.buf)}
	if k.batches == k.failSend {
		o.Err = context.Canceled
	} else {
		for _, id := range k.buf {
			k.confirmed[id] = true
		}
	}
	k.buf = k.buf[:0]
	k.report(o)
	return o.Err
}

func (k *hecLike) Flush(context.Context) error {
	if len(k.buf) == 0 {
		return nil
	}
	return k.send()
}

// One failed Add (HEC down, the send cancelled) must not stop the recorder for the life of
// the process: once the records around it are answered for, confirmed alerts are recorded
// again, else every later incident update re-sends all its alerts. And whatever the sink did
// with the failed Add's record, no alert is recorded that the sink did not confirm.
func TestRecorderRecoversFromAFailedAdd(t *testing.T) {
	for _, keep := range []bool{true, false} {
		sent, err := checkpoint.OpenSent(t.TempDir()+"/x.sent", SentHorizon, SentLimit, nil)
		if err != nil {
			t.Fatal(err)
		}
		k := &hecLike{n: 3, failSend: 3, keep: keep, confirmed: map[string]bool{}}
		s := sentRecorder(k.open, sent, quiet)(func(bridge.Outcome) {})
		s.(*recorder).lastSaved = time.Now() // no save in the background to outlive the test
		at := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
		const n = 30
		failed := 0
		for i := range n {
			rec := bridge.Record{ID: fmt.Sprintf("da%02d", i), Time: at, EventTime: at, Nested: true, Data: []byte(`{}`)}
			if s.Add(context.Background(), rec, &bridge.Tag{}) != nil {
				failed++
			}
		}
		if err := s.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
		if failed != 1 {
			t.Fatalf("keep=%v: %d Adds failed, want 1", keep, failed)
		}
		recorded := 0
		for i := range n {
			id := fmt.Sprintf("da%02d", i)
			if sent.Has(id, at) {
				recorded++
				if !k.confirmed[id] {
					t.Errorf("keep=%v: %s recorded as sent but never confirmed: an incident update would leave it out (lost)", keep, id)
				}
			}
		}
		// Batches 4 to 10 (records 9 to 29) were confirmed after the failure.
		if keep && recorded < 21 {
			t.Errorf("keep=%v: %d of the 21 alerts confirmed after the failed Add recorded: the recorder stopped for good", keep, recorded)
		}
	}
}

// takenThenFailed is a sink whose every batch (a record each) HEC takes whole (Taken) and
// then never acknowledges: the batch fails.
type takenThenFailed struct{ report func(bridge.Outcome) }

func (k *takenThenFailed) open(report func(bridge.Outcome)) bridge.Sink {
	k.report = report
	return k
}
func (k *takenThenFailed) Add(_ context.Context, _ bridge.Record, t *bridge.Tag) error {
	k.report(bridge.Outcome{Last: t, N: 1, Taken: true})
	k.report(bridge.Outcome{Last: t, N: 1, Err: context.DeadlineExceeded}) // the ack never came
	return nil
}
func (k *takenThenFailed) Flush(context.Context) error { return nil }

// A batch HEC took whole is not delivered until its ack comes: the recorder must not count
// its nested alerts as sent on the Taken report, or an incident read again after the ack
// failed would leave them out, and they would never reach Splunk.
func TestRecorderWaitsForTheAckNotTheTaking(t *testing.T) {
	sent, err := checkpoint.OpenSent(t.TempDir()+"/x.sent", SentHorizon, SentLimit, nil)
	if err != nil {
		t.Fatal(err)
	}
	k := &takenThenFailed{}
	s := sentRecorder(k.open, sent, quiet)(func(bridge.Outcome) {})
	s.(*recorder).lastSaved = time.Now() // no save in the background to outlive the test
	at := time.Now().UTC().Truncate(time.Millisecond)
	for i := range 3 {
		rec := bridge.Record{ID: fmt.Sprint("da", i), Time: at, EventTime: at, Nested: true, Data: []byte(`{}`)}
		if err := s.Add(context.Background(), rec, &bridge.Tag{}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 3 {
		if id := fmt.Sprint("da", i); sent.Has(id, at) {
			t.Errorf("alert %s counts as sent although its batch was never acknowledged: an incident read again would leave it out", id)
		}
	}
}

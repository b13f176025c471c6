package wiring

// Found by the session-24 review: the incident split and the recorder of alerts sent.

import (
	"context"

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

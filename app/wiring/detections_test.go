package wiring

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"ta-defender-alerts/app/bridge"
	"ta-defender-alerts/app/checkpoint"
	"ta-defender-alerts/app/hectest"
	"ta-defender-alerts/app/siem"
)

// With shape detection, each current alert version reaches HEC as its detections (one per
// evidence item, the old SIEM API's fields), every one once, under the detections sourcetype;
// the window completes and a second drain sends nothing again.
func TestDetectionShapeToHEC(t *testing.T) {
	// The same tenant read twice: as alerts (what the detections must be made from), and as
	// detections.
	alertsCfg := tenantWith(t, 120, "hec")
	alertsHEC := hectest.New(hectest.Options{Token: hecToken})
	t.Cleanup(alertsHEC.Close)
	alertsCfg.HEC.URLs, alertsCfg.HEC.Token = []string{alertsHEC.URL}, hecToken
	cfg := *alertsCfg
	cfg.StateDir = t.TempDir()
	h := hectest.New(hectest.Options{Token: hecToken, Ack: true})
	t.Cleanup(h.Close)
	cfg.HEC.URLs, cfg.HEC.AckInterval = []string{h.URL}, 10*time.Millisecond
	cfg.HEC.Sourcetype, cfg.Detections = "ms:defender:atp:detections", true
	cfg.HEC.BatchBytes = 64 << 10 // batch boundaries fall among an alert's detections
	drainOnce(t, alertsCfg)
	drainOnce(t, &cfg)

	want := map[string]int{} // detections per alert id, from the alerts as the API gave them
	for _, e := range alertsHEC.Events() {
		ds, err := siem.Build(e.Raw)
		if err != nil {
			t.Fatal(err)
		}
		want[ds[0].AlertID] += len(ds)
	}
	got := map[string]int{}
	parts := map[string]bool{}
	for _, e := range h.Events() {
		var d siem.Detection
		if err := json.Unmarshal(e.Raw, &d); err != nil || e.Sourcetype != "ms:defender:atp:detections" || d.AlertID == "" {
			t.Fatalf("event %s (sourcetype %s): %v", e.Raw, e.Sourcetype, err)
		}
		got[d.AlertID]++
		key := d.AlertID + "/" + d.FullID
		if parts[key] {
			t.Errorf("detection %s indexed twice", key)
		}
		parts[key] = true
	}
	if total := len(h.Events()); total <= len(want) {
		t.Fatalf("%d detections of %d alerts: the stand-in's alerts should have several evidence items", total, len(want))
	}
	if len(got) != len(want) {
		t.Fatalf("detections of %d alerts indexed, want %d", len(got), len(want))
	}
	for id, n := range want {
		if got[id] != n {
			t.Errorf("alert %s: %d detections indexed, want %d", id, got[id], n)
		}
	}
	before := len(h.Events())
	drainOnce(t, &cfg)
	if n := len(h.Events()) - before; n != 0 {
		t.Errorf("a second drain sent %d events, want none", n)
	}
}

// alertList is a source of alert versions with evidence, in a fixed order, resumable by
// the number read.
type alertList struct{ alerts [][]byte }

func (l *alertList) Read(ctx context.Context, w bridge.Window, emit func(bridge.Record, bridge.Position) error) (bridge.SourceStats, error) {
	skip := 0
	if w.Resume != nil {
		skip, _ = strconv.Atoi(string(w.Resume))
	}
	var st bridge.SourceStats
	for i := skip; i < len(l.alerts); i++ {
		var a struct {
			ID string    `json:"id"`
			T  time.Time `json:"lastUpdateTime"`
		}
		if err := json.Unmarshal(l.alerts[i], &a); err != nil {
			return st, err
		}
		if a.T.Before(w.From) || !a.T.Before(w.To) {
			continue
		}
		if w.Delivered != nil && w.Delivered(a.ID, a.T) {
			st.Skipped++
			continue
		}
		if err := emit(bridge.Record{ID: a.ID, Time: a.T, Data: l.alerts[i]}, listPos(i+1)); err != nil {
			return st, err
		}
	}
	return st, nil
}

// With shape detection a batch boundary, and then a failure, may fall among one alert's
// detections: the checkpoint stays before that alert, the next run sends it again whole, and
// no detection is lost; only the detections of that one alert confirmed before the failure
// are indexed twice.
func TestDetectionCheckpointAmongItsDetections(t *testing.T) {
	base := time.Now().Add(-time.Hour).UTC().Truncate(time.Second)
	src := &alertList{}
	const alerts, evidence = 30, 5
	for i := range alerts {
		var ev []string
		for j := range evidence {
			ev = append(ev, fmt.Sprintf(`{"entityType":"File","fileName":"f%d_%d.exe","sha1":"%040d"}`, i, j, i*10+j))
		}
		src.alerts = append(src.alerts, fmt.Appendf(nil, `{"id":"da%02d","title":"t","severity":"High","lastUpdateTime":%q,"evidence":[%s]}`,
			i, base.Add(time.Duration(i)*time.Second).Format(time.RFC3339), strings.Join(ev, ",")))
	}
	dir := t.TempDir()
	seen := map[string]int{}
	key := func(r bridge.Record) string {
		var d siem.Detection
		if err := json.Unmarshal(r.Data, &d); err != nil || d.FullID == "" {
			t.Errorf("not a detection: %s", r.Data)
		}
		return d.FullID
	}
	// Batches of 7: the first run confirms 8 batches (56 detections: 11 alerts and one
	// detection of the twelfth) and fails the ninth.
	for run, failAt := range []int{9, -1} {
		store, err := checkpoint.Open(dir, "t")
		if err != nil {
			t.Fatal(err)
		}
		k := &batchesOf{n: 7, failAt: failAt, seen: seen, key: key}
		pump := bridge.New(bridge.Config{Store: store, Log: quiet, Start: 24 * time.Hour, Overlap: time.Minute,
			DeadLetter: bridge.DeadLetterPath(dir, "t")}, detectionSource{src: src, log: quiet}, k.open)
		err = pump.Drain(context.Background())
		pump.Close()
		store.Close()
		if (err != nil) != (failAt > 0) {
			t.Fatalf("run %d: %v", run, err)
		}
	}
	dups := 0
	for _, a := range src.alerts {
		ds, err := siem.Build(a)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range ds {
			switch n := seen[d.FullID]; {
			case n == 0:
				t.Errorf("detection %s never confirmed: lost", d.FullID)
			case n > 1:
				dups += n - 1
			}
		}
	}
	if len(seen) != alerts*evidence {
		t.Errorf("%d distinct detections confirmed, want %d", len(seen), alerts*evidence)
	}
	if dups > evidence-1 {
		t.Errorf("%d detections confirmed twice, want at most %d (those of the one alert the failure cut)", dups, evidence-1)
	}
}
